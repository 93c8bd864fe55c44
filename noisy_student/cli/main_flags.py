"""The flags of `python -m noisy_student.main` (imported only by main.py).

Original flags keep their names, defaults and meanings (google-research/
noisystudent main.py and predict_label.py). The flags of config fields
(recipe, model, data, experiment, predict) are generated from the config
dataclasses (`cli/config_flags.py`: their fields, defaults and help texts);
the rest (mode, the original's compatibility flags, export) are declared
here, and the compatibility flags are also interpreted here (`--use_tpu`,
`--use_bfloat16`, `--train_ratio`, `--init_model`). Flags marked
"[TPUEstimator]" only configured TPUEstimator: they are accepted so that old
scripts still run, and have no effect.
"""

from typing import Optional

from absl import flags
from absl import logging

from noisy_student.cli import config_flags
from noisy_student.core import config as config_lib
from noisy_student.core import defaults
from noisy_student.drivers import modes
from noisy_student.runtime import errors
from noisy_student.training import distribute

# Config fields exposed as flags, and the binary's own defaults where the
# original's differ from the dataclass's (None: the dataset's value).
TRAIN_DEFAULTS = {'train_last_step_num': -1, 'num_train_images': None,
                  'mixed_precision': ''}
MODEL_FIELDS = ('model_name', 'num_classes', 'image_size', 'small_image',
                'width_coefficient', 'depth_coefficient', 'sync_batch_norm')
MODEL_DEFAULTS = {'image_size': None}
DATA_FIELDS = ('label_data_dir', 'unlabel_data_dir', 'num_train_shards',
               'remove_aug', 'use_cache', 'deterministic')
DATA_DEFAULTS = {'label_data_dir': None}
EXPERIMENT_FIELDS = ('model_dir', 'init_model_path', 'strategy', 'tpu',
                     'tpu_zone', 'gcp_project', 'eval_splits')
EXPERIMENT_DEFAULTS = {'model_dir': None, 'eval_splits': None}
PREDICT_FIELDS = ('predict_ckpt_path', 'output_dir', 'info_dir', 'num_shards',
                  'total_replicas', 'worker_id', 'reassign_label',
                  'file_prefix', 'predict_batch_size', 'num_samples_per_shard')
PREDICT_DEFAULTS = {'predict_ckpt_path': '', 'output_dir': '', 'info_dir': '',
                    'num_shards': None}


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  """Defines the binary's flags on `fv`."""
  # --------------------------------------------------------------- experiment
  flags.DEFINE_string('task_name', None,
                      'Built-in dataset: imagenet (the original\'s default), '
                      'svhn, cifar10 or digits: sets image size, mean/std and '
                      'flips. Optional when --label_data_dir has a '
                      'dataset_info.json (written by every converter), whose '
                      'classes and image counts are used; explicit flags win.',
                      flag_values=fv)
  flags.DEFINE_enum('mode', 'train_and_eval', list(config_lib.MODES),
                    'train, eval (EMA weights, dev/test or validation), '
                    'train_and_eval (evaluate every --steps_per_eval), predict '
                    '(teacher pseudo-labels for unlabeled shards) or export '
                    '(SavedModel).', flag_values=fv)
  flags.DEFINE_bool('init_model', False,
                    'Initialise the student from --init_model_path (EMA weights).', flag_values=fv)

  # ------------------------------------------------------------------ devices
  flags.DEFINE_bool('use_tpu', True,
                    'Train on a TPU (implies --strategy=tpu). Default True as in '
                    'the original: pass --use_tpu=false on CPUs/GPUs.', flag_values=fv)
  flags.DEFINE_string('master', None, '[TPUEstimator] Not used.', flag_values=fv)
  flags.DEFINE_integer('num_tpu_cores', None, '[TPUEstimator] Not used.', flag_values=fv)
  flags.DEFINE_bool('use_bfloat16', True,
                    'Train with mixed bfloat16 activations (float32 weights, '
                    'logits and loss). Default True as in the original; '
                    '--mixed_precision overrides it.', flag_values=fv)
  flags.DEFINE_integer('mirrored_cpu_devices', 0,
                       'With --strategy=mirrored and no GPU: split the CPU into '
                       'this many logical devices (to test multi-replica runs).', flag_values=fv)
  flags.DEFINE_bool('transpose_input', True, '[TPUEstimator] Not used.', flag_values=fv)
  flags.DEFINE_string('data_format', 'channels_last',
                      'Only channels_last is supported.', flag_values=fv)
  flags.DEFINE_integer('num_shards_per_group', -1,
                       '[TPUEstimator] BN grouping on TPU pods; not used.', flag_values=fv)
  flags.DEFINE_bool('skip_host_call', False, '[TPUEstimator] Not used.', flag_values=fv)
  flags.DEFINE_integer('log_step_count_steps', 64,
                       '[TPUEstimator] Not used; see --log_every_steps.', flag_values=fv)
  flags.DEFINE_integer('debug', 0, 'Not used.', flag_values=fv)

  # ---------------------------------------------------------- dataset sizes
  flags.DEFINE_integer('num_eval_images', None,
                       'Accepted for compatibility: evaluation counts the records.', flag_values=fv)
  flags.DEFINE_integer('num_test_images', None,
                       'Accepted for compatibility: evaluation counts the records.', flag_values=fv)

  # ------------------------------------------------------------ loop & ckpts
  flags.DEFINE_integer('fix_layer_num', -1, 'Not supported; must stay -1.', flag_values=fv)

  # ------------------------------------------------------------ noisy student
  flags.DEFINE_string('teacher_model_name', None,
                      'Model of the on-the-fly teacher (e.g. efficientnet-b0).', flag_values=fv)
  flags.DEFINE_string('teacher_model_path', None,
                      'Teacher weights: a model_dir/checkpoint of ours, a .keras '
                      'file or an original TF1 checkpoint.', flag_values=fv)

  # ------------------------------------------------- predict (predict_label.py)
  flags.DEFINE_string('shard_id', 'all',
                      'predict: shard(s) to process, e.g. 3, 0,5,7, 2-4 or all '
                      '(default; the original\'s was 0).', flag_values=fv)
  flags.DEFINE_string('data_type', 'tfrecord', 'predict: only tfrecord.', flag_values=fv)

  # ------------------------------------------------------------------- export
  flags.DEFINE_string('export_dir', '',
                      'export: SavedModel folder; default <model_dir>/saved_model.', flag_values=fv)
  flags.DEFINE_string('export_keras_path', '',
                      'export: the .keras file; default <export_dir>.keras '
                      '(beside the SavedModel); none: no .keras file.', flag_values=fv)

  # ------------------------------------- recipe, model and data (generated)
  config_flags.define(config_lib.TrainConfig, fv, base=defaults.ORIGINAL.train,
                      defaults=TRAIN_DEFAULTS)
  config_flags.define(config_lib.NoiseConfig, fv, base=defaults.ORIGINAL.noise)
  config_flags.define(config_lib.ModelConfig, fv, fields=MODEL_FIELDS,
                      defaults=MODEL_DEFAULTS)
  config_flags.define(config_lib.DataConfig, fv, fields=DATA_FIELDS,
                      defaults=DATA_DEFAULTS)
  config_flags.define(config_lib.ExperimentConfig, fv,
                      fields=EXPERIMENT_FIELDS, defaults=EXPERIMENT_DEFAULTS)
  config_flags.define(modes.PredictConfig, fv, fields=PREDICT_FIELDS,
                      defaults=PREDICT_DEFAULTS)


# ---------------------------------------------------------------------------
# The original's compatibility flags, interpreted.
# ---------------------------------------------------------------------------
def present(fv: flags.FlagValues, name: str) -> bool:
  """True when flag `name` was given on the command line."""
  return fv[name].present > 0


def resolve_strategy(fv: flags.FlagValues) -> str:
  """--strategy, with --use_tpu implying 'tpu' (explicit values must agree).

  --use_tpu defaults to True (the original's); left at its default on a
  machine where no TPU can be (`distribute.tpu_present`), the job runs on the
  default strategy instead, with one warning.
  """
  if present(fv, 'strategy'):
    if present(fv, 'use_tpu') and fv.use_tpu and fv.strategy != 'tpu':
      raise errors.ConfigError(
          f'--use_tpu=true conflicts with --strategy={fv.strategy}')
    return fv.strategy
  if not fv.use_tpu:
    return 'default'
  if present(fv, 'use_tpu') or distribute.tpu_present(fv.tpu):
    return 'tpu'
  logging.warning('no TPU on this machine and --use_tpu left at its default '
                  '(true, as in the original): running on the default '
                  'strategy (CPU/GPU)%s; pass --use_tpu=false to say so',
                  '' if present(fv, 'use_bfloat16') else ' in float32')
  return 'default'


def mixed_precision(fv: flags.FlagValues, strategy: str) -> str:
  """--mixed_precision, else bfloat16 when --use_bfloat16 (on a TPU or when
  passed explicitly), else float32."""
  if fv.mixed_precision:
    return fv.mixed_precision
  use_bfloat16 = fv.use_bfloat16 and (strategy == 'tpu'
                                      or present(fv, 'use_bfloat16')
                                      or not fv.use_tpu)
  return 'bfloat16' if use_bfloat16 else 'float32'


def apply_train_ratio(train: dict) -> dict:
  """TrainConfig values with --train_ratio applied as the original did:
  train_steps and train_last_step_num (-1: train_steps) scaled by it."""
  ratio = train['train_ratio']
  if not ratio > 0:  # NaN included
    raise errors.ConfigError(f'--train_ratio must be in (0, inf), received: '
                             f'{ratio!r}')
  for name in ('train_steps', 'train_last_step_num'):
    if not isinstance(train[name], int):
      raise errors.ConfigError(f'--{name} must be an integer')
  train_steps = int(train['train_steps'] * ratio)
  if train_steps < 1 <= train['train_steps']:
    raise errors.ConfigError(
        f'--train_steps={train["train_steps"]} x --train_ratio={ratio:g} is '
        f'{train_steps} steps: pass a larger --train_ratio')
  last = train['train_last_step_num']
  return dict(train, train_steps=train_steps,
              train_last_step_num=(train_steps if last == -1
                                   else int(last * ratio)))


def init_model_path(fv: flags.FlagValues) -> Optional[str]:
  """The checkpoint that initialises the student, or None.

  As in the original, `--init_model` initialises the student only when there
  is no on-the-fly teacher; with one, the teacher's checkpoint is the only
  checkpoint read. Both ignored cases are said in one warning.
  """
  if fv.init_model_path and not fv.init_model:
    logging.warning('--init_model_path is ignored without --init_model=true '
                    '(as in the original)')
  if fv.init_model and fv.teacher_model_name:
    logging.warning('--init_model with --teacher_model_name: as in the '
                    'original, only the teacher is initialised (from '
                    '--teacher_model_path); --init_model_path is not used and '
                    'the student starts from scratch')
  if fv.init_model and not fv.teacher_model_name:
    return fv.init_model_path
  return None


def sized_defaults(fv: flags.FlagValues, num_train_images: int) -> dict:
  """A folder that describes itself (dataset_info.json, no --task_name):
  the loop settings the user did not pass, sized to its labeled split
  (`defaults.sized_to_data`: the original's on ImageNet-sized data)."""
  given = {field: getattr(fv, field) if present(fv, field) else None
           for field in ('train_batch_size', 'train_steps',
                         'iterations_per_loop')}
  sized = {field: value
           for field, value in defaults.sized_to_data(
               num_train_images, **given).items()
           if not present(fv, config_flags.flag_name(field))}
  if sized:
    logging.info('%d labeled images: %s (sized to the data; pass the flags '
                 'to choose)', num_train_images, ', '.join(
                     f'--{config_flags.flag_name(k)}={v:g}'
                     for k, v in sized.items()))
  return sized
