"""Frozen configuration dataclasses for training, evaluation and prediction.

Binaries turn their flags into these objects once (`config_from_flags` in each
binary; the flags themselves are generated from these fields, their defaults
and help texts by `noisy_student.cli.config_flags`); library code only ever
sees the dataclasses. The field defaults are the original release's flag
defaults: the one table of recipe defaults that flags, `iterate`, the demo and
the library all read (`noisy_student.core.defaults` names the presets built
from it). Every single-field check lives in the dataclass that owns the
field (`__post_init__`), so a binary and the Python API refuse the same
values with the same `ConfigError`, before anything is written; the learning
-rate schedule itself is `noisy_student.core.schedules`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from typing import Optional, Sequence

from noisy_student.runtime import errors

STRATEGIES = ('default', 'mirrored', 'multi_worker', 'tpu')
MODES = ('train', 'eval', 'train_and_eval', 'predict', 'export')
MIXED_PRECISION = ('float32', 'bfloat16', 'float16')
AUGMENT_NAMES = (None, 'v1')
# Bounds for `check_ranges`: exclusive 0 below, exclusive 1 above.
POSITIVE = 'above 0'
BELOW_ONE = 'below 1'


def doc(default, help_text: str, *, choices: Optional[Sequence] = None):
  """A dataclass field with its help text (the flag's, see cli/config_flags.py).

  `choices` makes a string field an enum flag.
  """
  metadata = {'help': help_text}  # `default` may be dataclasses.MISSING
  if choices is not None:
    metadata['choices'] = tuple(choices)
  return dataclasses.field(default=default, metadata=metadata)


_INTEGER_TYPES = ('int', 'Optional[int]', 'int | None', str(int),
                  str(Optional[int]))


def check_ranges(config, bounds: dict) -> None:
  """ConfigError naming the first field outside its bounds.

  A field annotated `int` must hold a whole number (2.5, '5' and True are
  refused, numpy integers accepted); every bounded field must be a number.

  `bounds` maps a field to (low, high): a number is an inclusive bound,
  POSITIVE / BELOW_ONE exclusive 0 / 1, None no bound; None values (a
  model's default) are not checked. NaN is outside every bound.
  """
  types = {f.name: str(f.type) for f in dataclasses.fields(config)}
  for field, (low, high) in bounds.items():
    value = getattr(config, field)
    if value is None:
      continue
    if (types.get(field) in _INTEGER_TYPES
        and not (isinstance(value, numbers.Integral)
                 and not isinstance(value, bool))):
      raise errors.ConfigError(
          f'{errors.field_name(field)} must be a whole number, received: '
          f'{value!r}')
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and (
        (low is None or (value > 0 if low == POSITIVE else value >= low))
        and (high is None or (value < 1 if high == BELOW_ONE
                              else value <= high)))
    if not ok:
      low_text = '(0' if low == POSITIVE else f'[{low:g}'
      high_text = ('1)' if high == BELOW_ONE
                   else 'inf)' if high is None else f'{high:g}]')
      raise errors.ConfigError(
          f'{errors.field_name(field)} must be in {low_text}, {high_text}, '
          f'received: {value!r}')


def check_choice(config, field: str, choices: Sequence) -> None:
  value = getattr(config, field)
  if value not in choices:
    raise errors.ConfigError(
        f'{errors.field_name(field)} must be one of '
        f'{", ".join(str(c) for c in choices)}, received: {value!r}')


def _check_rgb(config, field: str) -> None:
  value = getattr(config, field)
  if value is None:
    return
  try:
    values = tuple(float(v) for v in value)
  except (TypeError, ValueError):
    values = ()
  if (len(values) != 3 or not all(math.isfinite(v) for v in values)
      or (field == 'stddev_rgb' and min(values) <= 0)):
    raise errors.ConfigError(
        f'{errors.field_name(field)} must be 3 finite numbers (R, G, B)'
        f'{", all above 0" if field == "stddev_rgb" else ""}, received: '
        f'{value!r}')


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Everything needed to rebuild a network (saved as model_config.json).

  `noisy_student.models.loading.build(config)` builds it. Attributes mirror
  `efficientnet.build_model`; None means "the model's default" (dropout from
  the spec table, stochastic depth 0.2, ...).
  """
  model_name: str = doc(
      'efficientnet-b0', 'efficientnet-b0 ... b7, efficientnet-l0, -l1, -l2, '
      'keras:<a keras.applications name> (random init, e.g. keras:ResNet50), '
      'or a .keras classifier file.')
  num_classes: int = doc(1000, 'Number of classes; default: the dataset\'s '
                         '(1000 for ImageNet, as the original).')
  image_size: int = doc(224, 'Input resolution in pixels; default: the '
                        'task\'s, else the model\'s.')
  small_image: bool = doc(False, '32x32 model (stages 2-3 stride 1) and '
                          'CIFAR/SVHN pipeline.')
  mean_rgb: Optional[tuple[float, float, float]] = doc(
      None, 'Per-channel mean of 0-255 pixels (the model normalises).')
  stddev_rgb: Optional[tuple[float, float, float]] = doc(
      None, 'Per-channel standard deviation of 0-255 pixels.')
  dropout_rate: Optional[float] = doc(
      None, 'Dropout before the classifier; default: the model\'s.')
  stochastic_depth_rate: Optional[float] = doc(
      None, 'Final stochastic-depth drop rate; default 0.2.')
  width_coefficient: Optional[float] = doc(
      None, 'Overrides the width multiplier (EfficientNets).')
  depth_coefficient: Optional[float] = doc(
      None, 'Overrides the depth multiplier (EfficientNets).')
  sync_batch_norm: bool = doc(
      False, 'Cross-replica (synchronized) BatchNorm statistics.')
  # The names of classes 0..num_classes-1 (the training data's
  # dataset_info.json `class_names`), None when unknown. Not a flag, and not
  # part of equality: it describes the head but builds no other network, so
  # a model_dir written before names were recorded resumes as the same model.
  class_names: Optional[tuple[str, ...]] = dataclasses.field(
      default=None, compare=False)

  def __post_init__(self):
    if not isinstance(self.model_name, str) or not self.model_name:
      raise errors.ConfigError(f'{errors.field_name("model_name")} must be a '
                               f'model name or path, received: '
                               f'{self.model_name!r}')
    check_ranges(self, {'num_classes': (1, None), 'image_size': (1, None),
                        'dropout_rate': (0.0, BELOW_ONE),
                        'stochastic_depth_rate': (0.0, BELOW_ONE),
                        'width_coefficient': (POSITIVE, None),
                        'depth_coefficient': (POSITIVE, None)})
    _check_rgb(self, 'mean_rgb')
    _check_rgb(self, 'stddev_rgb')
    _check_class_names(self)

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

  @classmethod
  def from_dict(cls, values: dict) -> 'ModelConfig':
    known = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in values.items() if k in known}
    for key in ('mean_rgb', 'stddev_rgb', 'class_names'):
      if values.get(key) is not None:
        values[key] = tuple(values[key])
    return cls(**values)


def _check_class_names(config: 'ModelConfig') -> None:
  """None, or one non-empty string per class (stored as a tuple)."""
  names = config.class_names
  if names is None:
    return
  if isinstance(names, str) or not all(
      isinstance(n, str) and n for n in names):
    raise errors.ConfigError(
        f'{errors.field_name("class_names")} must be a list of non-empty '
        f'strings or None, received: {names!r:.200}')
  names = tuple(names)
  if len(names) != config.num_classes:
    raise errors.ConfigError(
        f'{errors.field_name("class_names")}: {len(names)} names for '
        f'{errors.field_name("num_classes")}={config.num_classes}')
  object.__setattr__(config, 'class_names', names)


def class_difference(first: Sequence[str], second: Sequence[str]
                     ) -> Optional[tuple[int, Optional[str], Optional[str]]]:
  """(index, first's name, second's name) of the first class whose names
  differ (a missing name is None), or None when the lists are equal."""
  for i in range(max(len(first), len(second))):
    a = first[i] if i < len(first) else None
    b = second[i] if i < len(second) else None
    if a != b:
      return i, a, b
  return None


def _augment_name(config, field: str, extra: Sequence = ()):
  """Normalises an augmentation name field: '', 'none', 'None' -> None."""
  name = getattr(config, field)
  if name in ('', 'none', 'None'):
    name = None
    object.__setattr__(config, field, None)
  if name not in AUGMENT_NAMES and name not in extra:
    raise errors.ConfigError(
        f'{errors.field_name(field)}: unknown augmentation {name!r} '
        "(None or 'v1' = RandAugment"
        + (f", or {', '.join(map(repr, extra))}" if extra else '') + ')')


@dataclasses.dataclass(frozen=True)
class NoiseConfig:
  """The noise of one training run: data noise and model noise.

  The factory (`noisy_student.core.factory`) spreads it over the configs that
  apply it: the augmentation fields go to `DataConfig` (the input pipeline),
  dropout and stochastic depth to `ModelConfig` (the network).
  """
  augment_name: Optional[str] = doc(
      None, 'Augmentation of labeled images: None (crop and flip only) or v1 '
      '(RandAugment).')
  unl_augment_name: Optional[str] = doc(
      'default', 'Augmentation of unlabeled images: default = the same as '
      'augment_name (the original\'s --unl_aug), None or v1.')
  randaug_magnitude: int = doc(27, 'RandAugment magnitude M.')
  randaug_num_layers: int = doc(2, 'RandAugment ops per image N.')
  use_cutout_op: bool = doc(True, 'Include Cutout in the RandAugment ops.')
  dropout_rate: Optional[float] = doc(
      None, 'Dropout before the classifier (model noise); default: the '
      'model\'s.')
  stochastic_depth_rate: Optional[float] = doc(
      None, 'Final stochastic-depth drop rate (model noise); default 0.2.')

  def __post_init__(self):
    _augment_name(self, 'augment_name')
    _augment_name(self, 'unl_augment_name', extra=('default',))
    check_ranges(self, {'randaug_magnitude': (0, None),
                        'randaug_num_layers': (0, None),
                        'dropout_rate': (0.0, BELOW_ONE),
                        'stochastic_depth_rate': (0.0, BELOW_ONE)})

  @property
  def unlabeled_augment_name(self) -> Optional[str]:
    return (self.augment_name if self.unl_augment_name == 'default'
            else self.unl_augment_name)

  @property
  def augments(self) -> bool:
    """True when labeled or unlabeled images get RandAugment."""
    return bool(self.augment_name or self.unlabeled_augment_name)


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Where the TFRecords are and how they are read and augmented.

  `teacher_image_size` is the size of the un-augmented teacher view (None: no
  view); `pseudo_labels_stored` says the unlabeled records carry
  `probabilities` (offline teacher; False when a teacher runs on the fly);
  `num_classes` is the length of those probabilities.
  """
  label_data_dir: str = doc(
      '', 'Folder(s) of labeled TFRecords (train-*, dev-*, test-*, '
      'validation-*); ";"-separated for several.')
  unlabel_data_dir: str = doc(
      '', 'Folder(s) of unlabeled (train-*/extra-*) or filtered pseudo-labeled '
      'shards; ";"-separated for several.')
  train_prefix: str = doc('train', 'File-name prefix of the labeled train split.')
  unlabel_prefixes: tuple[str, ...] = doc(
      ('train', 'extra'), 'File-name prefixes of the unlabeled shards.')
  num_train_shards: Optional[int] = doc(
      None, 'Use only the first N labeled training shards.')
  image_size: int = doc(224, 'The student\'s input size in pixels.')
  small_image: bool = doc(False, 'The 32x32 small-image pipeline.')
  flip: bool = doc(True, 'Random horizontal flips keep the label.')
  teacher_image_size: Optional[int] = doc(None, 'The teacher view\'s size.')
  pseudo_labels_stored: bool = doc(False, 'Unlabeled records carry '
                                   'probabilities (offline teacher).')
  num_classes: int = doc(1000, 'Length of the stored probabilities.')
  augment_name: Optional[str] = doc(None, 'None or v1 (RandAugment).')
  unl_augment_name: Optional[str] = doc(None, 'None or v1 (RandAugment).')
  randaug_magnitude: int = doc(27, 'RandAugment magnitude M.')
  randaug_num_layers: int = doc(2, 'RandAugment ops per image N.')
  use_cutout_op: bool = doc(True, 'Include Cutout in the RandAugment ops.')
  remove_aug: bool = doc(False, 'Train with the evaluation preprocessing '
                         '(centre crop).')
  use_cache: bool = doc(True, 'Cache the training records in memory (skipped '
                        'when larger than half the RAM).')
  shuffle_buffer: int = doc(16384, 'Records in the shuffle buffer.')
  deterministic: bool = doc(
      False, 'Fixed input order and augmentation for the seed and '
      'deterministic TF ops, so that a killed and resumed run ends with '
      'exactly the weights of an uninterrupted one (slower).')
  seed: int = doc(0, 'Seed of shuffling, augmentation and masks.')

  def __post_init__(self):
    _augment_name(self, 'augment_name')
    _augment_name(self, 'unl_augment_name')
    check_ranges(self, {'num_train_shards': (1, None), 'image_size': (1, None),
                        'teacher_image_size': (1, None),
                        'num_classes': (1, None), 'randaug_magnitude': (0, None),
                        'randaug_num_layers': (0, None),
                        'shuffle_buffer': (1, None)})


# DataConfig fields that change nothing unless an augmentation is on.
RANDAUGMENT_FIELDS = ('randaug_magnitude', 'randaug_num_layers',
                      'use_cutout_op')


def _without_class_names(settings):
  """`settings` without the `class_names` of its model configs, at any depth
  (names change no output; work dirs recorded before models carried them
  stay comparable)."""
  if isinstance(settings, dict):
    return {k: _without_class_names(v) for k, v in settings.items()
            if k != 'class_names'}
  return settings


def settings_that_matter(settings):
  """A stage's recorded settings (`dataclasses.asdict` of an
  ExperimentConfig, or any dict) without the fields that cannot change its
  outputs: the models' class names, and RandAugment's magnitude, layers and
  cutout when neither augmentation is on (a teacher without RandAugment is
  not changed by --randaug_mag). Other values are returned as they are."""
  if not isinstance(settings, dict):
    return settings
  settings = _without_class_names(settings)
  data = settings.get('data')
  if isinstance(data, dict) and not (data.get('augment_name')
                                     or data.get('unl_augment_name')):
    data = {k: v for k, v in data.items() if k not in RANDAUGMENT_FIELDS}
    settings = dict(settings, data=data)
  return settings


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Optimisation and loop settings (original flag names, after train_ratio)."""
  train_steps: int = doc(109474, 'Training steps (before --train_ratio); 350 '
                         'epochs of ImageNet at batch 4096.')
  train_last_step_num: Optional[int] = doc(
      None, 'Fine-tuning: train only the last N of train_steps (the LR '
      'schedule starts at train_steps - N); None: all.')
  train_ratio: float = doc(1.0, 'Multiplies train_steps and the LR decay '
                           'period.')
  train_batch_size: int = doc(4096, 'Global labeled batch per step (split '
                              'over replicas).')
  eval_batch_size: int = doc(8, 'Global evaluation batch.')
  num_train_images: int = doc(1281167, 'Labeled training images (steps per '
                              'epoch); default: the dataset\'s.')
  iterations_per_loop: int = doc(1000, 'Steps per loop: a summary and a '
                                 'loop line each.')
  log_every_steps: int = doc(100, 'A progress line (step, loss, rate, ETA) at '
                             'least every this many steps and about every '
                             '15 s.')
  save_checkpoints_steps: int = doc(1000, 'Checkpoint period in steps (at '
                                    'least iterations_per_loop).')
  keep_checkpoint_max: int = doc(5, 'Checkpoints kept.')
  steps_per_eval: int = doc(3000, 'train_and_eval: evaluate every this many '
                            'steps.')
  base_learning_rate: float = doc(0.016, 'Learning rate at batch 256 (scaled '
                                  'by batch/256).')
  final_base_lr: Optional[float] = doc(
      None, 'If set, the decay period is chosen to reach it at the last step '
      '(original rule; needs more than 5 epochs of training).')
  moving_average_decay: float = doc(0.9999, 'EMA decay of the weights (0: no '
                                    'EMA).')
  weight_decay: float = doc(1e-5, 'L2 weight decay (non-BatchNorm weights).')
  label_smoothing: float = doc(0.1, 'Label smoothing.')
  unlabel_ratio: float = doc(0.0, 'Unlabeled batch = ceil(unlabel_ratio x '
                             'labeled batch).')
  label_data_sample_prob: float = doc(1.0, 'Keep each labeled example in the '
                                      'loss with this probability.')
  teacher_softmax_temp: float = doc(-1.0, 'Teacher softmax temperature; -1 = '
                                    'hard one-hot labels.')
  mixed_precision: str = doc('float32', 'float32, bfloat16 or float16 (float16 '
                             'uses dynamic loss scaling).',
                             choices=MIXED_PRECISION)
  jit_compile: bool = doc(False, 'XLA-compile the train step (GPU/TPU '
                          'speed-up).')
  seed: int = doc(0, 'Seed of shuffling, augmentation and masks.')

  def __post_init__(self):
    check_ranges(self, {
        'train_steps': (1, None), 'train_last_step_num': (1, None),
        'train_batch_size': (1, None),
        'eval_batch_size': (1, None), 'num_train_images': (1, None),
        'iterations_per_loop': (1, None),
        'log_every_steps': (1, None), 'save_checkpoints_steps': (1, None),
        'keep_checkpoint_max': (1, None), 'steps_per_eval': (1, None),
        'train_ratio': (POSITIVE, None), 'base_learning_rate': (POSITIVE, None),
        'final_base_lr': (POSITIVE, None),
        'moving_average_decay': (0.0, BELOW_ONE), 'weight_decay': (0.0, None),
        'label_smoothing': (0.0, BELOW_ONE), 'unlabel_ratio': (0.0, None),
        'label_data_sample_prob': (POSITIVE, 1.0)})
    if not 0 < self.last_step <= self.train_steps:
      raise errors.ConfigError(
          f'{errors.field_name("train_last_step_num")} must be in [1, '
          f'{errors.field_name("train_steps")}={self.train_steps}], '
          f'received: {self.train_last_step_num}')
    if not (self.teacher_softmax_temp == -1 or self.teacher_softmax_temp > 0):
      raise errors.ConfigError(
          f'{errors.field_name("teacher_softmax_temp")} must be -1 (hard '
          f'labels) or > 0, received: {self.teacher_softmax_temp}')
    check_choice(self, 'mixed_precision', MIXED_PRECISION)
    if (self.final_base_lr is not None
        and not self.final_base_lr < self.base_learning_rate):
      raise errors.ConfigError(
          f'{errors.field_name("final_base_lr")} must be in (0, '
          f'{errors.field_name("base_learning_rate")}='
          f'{self.base_learning_rate}), received: {self.final_base_lr}')

  def check_schedule(self) -> None:
    """Raises ConfigError when the schedule cannot be built for this data.

    Called where the train config meets its dataset (`ExperimentConfig`,
    `RoundsConfig`): `final_base_lr` needs more than the warm-up's epochs.
    """
    from noisy_student.core import schedules  # pylint: disable=g-import-not-at-top
    schedules.from_train_config(self)

  @property
  def last_step(self) -> int:
    """The step training stops at: train_last_step_num, None = train_steps.

    Fine-tuning the tail of a schedule trains only its last
    train_last_step_num steps (the original's flag, after train_ratio).
    """
    return (self.train_steps if self.train_last_step_num is None
            else self.train_last_step_num)

  def per_replica_batches(self, num_replicas: int) -> tuple[int, int]:
    """(labeled, unlabeled) images per replica and step.

    The labeled global batch must divide evenly; the unlabeled batch is
    ceil(unlabel_ratio * labeled batch * label_data_sample_prob) per replica.
    """
    if self.train_batch_size % num_replicas:
      raise errors.ConfigError(
          f'{errors.field_name("train_batch_size")}={self.train_batch_size} '
          f'is not divisible by the {num_replicas} replicas of the '
          'distribution strategy')
    labeled = self.train_batch_size // num_replicas
    unlabeled = int(math.ceil(
        self.unlabel_ratio * labeled * self.label_data_sample_prob))
    return labeled, unlabeled


@dataclasses.dataclass(frozen=True)
class TeacherConfig:
  """A teacher that labels the unlabeled batch on the fly (inference mode)."""
  model: ModelConfig
  path: str


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  """The whole job: what to train, on what, how, and where to write.

  The fields with help texts are main's flags (`cli/config_flags.py`).
  """
  model_dir: str = doc(
      dataclasses.MISSING, 'Where checkpoints, TensorBoard summaries, '
      'FLAGS.json, model_config.json and eval_results.json are written.')
  model: ModelConfig
  data: DataConfig
  train: TrainConfig
  teacher: Optional[TeacherConfig] = None
  init_model_path: Optional[str] = doc(
      None, 'Checkpoint (ours, .keras or original TF1) to initialise the '
      'student from; only used with --init_model.')
  strategy: str = doc('default', 'default (one device), mirrored (all local '
                      'GPUs), multi_worker (hosts in TF_CONFIG) or tpu.',
                      choices=STRATEGIES)
  tpu: Optional[str] = doc(None, 'TPU name or grpc:// address.')
  tpu_zone: Optional[str] = doc(None, 'GCE zone of the TPU.')
  gcp_project: Optional[str] = doc(None, 'GCP project of the TPU.')
  eval_splits: tuple[str, ...] = doc(
      ('dev', 'test'), 'Comma-separated eval splits; default: the task\'s '
      '(dev,test or validation).')

  def __post_init__(self):
    check_choice(self, 'strategy', STRATEGIES)
    self.train.check_schedule()


@dataclasses.dataclass(frozen=True)
class Recipe:
  """How one model of a Noisy Student job is trained: optimisation + noise.

  `train.num_train_images` is filled in from the dataset when the stage's
  `ExperimentConfig` is built; `train.unlabel_ratio` and
  `train.teacher_softmax_temp` only matter for students.
  """
  train: TrainConfig = TrainConfig()
  noise: NoiseConfig = NoiseConfig()

  def with_steps(self, train_steps: int) -> 'Recipe':
    """The same recipe trained for `train_steps` steps."""
    return dataclasses.replace(self, train=dataclasses.replace(
        self.train, train_steps=train_steps))
