"""Frozen configuration dataclasses for training, evaluation and prediction.

Binaries turn their flags into these objects once (`config_from_flags` in each
binary, through `noisy_student.core.factory`); library code only ever sees the
dataclasses. The field defaults are the original release's flag defaults: the
one table of recipe defaults that flags, `iterate`, the demo and the library
all read (`noisy_student.core.defaults` names the presets built from it).
Derived quantities (per-replica batches, steps per epoch, the learning-rate
schedule) are computed here, in one place.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Optional, Sequence

from noisy_student.runtime import errors

STRATEGIES = ('default', 'mirrored', 'multi_worker', 'tpu')
# Flag names of config fields whose flag is named otherwise.
FLAG_NAMES = {'randaug_magnitude': 'randaug_mag',
              'randaug_num_layers': 'randaug_layer',
              'use_cutout_op': 'cutout_op', 'image_size': 'input_image_size',
              'num_classes': 'num_label_classes'}
# Bounds for `_check_ranges`: exclusive 0 below, exclusive 1 above.
_POSITIVE = 'above 0'
_BELOW_ONE = 'below 1'


def _check_ranges(config, bounds: dict) -> None:
  """ConfigError naming the flag of the first field outside its bounds.

  `bounds` maps a field to (low, high): a number is an inclusive bound,
  _POSITIVE / _BELOW_ONE exclusive 0 / 1, None no bound; None values (a
  model's default) are not checked.
  """
  for field, (low, high) in bounds.items():
    value = getattr(config, field)
    if value is None:
      continue
    ok = ((low is None or (value > 0 if low == _POSITIVE else value >= low))
          and (high is None or (value < 1 if high == _BELOW_ONE
                                else value <= high)))
    if not ok:
      low_text = '(0' if low == _POSITIVE else f'[{low}'
      high_text = ('1)' if high == _BELOW_ONE
                   else 'inf)' if high is None else f'{high}]')
      raise errors.ConfigError(
          f'--{FLAG_NAMES.get(field, field)} must be in {low_text}, '
          f'{high_text}, received: {value}')
MODES = ('train', 'eval', 'train_and_eval', 'predict', 'export')
MIXED_PRECISION = ('float32', 'bfloat16', 'float16')


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Everything needed to rebuild a network (saved as model_config.json).

  `noisy_student.models.backbones.build_model(config)` builds it. Attributes
  mirror `efficientnet.build_model`; None means "the model's default"
  (dropout from the spec table, stochastic depth 0.2, ...).
  """
  model_name: str = 'efficientnet-b0'
  num_classes: int = 1000
  image_size: int = 224
  small_image: bool = False
  mean_rgb: Optional[tuple[float, float, float]] = None
  stddev_rgb: Optional[tuple[float, float, float]] = None
  dropout_rate: Optional[float] = None
  stochastic_depth_rate: Optional[float] = None
  width_coefficient: Optional[float] = None
  depth_coefficient: Optional[float] = None
  sync_batch_norm: bool = False

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

  @classmethod
  def from_dict(cls, values: dict) -> 'ModelConfig':
    known = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in values.items() if k in known}
    for key in ('mean_rgb', 'stddev_rgb'):
      if values.get(key) is not None:
        values[key] = tuple(values[key])
    return cls(**values)


def augment_name_from_flag(name: Optional[str], flag: str) -> Optional[str]:
  """A flag's augmentation name: None for '', 'none' or 'None', else 'v1'.

  Raises:
    ConfigError naming `--<flag>` for any other name.
  """
  if name in (None, '', 'none', 'None'):
    return None
  if name != 'v1':
    raise errors.ConfigError(f'--{flag}: unknown augmentation {name!r} '
                             "(None or 'v1' = RandAugment)")
  return name


@dataclasses.dataclass(frozen=True)
class NoiseConfig:
  """The noise of one training run: data noise and model noise.

  The factory (`noisy_student.core.factory`) spreads it over the configs that
  apply it: the augmentation fields go to `DataConfig` (the input pipeline),
  dropout and stochastic depth to `ModelConfig` (the network).

  Attributes:
    augment_name: labeled images: None (crop and flip only) or 'v1' (RandAugment).
    unl_augment_name: unlabeled images; 'default' means the same as
      `augment_name` (the original's --unl_aug).
    randaug_magnitude / randaug_num_layers: RandAugment M and N.
    use_cutout_op: include Cutout among the RandAugment ops.
    dropout_rate: dropout before the classifier; None = the model's default.
    stochastic_depth_rate: final stochastic-depth drop rate; None = 0.2.
  """
  augment_name: Optional[str] = None
  unl_augment_name: Optional[str] = 'default'
  randaug_magnitude: int = 27
  randaug_num_layers: int = 2
  use_cutout_op: bool = True
  dropout_rate: Optional[float] = None
  stochastic_depth_rate: Optional[float] = None

  def __post_init__(self):
    _check_ranges(self, {'randaug_magnitude': (0, None),
                         'randaug_num_layers': (0, None),
                         'dropout_rate': (0.0, _BELOW_ONE),
                         'stochastic_depth_rate': (0.0, _BELOW_ONE)})

  @property
  def unlabeled_augment_name(self) -> Optional[str]:
    return (self.augment_name if self.unl_augment_name == 'default'
            else self.unl_augment_name)


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Where the TFRecords are and how they are read and augmented.

  Attributes:
    label_data_dir: folder(s) of labeled shards (`;`-separated, as the original).
    unlabel_data_dir: folder(s) of unlabeled or pseudo-labeled shards, or ''.
    train_prefix / unlabel_prefixes: file-name prefixes of the splits.
    image_size / small_image / flip: the student's input pipeline.
    teacher_image_size: size of the un-augmented teacher view (None: no view).
    pseudo_labels_stored: the unlabeled records carry `probabilities`
      (offline teacher); False when a teacher runs on the fly.
    num_classes: length of the stored `probabilities`.
    augment_name / unl_augment_name: None or 'v1' (RandAugment).
    remove_aug: train with the evaluation preprocessing (centre crop).
    use_cache: cache the raw records in memory (skipped, with a warning, when
      the files are larger than half of the machine's memory).
    deterministic: a fixed record order and fixed augmentations for a given
      seed, so that a resumed run sees exactly the data it would have seen.
    seed: base seed of shuffling and augmentation.
  """
  label_data_dir: str
  unlabel_data_dir: str = ''
  train_prefix: str = 'train'
  unlabel_prefixes: tuple[str, ...] = ('train', 'extra')
  num_train_shards: Optional[int] = None
  image_size: int = 224
  small_image: bool = False
  flip: bool = True
  teacher_image_size: Optional[int] = None
  pseudo_labels_stored: bool = False
  num_classes: int = 1000
  augment_name: Optional[str] = None
  unl_augment_name: Optional[str] = None
  randaug_magnitude: int = 27
  randaug_num_layers: int = 2
  use_cutout_op: bool = True
  remove_aug: bool = False
  use_cache: bool = True
  shuffle_buffer: int = 16384
  deterministic: bool = False
  seed: int = 0


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Optimisation and loop settings (original flag names, after train_ratio)."""
  train_steps: int = 109474
  train_last_step_num: Optional[int] = None
  train_ratio: float = 1.0
  train_batch_size: int = 4096
  eval_batch_size: int = 8
  num_train_images: int = 1281167
  iterations_per_loop: int = 1000
  log_every_steps: int = 100
  save_checkpoints_steps: int = 1000
  keep_checkpoint_max: int = 5
  steps_per_eval: int = 3000
  base_learning_rate: float = 0.016
  final_base_lr: Optional[float] = None
  moving_average_decay: float = 0.9999
  weight_decay: float = 1e-5
  label_smoothing: float = 0.1
  unlabel_ratio: float = 0.0
  label_data_sample_prob: float = 1.0
  teacher_softmax_temp: float = -1.0
  mixed_precision: str = 'float32'
  jit_compile: bool = False
  seed: int = 0

  def __post_init__(self):
    _check_ranges(self, {
        'train_steps': (1, None), 'train_batch_size': (1, None),
        'eval_batch_size': (1, None), 'iterations_per_loop': (1, None),
        'log_every_steps': (1, None), 'save_checkpoints_steps': (1, None),
        'keep_checkpoint_max': (1, None), 'steps_per_eval': (1, None),
        'train_ratio': (_POSITIVE, None), 'base_learning_rate': (_POSITIVE, None),
        'moving_average_decay': (0.0, _BELOW_ONE), 'weight_decay': (0.0, None),
        'label_smoothing': (0.0, _BELOW_ONE), 'unlabel_ratio': (0.0, None),
        'label_data_sample_prob': (_POSITIVE, 1.0)})
    if not 0 < self.last_step <= self.train_steps:
      raise errors.ConfigError(
          f'--train_last_step_num must be in [1, --train_steps='
          f'{self.train_steps}], received: {self.train_last_step_num}')
    if self.teacher_softmax_temp != -1 and self.teacher_softmax_temp <= 0:
      raise errors.ConfigError(
          f'--teacher_softmax_temp must be -1 (hard labels) or > 0, received: '
          f'{self.teacher_softmax_temp}')
    if self.mixed_precision not in MIXED_PRECISION:
      raise errors.ConfigError(f'--mixed_precision must be one of '
                               f'{MIXED_PRECISION}, received: '
                               f'{self.mixed_precision!r}')

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
          f'--train_batch_size={self.train_batch_size} is not divisible by the '
          f'{num_replicas} replicas of the distribution strategy')
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
  """The whole job: what to train, on what, how, and where to write."""
  model_dir: str
  model: ModelConfig
  data: DataConfig
  train: TrainConfig
  teacher: Optional[TeacherConfig] = None
  init_model_path: Optional[str] = None
  strategy: str = 'default'
  tpu: Optional[str] = None
  tpu_zone: Optional[str] = None
  gcp_project: Optional[str] = None
  eval_splits: Sequence[str] = ('dev', 'test')


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
