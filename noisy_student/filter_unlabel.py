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

# First: the binaries' entry filters TensorFlow's start-up banner.
from noisy_student.runtime import entry
from data import layout
from data import dataset_info
from noisy_student.cli import config_flags
from noisy_student.cli import filter_flags
from noisy_student.runtime import errors
from noisy_student.pseudo import filter_files
from noisy_student.pseudo import filter_passes

FLAGS = flags.FLAGS


# FilterConfig fields that are flags, with the binary's defaults ('' =
# required, refused by name in config_from_flags; None: from the folders).
CONFIG_FIELDS = ('input_dir', 'prediction_dir', 'info_dir', 'prelim_stats_dir',
                 'output_dir', 'num_shards', 'total_replicas', 'file_prefix',
                 'num_samples_per_class')
REQUIRED = ('input_dir', 'prediction_dir', 'output_dir')
_FROM_THE_FOLDERS = {
    'info_dir': ' Default: <prediction_dir>/info (where --mode=predict '
                '--output_dir=<prediction_dir> writes them).',
    'num_shards': ' Default: the number of <file_prefix> shards in '
                  '--input_dir (the original\'s was 128).',
    'file_prefix': ' Default: the one unlabeled split of --input_dir\'s '
                   'dataset_info.json, else train.'}


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  """Defines the flags (the original's names and defaults, plus a few)."""
  config_flags.define(filter_files.FilterConfig, fv, fields=CONFIG_FIELDS,
                      defaults={'input_dir': '', 'prediction_dir': '',
                                'output_dir': '', 'info_dir': '',
                                'num_shards': None})
  for name, text in _FROM_THE_FOLDERS.items():
    fv[name].help += text
  flags.DEFINE_string('shard_id', '0', 'Shards this job handles: an id, a '
                      'list `0,3`, a range `0-63`, or `all`.', flag_values=fv)
  flags.DEFINE_integer('task', -1, 'Prediction worker (task) this job '
                       'handles; -1: all --total_replicas workers of each shard.', flag_values=fv)
  filter_flags.define_flags(
      fv, num_label_classes_help='Classes of the teacher; default: those of '
      '--input_dir\'s dataset_info.json (or its parent\'s), else 1000 as the '
      'original.')
  flags.DEFINE_integer('only_get_stats', 0, '1: statistics pass only.', flag_values=fv)
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
  given = config_flags.values(filter_files.FilterConfig, fv,
                              fields=CONFIG_FIELDS)
  for name in REQUIRED:
    if not given[name]:
      raise errors.ConfigError(f'--{name} is required')
  given['info_dir'] = (given['info_dir']
                       or layout.PredictionDirs(given['prediction_dir']).info)
  if not config_flags.present(fv, 'file_prefix'):
    given['file_prefix'] = (dataset_info.only_unlabeled_split(given['input_dir'])
                            or given['file_prefix'])
  if given['num_shards'] is None:
    try:
      given['num_shards'] = layout.count_shards(given['input_dir'],
                                                given['file_prefix'])
    except errors.InputError as err:
      raise errors.InputError(
          f'{err} (--file_prefix={given["file_prefix"]}: pass the shards\' '
          '--file_prefix, or --num_shards)') from None
  if fv.only_use_num_shards != -1:
    raise errors.ConfigError('--only_use_num_shards is not supported; pass the '
                         'shards to use with --shard_id')
  if fv.data_type != 'tfrecord':
    raise errors.ConfigError(f'--data_type={fv.data_type}: only tfrecord')
  if fv.eval_imagenet_p:
    raise errors.ConfigError('--eval_imagenet_p is not supported here; use '
                         'noisy-student-eval-robustness')
  settings = filter_flags.settings_from_flags(
      fv, num_label_classes=_described_classes(fv))
  with config_flags.flag_names():
    config = filter_files.FilterConfig(
        settings=settings,
        shuffle_buffer_bytes=filter_flags.shuffle_buffer_bytes(fv), **given)
  shards = layout.parse_shard_ids(fv.shard_id, config.num_shards)
  if fv.task == -1:
    tasks_ = list(range(config.total_replicas))
  elif 0 <= fv.task < config.total_replicas:
    tasks_ = [fv.task]
  else:
    raise errors.ConfigError(f'--task={fv.task} must be -1 or in [0, '
                         f'--total_replicas={config.total_replicas})')
  return config, [(s, t) for s in shards for t in tasks_]


def main(argv: Sequence[str]) -> None:
  del argv
  config, units = config_from_flags(FLAGS)
  only_stats = bool(FLAGS.only_get_stats)
  final = filter_passes.run_pass(config, units, only_stats)
  if final is not None and not only_stats:  # the last job: 0 kept is an error
    filter_passes.check_filter_output(config.output_dir,
                                      config.settings.min_threshold)


def run():
  entry.run('filter_unlabel', main, define_flags,
            field_flag=config_flags.as_flag)


if __name__ == '__main__':
  run()
