r"""filter_unlabel throughput and peak memory on synthetic prediction shards.

  python -m benchmarks.filter_benchmark --num_records=1000000
  python -m benchmarks.filter_benchmark --num_records=100000 --json

Writes `--num_records` unlabeled records (small opaque image payloads: the
filter copies image bytes, it never decodes them) split into shards of
`--records_per_shard`, their teacher predictions over `--num_classes` classes
with a skewed class distribution and random confidences, and the info files,
exactly as `main --mode=predict` lays them out. Then it runs the statistics
and the selection pass of `python -m noisy_student.filter_unlabel` over every
shard in ONE child process (the worst case for memory: nothing is released
between shards by process exit) and reports records/s over both passes and
that child's peak resident memory (getrusage of the waited-for child).
Generation is not timed. With a fixed shard size, peak memory must not grow
with --num_records.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile

from absl import app
from absl import flags
import numpy as np

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_integer('num_records', 100_000, 'Prediction records in total.')
  flags.DEFINE_integer('records_per_shard', 10_000, 'Records per shard.')
  flags.DEFINE_integer('num_classes', 10, 'Classes of the predictions.')
  flags.DEFINE_integer('image_bytes', 96, 'Payload bytes per unlabeled image.')
  flags.DEFINE_float('min_threshold', 0.3, '--min_threshold of the filter.')
  flags.DEFINE_string('work_dir', None, 'Where the shards go (default: a '
                      'temporary folder, removed afterwards).')
  flags.DEFINE_bool('json', False, 'Print one JSON line instead of a table.')


def write_inputs(root: str, num_records: int, per_shard: int, num_classes: int,
                 image_bytes: int, seed: int = 0) -> int:
  """Writes unlabeled shards, predictions and info files; returns num_shards."""
  from data import records  # pylint: disable=g-import-not-at-top,g-multiple-import
  from data import writers  # pylint: disable=g-import-not-at-top,g-multiple-import
  from data import layout  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  num_shards = -(-num_records // per_shard)
  weights = 1.0 / np.arange(1, num_classes + 1)   # Zipf-like: some scarce
  weights /= weights.sum()
  for shard, (start, end) in enumerate(writers.shard_bounds(num_records,
                                                            num_shards)):
    n = end - start
    payload = rng.integers(0, 256, size=(n, image_bytes), dtype=np.uint8)
    writers.write_records(
        layout.shard_path(f'{root}/unl', 'extra', shard, num_shards),
        (records.serialize_unlabeled(row.tobytes()) for row in payload))
    labels = rng.choice(num_classes, size=n, p=weights)
    probs = rng.dirichlet(np.ones(num_classes), size=n).astype(np.float32)
    top = rng.uniform(0.1, 1.0, size=n).astype(np.float32)
    probs *= ((1 - top) / np.maximum(1 - probs[np.arange(n), labels], 1e-6)
              )[:, None]
    probs[np.arange(n), labels] = top
    writers.write_records(
        layout.prediction_path(f'{root}/pred', shard, num_shards, 0),
        (records.serialize_prediction(p) for p in probs))
    writers.write_json(layout.info_path(f'{root}/info', shard, num_shards, 0),
                       {'image_num': n})
  return num_shards


def run_filter(root: str, num_shards: int, num_classes: int, num_image: int,
               min_threshold: float) -> dict:
  """Both passes in one child process; seconds and the child's peak RSS."""
  base = [sys.executable, '-m', 'noisy_student.filter_unlabel',
          f'--input_dir={root}/unl', f'--prediction_dir={root}/pred',
          f'--info_dir={root}/info', f'--output_dir={root}/out',
          f'--num_shards={num_shards}', '--shard_id=all', '--file_prefix=extra',
          f'--num_label_classes={num_classes}', f'--num_image={num_image}',
          f'--min_threshold={min_threshold}']
  script = (
      'import json, sys, time\n'
      'from absl import flags, logging\n'
      'from noisy_student import filter_unlabel as f\n'
      'from noisy_student.pseudo import filter_passes\n'
      'f.define_flags()\n'
      'flags.FLAGS(["filter_unlabel"] + sys.argv[1:])\n'
      'logging.set_verbosity(logging.WARNING)\n'
      'config, units = f.config_from_flags()\n'
      'times = []\n'
      'for stats in (True, False):\n'
      '  start = time.perf_counter()\n'
      '  filter_passes.run_pass(config, units, stats)\n'
      '  times.append(time.perf_counter() - start)\n'
      'print(json.dumps(times))\n')
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = dict(os.environ, PYTHONPATH=repo, TF_CPP_MIN_LOG_LEVEL='2')
  result = subprocess.run([sys.executable, '-c', script] + base[3:],
                          cwd=repo, env=env, capture_output=True, text=True)
  if result.returncode:
    raise RuntimeError(f'filter_unlabel failed:\n{result.stderr[-3000:]}')
  stats_s, select_s = json.loads(result.stdout.strip().splitlines()[-1])
  seconds = stats_s + select_s
  peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
  with open(os.path.join(root, 'out', 'stats', 'final_stats.json')) as f:
    final = json.load(f)
  return {'seconds': seconds, 'stats_seconds': stats_s,
          'select_seconds': select_s, 'peak_rss_mb': peak_kb / 1024,
          'num_written': final['num_written'],
          'histogram_spread': final['histogram_spread']}


def main(argv) -> None:
  del argv
  root = FLAGS.work_dir or tempfile.mkdtemp(prefix='filter_benchmark_')
  try:
    num_shards = write_inputs(root, FLAGS.num_records, FLAGS.records_per_shard,
                              FLAGS.num_classes, FLAGS.image_bytes)
    num_image = FLAGS.num_records // (2 * FLAGS.num_classes)
    stats = run_filter(root, num_shards, FLAGS.num_classes, num_image,
                       FLAGS.min_threshold)
  finally:
    if not FLAGS.work_dir:
      shutil.rmtree(root, ignore_errors=True)
  stats.update(num_records=FLAGS.num_records, num_shards=num_shards,
               records_per_sec=FLAGS.num_records / stats['seconds'],
               num_image=num_image)
  if FLAGS.json:
    print(json.dumps(stats))
    return
  print('| records | shards | records/s (both passes) | peak RSS | written |')
  print('|---|---|---|---|---|')
  print(f'| {FLAGS.num_records:,} | {num_shards} | '
        f'{stats["records_per_sec"]:,.0f} | {stats["peak_rss_mb"]:.0f} MB | '
        f'{stats["num_written"]:,} |')


if __name__ == '__main__':
  define_flags()
  app.run(main)
