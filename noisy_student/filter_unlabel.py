r"""Keeps confident pseudo-labels and balances the classes (original flags).

Two passes, each runnable per shard on many machines (see docs/filtering.md):

  # 1. statistics of every (shard, task) unit
  python -m noisy_student.filter_unlabel --only_get_stats=1 --shard_id=all \
      --input_dir=data/unlabeled --file_prefix=extra \
      --prediction_dir=pred/predict_label --info_dir=pred/info \
      --prelim_stats_dir=pred/prelim_stats --output_dir=pred/filter_data \
      --num_shards=128 --num_label_classes=10
  # 2. selection: same flags plus --num_image and --min_threshold
  python -m noisy_student.filter_unlabel --only_get_stats=0 --shard_id=all \
      ... --num_image=53113 --min_threshold=0.3

The pseudo-labeled shards land in `<output_dir>/data/train-<task>-%05d-of-%05d`
and are what `main --unlabel_data_dir=<output_dir>/data` trains on.
"""

from __future__ import annotations

from typing import Sequence

from absl import app
from absl import flags
from absl import logging

from data import records
from noisy_student import filtering
from noisy_student import prediction_files
from noisy_student import pseudo_label

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the flags (the original's names and defaults, plus a few)."""
  flags.DEFINE_string('input_dir', '', 'Folder of the unlabeled shards '
                      '`<file_prefix>-%05d-of-%05d` whose images are copied.')
  flags.DEFINE_string('prediction_dir', '', 'Folder of the teacher\'s '
                      'prediction files `train-info-%05d-of-%05d-%05d`.')
  flags.DEFINE_string('info_dir', '', 'Folder of the per-shard '
                      '`info-*.txt` files ({"image_num": N}).')
  flags.DEFINE_string('prelim_stats_dir', '', 'Where the statistics pass '
                      'writes `prelim_stats_%05d_%d.json`; default '
                      '<output_dir>/prelim_stats.')
  flags.DEFINE_string('output_dir', '', 'Where data/, stats/, samples/ and '
                      'allocation_plan.json are written.')
  flags.DEFINE_integer('num_shards', 128, 'Shards of the unlabeled set.')
  flags.DEFINE_string('shard_id', '0', 'Shards this job handles: an id, a '
                      'list `0,3`, a range `0-63`, or `all`.')
  flags.DEFINE_integer('task', -1, 'Prediction worker (task) this job '
                       'handles; -1: all --total_replicas workers of each shard.')
  flags.DEFINE_integer('total_replicas', 1, 'Prediction workers per shard '
                       '(the --total_replicas of --mode=predict).')
  flags.DEFINE_integer('num_image', 1300, 'Images per class after balancing.')
  flags.DEFINE_float('min_threshold', 0.0, 'Keep images whose top-1 '
                     'probability is >= this.')
  flags.DEFINE_float('max_prob', 2, 'Keep images whose top-1 probability is '
                     '<= this (it can exceed 1 by rounding).')
  flags.DEFINE_integer('num_label_classes', 1000, 'Classes of the teacher.')
  flags.DEFINE_integer('upsample', 1, '1: duplicate images of classes with '
                       'fewer than --num_image images.')
  flags.DEFINE_integer('only_get_stats', 0, '1: statistics pass only.')
  flags.DEFINE_string('file_prefix', 'train', 'Prefix of the unlabeled shards.')
  flags.DEFINE_integer('use_top', 1, '1: keep the most confident images of '
                       'abundant classes; 0: a seeded random choice.')
  flags.DEFINE_bool('use_all', False, 'Keep every image above the threshold '
                    'once, without balancing.')
  flags.DEFINE_enum('balance', 'exact', list(pseudo_label.BALANCE_MODES),
                    'exact: every class gets exactly --num_image records '
                    '(deterministic); random: the original rule (each image '
                    'above the class threshold gets a random number of '
                    'copies with mean num_image / count).')
  flags.DEFINE_integer('seed', 12345, 'Seed of shuffling and random choices.')
  flags.DEFINE_integer('num_samples_per_class', 10, 'Sample images per class '
                       'saved under <output_dir>/samples/<class>/.')
  flags.DEFINE_integer('shuffle_buffer_mb', 512, 'In-memory shuffle limit per '
                       'output shard; larger shards shuffle through temporary '
                       'bucket files.')
  # Accepted for compatibility with the original scripts.
  flags.DEFINE_integer('only_use_num_shards', -1, 'Original flag; must be -1.')
  flags.DEFINE_integer('total_label_replicas', -1, 'Original flag; ignored '
                       '(one label replica per prediction worker).')
  flags.DEFINE_integer('debug', 0, 'Original flag; ignored.')
  flags.DEFINE_string('data_type', 'tfrecord', 'Original flag; only tfrecord.')
  flags.DEFINE_bool('eval_imagenet_p', False, 'Original flag; unsupported.')


def config_from_flags() -> tuple[filtering.FilterConfig, list[tuple[int, int]]]:
  """Checks the flags; returns the config and the units this job handles."""
  for name in ('input_dir', 'prediction_dir', 'info_dir', 'output_dir'):
    if not FLAGS[name].value:
      raise app.UsageError(f'--{name} is required')
  if FLAGS.only_use_num_shards != -1:
    raise app.UsageError('--only_use_num_shards is not supported; pass the '
                         'shards to use with --shard_id')
  if FLAGS.data_type != 'tfrecord':
    raise app.UsageError(f'--data_type={FLAGS.data_type}: only tfrecord')
  if FLAGS.eval_imagenet_p:
    raise app.UsageError('--eval_imagenet_p is not supported here; use '
                         'python -m noisy_student.eval_robustness')
  try:
    settings = pseudo_label.Settings(
        num_label_classes=FLAGS.num_label_classes, num_image=FLAGS.num_image,
        min_threshold=FLAGS.min_threshold, max_prob=FLAGS.max_prob,
        upsample=bool(FLAGS.upsample), use_top=bool(FLAGS.use_top),
        use_all=FLAGS.use_all, balance=FLAGS.balance, seed=FLAGS.seed)
    config = filtering.FilterConfig(
        input_dir=FLAGS.input_dir, prediction_dir=FLAGS.prediction_dir,
        info_dir=FLAGS.info_dir, output_dir=FLAGS.output_dir,
        settings=settings, prelim_stats_dir=FLAGS.prelim_stats_dir,
        file_prefix=FLAGS.file_prefix, num_shards=FLAGS.num_shards,
        total_replicas=FLAGS.total_replicas,
        num_samples_per_class=FLAGS.num_samples_per_class,
        shuffle_buffer_bytes=FLAGS.shuffle_buffer_mb << 20)
    shards = prediction_files.parse_shard_ids(FLAGS.shard_id, FLAGS.num_shards)
  except ValueError as err:
    raise app.UsageError(str(err)) from err
  if FLAGS.task == -1:
    tasks_ = list(range(FLAGS.total_replicas))
  elif 0 <= FLAGS.task < FLAGS.total_replicas:
    tasks_ = [FLAGS.task]
  else:
    raise app.UsageError(f'--task={FLAGS.task} must be -1 or in [0, '
                         f'--total_replicas={FLAGS.total_replicas})')
  return config, [(s, t) for s in shards for t in tasks_]


def run(config: filtering.FilterConfig, units: Sequence[tuple[int, int]],
        only_get_stats: bool) -> dict | None:
  """Runs one pass over `units`; returns the merged/final stats when complete."""
  if only_get_stats:
    for shard, task in units:
      filtering.ensure_prelim_stats(config, shard, task)
    merged = filtering.merge_prelim_stats(config)
    if merged is None:
      logging.info('%d units still lack statistics; the merged counts are '
                   'written by the job that finishes last',
                   len(filtering.missing_prelim_stats(config)))
    return merged
  plan = filtering.load_or_build_plan(config)
  for shard, task in units:
    filtering.select_unit(config, plan, shard, task)
  final = filtering.write_final_stats(config, plan)
  if final is None:
    logging.info('other units are still unfinished; final_stats.json is '
                 'written by the job that finishes last')
  return final


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  config, units = config_from_flags()
  try:
    run(config, units, bool(FLAGS.only_get_stats))
  except (filtering.FilterError, records.RecordError, FileNotFoundError) as err:
    logging.error('%s', err)
    raise SystemExit(f'filter_unlabel: {err}') from None


if __name__ == '__main__':
  define_flags()
  app.run(main)
