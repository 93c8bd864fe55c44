r"""Keeps confident pseudo-labels and balances the classes (original flags).

Two passes, each runnable per shard on many machines (docs/filtering.md),
over what `main --mode=predict --output_dir=pred/predict_label
--info_dir=pred/info` wrote for the unlabeled shards:

  # 1. statistics of every (shard, task) unit above the confidence threshold
  python -m noisy_student.filter_unlabel --only_get_stats=1 --shard_id=all \
      --input_dir=data/unlabeled --file_prefix=extra \
      --prediction_dir=pred/predict_label --info_dir=pred/info \
      --prelim_stats_dir=pred/prelim_stats --output_dir=pred/filter_data \
      --num_shards=128 --num_label_classes=10 --min_threshold=0.3
  # 2. selection and balancing: the same flags (the statistics remember the
  #    threshold), plus how many images per class
  python -m noisy_student.filter_unlabel --only_get_stats=0 --shard_id=all \
      --input_dir=data/unlabeled --file_prefix=extra \
      --prediction_dir=pred/predict_label --info_dir=pred/info \
      --prelim_stats_dir=pred/prelim_stats --output_dir=pred/filter_data \
      --num_shards=128 --num_label_classes=10 --min_threshold=0.3 \
      --num_image=53113

The pseudo-labeled shards land in `<output_dir>/data/train-<task>-%05d-of-%05d`
and are what `main --unlabel_data_dir=<output_dir>/data` trains on.
"""

from __future__ import annotations

from typing import Sequence

from absl import flags

from data import layout
from data import dataset_info
from noisy_student.runtime import entry
from noisy_student.cli import config_flags
from noisy_student.cli import filter_flags
from noisy_student.runtime import errors
from noisy_student.pseudo import filter_files
from noisy_student.pseudo import filter_passes

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  """Defines the flags (the original's names and defaults, plus a few)."""
  flags.DEFINE_string('input_dir', '', 'Folder of the unlabeled shards '
                      '`<file_prefix>-%05d-of-%05d` whose images are copied.', flag_values=fv)
  flags.DEFINE_string('prediction_dir', '', 'Folder of the teacher\'s '
                      'prediction files `train-info-%05d-of-%05d-%05d`.', flag_values=fv)
  flags.DEFINE_string('info_dir', '', 'Folder of the per-shard '
                      '`info-*.txt` files ({"image_num": N}).', flag_values=fv)
  flags.DEFINE_string('prelim_stats_dir', '', 'Where the statistics pass '
                      'writes `prelim_stats_%05d_%d.json`; default '
                      '<output_dir>/prelim_stats.', flag_values=fv)
  flags.DEFINE_string('output_dir', '', 'Where data/, stats/, samples/ and '
                      'allocation_plan.json are written.', flag_values=fv)
  flags.DEFINE_integer('num_shards', 128, 'Shards of the unlabeled set.', flag_values=fv)
  flags.DEFINE_string('shard_id', '0', 'Shards this job handles: an id, a '
                      'list `0,3`, a range `0-63`, or `all`.', flag_values=fv)
  flags.DEFINE_integer('task', -1, 'Prediction worker (task) this job '
                       'handles; -1: all --total_replicas workers of each shard.', flag_values=fv)
  flags.DEFINE_integer('total_replicas', 1, 'Prediction workers per shard '
                       '(the --total_replicas of --mode=predict).', flag_values=fv)
  filter_flags.define_flags(
      fv, num_label_classes_help='Classes of the teacher; default: those of '
      '--input_dir\'s dataset_info.json (or its parent\'s), else 1000 as the '
      'original.')
  flags.DEFINE_integer('only_get_stats', 0, '1: statistics pass only.', flag_values=fv)
  flags.DEFINE_string('file_prefix', 'train', 'Prefix of the unlabeled shards.', flag_values=fv)
  # Accepted for compatibility with the original scripts.
  flags.DEFINE_integer('only_use_num_shards', -1, 'Original flag; must be -1.', flag_values=fv)
  flags.DEFINE_integer('total_label_replicas', -1, 'Original flag; ignored '
                       '(one label replica per prediction worker).', flag_values=fv)
  flags.DEFINE_integer('debug', 0, 'Original flag; ignored.', flag_values=fv)
  flags.DEFINE_string('data_type', 'tfrecord', 'Original flag; only tfrecord.', flag_values=fv)
  flags.DEFINE_bool('eval_imagenet_p', False, 'Original flag; unsupported.', flag_values=fv)


def _described_classes(fv: flags.FlagValues) -> int | None:
  """The classes of --input_dir's dataset_info.json when --num_label_classes
  is not passed (None: the flag's default, 1000 as the original)."""
  if fv['num_label_classes'].present:
    return None
  found = dataset_info.find(fv.input_dir, with_classes=True)
  return int(found[1]['num_classes']) if found else None


def config_from_flags(fv: flags.FlagValues = FLAGS) -> tuple[filter_files.FilterConfig, list[tuple[int, int]]]:
  """Checks the flags; returns the config and the units this job handles."""
  for name in ('input_dir', 'prediction_dir', 'info_dir', 'output_dir'):
    if not fv[name].value:
      raise errors.ConfigError(f'--{name} is required')
  if fv.only_use_num_shards != -1:
    raise errors.ConfigError('--only_use_num_shards is not supported; pass the '
                         'shards to use with --shard_id')
  if fv.data_type != 'tfrecord':
    raise errors.ConfigError(f'--data_type={fv.data_type}: only tfrecord')
  if fv.eval_imagenet_p:
    raise errors.ConfigError('--eval_imagenet_p is not supported here; use '
                         'python -m noisy_student.eval_robustness')
  settings = filter_flags.settings_from_flags(
      fv, num_label_classes=_described_classes(fv))
  with config_flags.flag_names():
    config = filter_files.FilterConfig(
        input_dir=fv.input_dir, prediction_dir=fv.prediction_dir,
        info_dir=fv.info_dir, output_dir=fv.output_dir,
        settings=settings, prelim_stats_dir=fv.prelim_stats_dir,
        file_prefix=fv.file_prefix, num_shards=fv.num_shards,
        total_replicas=fv.total_replicas,
        num_samples_per_class=fv.num_samples_per_class,
        shuffle_buffer_bytes=fv.shuffle_buffer_mb << 20)
  shards = layout.parse_shard_ids(fv.shard_id, fv.num_shards)
  if fv.task == -1:
    tasks_ = list(range(fv.total_replicas))
  elif 0 <= fv.task < fv.total_replicas:
    tasks_ = [fv.task]
  else:
    raise errors.ConfigError(f'--task={fv.task} must be -1 or in [0, '
                         f'--total_replicas={fv.total_replicas})')
  return config, [(s, t) for s in shards for t in tasks_]


def main(argv: Sequence[str]) -> None:
  del argv
  config, units = config_from_flags(FLAGS)
  filter_passes.run_pass(config, units, bool(FLAGS.only_get_stats))


def run():
  entry.run('filter_unlabel', main, define_flags)


if __name__ == '__main__':
  run()
