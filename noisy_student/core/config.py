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

STRATEGIES = ('default', 'mirrored', 'multi_worker', 'tpu')
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
  train_last_step_num: int = 109474
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

  def per_replica_batches(self, num_replicas: int) -> tuple[int, int]:
    """(labeled, unlabeled) images per replica and step.

    The labeled global batch must divide evenly; the unlabeled batch is
    ceil(unlabel_ratio * labeled batch * label_data_sample_prob) per replica.
    """
    if self.train_batch_size % num_replicas:
      raise ValueError(
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
