r"""The Beam pipeline (beam_label) vs the in-process path: records/s, peak memory.

  python -m benchmarks.beam_benchmark --num_records=100000 --mode=filter
  python -m benchmarks.beam_benchmark --num_records=1000000 --mode=filter
  python -m benchmarks.beam_benchmark --num_records=100000 --mode=full

Both paths get the same data and write the same pseudo-labeled shards:
* `--mode=filter`: the teacher's outputs already exist (synthetic prediction
  files over `--num_classes` classes and opaque image payloads, as
  `benchmarks/filter_benchmark.py` writes them), so both paths run only the
  statistics, the plan and the selection: the filter/IO path.
  In-process: both passes of `filter_unlabel` in one process. Beam:
  `beam_label --prediction_dir=<those files>`, which finds every shard
  labeled and skips the teacher.
* `--mode=full`: real 32x32 PNGs (the bundled digits, repeated) and a tiny
  untrained EfficientNet teacher (.keras, width/depth 0.1): in-process
  `main --mode=predict`'s library (`modes.predict`, every shard) followed by
  both filter passes, in one process; Beam: `beam_label` from the images.

Beam runs on the FnApiRunner with `--workers` worker processes
(`--direct_running_mode=multi_processing`). Each path runs as one child
command; its wall time (Python and TensorFlow start-up included) gives
records/s, and the resident memory of the child's whole process tree (runner +
workers), sampled every 0.2 s from /proc, its peak. Generation is not timed.
Linux only (/proc).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from absl import app
from absl import flags

FLAGS = flags.FLAGS
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def define_flags() -> None:
  flags.DEFINE_integer('num_records', 100_000, 'Unlabeled records in total.')
  flags.DEFINE_integer('records_per_shard', 10_000, 'Records per shard.')
  flags.DEFINE_integer('num_classes', 10, 'Classes (--mode=filter).')
  flags.DEFINE_enum('mode', 'filter', ['filter', 'full'],
                    'filter: teacher outputs exist; full: teacher + filter.')
  flags.DEFINE_integer('workers', 2, 'Beam worker processes.')
  flags.DEFINE_list('paths', ['offline', 'beam'], 'Which paths to run.')
  flags.DEFINE_float('min_threshold', 0.3, '--min_threshold of the filter.')
  flags.DEFINE_string('work_dir', None, 'Where the data go (default: a '
                      'temporary folder, removed afterwards).')
  flags.DEFINE_bool('json', False, 'Print one JSON line instead of a table.')


# --------------------------------------------------------------------------
# Inputs.
# --------------------------------------------------------------------------
def write_filter_inputs(root: str) -> int:
  """Synthetic shards + predictions in beam_label's layout; num_shards."""
  from benchmarks import filter_benchmark  # pylint: disable=g-import-not-at-top
  num_shards = filter_benchmark.write_inputs(
      root, FLAGS.num_records, FLAGS.records_per_shard, FLAGS.num_classes,
      image_bytes=96)
  for name in os.listdir(f'{root}/info'):  # info files beside the predictions
    os.rename(f'{root}/info/{name}', f'{root}/pred/{name}')
  os.rmdir(f'{root}/info')
  return num_shards


def write_image_inputs(root: str) -> int:
  """Digits PNG records repeated to --num_records, in shards; num_shards."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from data import prepare_digits  # pylint: disable=g-import-not-at-top
  from data import layout  # pylint: disable=g-import-not-at-top
  from data import writers  # pylint: disable=g-import-not-at-top
  prepare_digits.prepare_digits(f'{root}/digits')
  pool = list(tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(
      f'{root}/digits/unlabeled/extra-*'))).as_numpy_iterator())
  num_shards = -(-FLAGS.num_records // FLAGS.records_per_shard)
  for shard, (start, end) in enumerate(writers.shard_bounds(FLAGS.num_records,
                                                            num_shards)):
    writers.write_records(
        f'{root}/unl/' + layout.shard_name('extra', shard, num_shards),
        (pool[i % len(pool)] for i in range(start, end)))
  return num_shards


def write_teacher(path: str) -> None:
  """A tiny untrained small-image EfficientNet as a .keras file."""
  from noisy_student.models import backbones  # pylint: disable=g-import-not-at-top
  from noisy_student.models import export  # pylint: disable=g-import-not-at-top
  export.export_keras(backbones.build_model(_teacher_config()), path)


def _teacher_config():
  from noisy_student.core import config as config_lib  # pylint: disable=g-import-not-at-top
  return config_lib.ModelConfig(
      model_name='efficientnet-b0', num_classes=10, image_size=32,
      small_image=True, width_coefficient=0.1, depth_coefficient=0.1)


# --------------------------------------------------------------------------
# Running one path with its process tree's peak memory.
# --------------------------------------------------------------------------
def _children() -> dict[int, list[int]]:
  tree = {}
  for name in os.listdir('/proc'):
    if not name.isdigit():
      continue
    try:
      with open(f'/proc/{name}/stat') as f:
        ppid = int(f.read().rsplit(')', 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
      continue
    tree.setdefault(ppid, []).append(int(name))
  return tree


def tree_rss_bytes(pid: int) -> int:
  """Resident memory of `pid` and all its descendants, in bytes."""
  tree, total, todo = _children(), 0, [pid]
  while todo:
    p = todo.pop()
    todo.extend(tree.get(p, []))
    try:
      with open(f'/proc/{p}/statm') as f:
        total += int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
    except (OSError, IndexError, ValueError):
      pass
  return total


def run_measured(cmd: list[str]) -> dict:
  """Runs `cmd`; wall seconds and the peak RSS of its process tree."""
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
  start = time.perf_counter()
  proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  peak = [0]

  def sample():
    while proc.poll() is None:
      peak[0] = max(peak[0], tree_rss_bytes(proc.pid))
      time.sleep(0.2)

  sampler = threading.Thread(target=sample, daemon=True)
  sampler.start()
  out, err = proc.communicate()
  seconds = time.perf_counter() - start
  sampler.join()
  if proc.returncode:
    raise RuntimeError(f'{cmd[:4]} failed:\n{err[-3000:]}')
  return {'seconds': seconds, 'peak_rss_mb': peak[0] / 2**20, 'stdout': out}


_OFFLINE = '''
import sys
from absl import logging
import tensorflow as tf
from benchmarks import beam_benchmark as b
from noisy_student.drivers import modes
from noisy_student.pseudo import filter_files, filter_passes, selection
logging.set_verbosity(logging.WARNING)
root, mode, num_shards, classes, num_image, thr = sys.argv[1:7]
num_shards, classes, num_image = int(num_shards), int(classes), int(num_image)
if mode == 'full':
  modes.predict(b._teacher_config(), modes.PredictConfig(
      predict_ckpt_path=root + '/teacher.keras', data_dir=root + '/unl',
      output_dir=root + '/pred', info_dir=root + '/pred', file_prefix='extra',
      num_shards=num_shards, shard_ids=tuple(range(num_shards))),
      tf.distribute.get_strategy())
c = filter_files.FilterConfig(
    input_dir=root + '/unl', prediction_dir=root + '/pred',
    info_dir=root + '/pred', output_dir=root + '/out_offline',
    settings=selection.Settings(num_label_classes=classes,
                                num_image=num_image, min_threshold=float(thr)),
    file_prefix='extra', num_shards=num_shards)
for stats in (True, False):
  filter_passes.run_pass(c, c.units, stats)
'''


def run_offline(root: str, num_shards: int, num_image: int) -> dict:
  return run_measured([sys.executable, '-c', _OFFLINE, root, FLAGS.mode,
                       str(num_shards), str(FLAGS.num_classes), str(num_image),
                       str(FLAGS.min_threshold)])


def run_beam(root: str, num_image: int) -> dict:
  prediction_dir = (f'{root}/pred' if FLAGS.mode == 'filter'
                    else f'{root}/pred_beam')
  return run_measured([
      sys.executable, '-m', 'noisy_student.beam_label',
      f'--input_pattern={root}/unl/extra-*', f'--teacher={root}/teacher.keras',
      '--small_image', f'--output_dir={root}/out_beam',
      f'--prediction_dir={prediction_dir}',
      f'--num_label_classes={FLAGS.num_classes}', f'--num_image={num_image}',
      f'--min_threshold={FLAGS.min_threshold}', '--num_samples_per_class=0',
      f'--direct_num_workers={FLAGS.workers}',
      '--direct_running_mode=multi_processing'])


def _written(out_dir: str) -> int:
  with open(os.path.join(out_dir, 'stats', 'final_stats.json')) as f:
    return json.load(f)['num_written']


def main(argv) -> None:
  del argv
  root = FLAGS.work_dir or tempfile.mkdtemp(prefix='beam_benchmark_')
  results = {}
  try:
    write_teacher(f'{root}/teacher.keras')
    if FLAGS.mode == 'filter':
      num_shards = write_filter_inputs(root)
    else:
      FLAGS.num_classes = 10
      num_shards = write_image_inputs(root)
    num_image = FLAGS.num_records // (2 * FLAGS.num_classes)
    for path in FLAGS.paths:
      result = (run_offline(root, num_shards, num_image) if path == 'offline'
                else run_beam(root, num_image))
      result.pop('stdout')
      result.update(records_per_sec=FLAGS.num_records / result['seconds'],
                    num_written=_written(f'{root}/out_{path}'))
      results[path] = result
  finally:
    if not FLAGS.work_dir:
      shutil.rmtree(root, ignore_errors=True)
  if FLAGS.json:
    print(json.dumps(dict(results, num_records=FLAGS.num_records,
                          num_shards=num_shards, mode=FLAGS.mode,
                          workers=FLAGS.workers)))
    return
  print('| path | mode | records | shards | records/s | peak RSS (tree) | written |')
  print('|---|---|---|---|---|---|---|')
  for path, r in results.items():
    name = (f'Beam, FnApiRunner, {FLAGS.workers} workers' if path == 'beam'
            else 'in-process (one process)')
    print(f'| {name} | {FLAGS.mode} | {FLAGS.num_records:,} | {num_shards} | '
          f'{r["records_per_sec"]:,.0f} | {r["peak_rss_mb"]:.0f} MB | '
          f'{r["num_written"]:,} |')


if __name__ == '__main__':
  define_flags()
  app.run(main)
