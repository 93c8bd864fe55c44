"""The one place where a dataset, a model name and overrides become configs.

`main` (from flags), `iterate`'s stages, the demo, the loaders of original TF1
checkpoints and the Python API all build their `ModelConfig` / `DataConfig`
here, so an image size, a normalisation or a noise setting is decided once:

* image size: an explicit override, else the dataset's, else the model's own
  resolution (EfficientNet spec: train resolution for training, eval
  resolution for evaluation, prediction and teachers);
* classes, normalisation, small-image variant and flips: the dataset's,
  unless overridden;
* noise (`NoiseConfig`): augmentation into the `DataConfig`, dropout and
  stochastic depth into the `ModelConfig`.
"""

from __future__ import annotations

from typing import Optional

from noisy_student.core import config as config_lib
from noisy_student.core import datasets
from noisy_student.core import model_refs
from noisy_student.runtime import errors

# NoiseConfig fields the input pipeline applies (DataConfig has the same names).
_DATA_NOISE_FIELDS = ('augment_name', 'randaug_magnitude', 'randaug_num_layers',
                      'use_cutout_op')


def model_resolution(model_name: str, *, for_eval: bool = False) -> int:
  """The model's own input size in pixels (EfficientNet: its spec table).

  Raises:
    ConfigError naming the model when it is unknown.
  """
  return model_refs.native_image_size(model_name, for_eval=for_eval)


def image_size(dataset: datasets.DatasetInfo, model_name: str, *,
               override: Optional[int] = None, for_eval: bool = False) -> int:
  """`override`, else the dataset's size, else the model's resolution."""
  if override is not None:
    _check_positive_size(override)
    return override
  if dataset.image_size is not None:
    return dataset.image_size
  return model_resolution(model_name, for_eval=for_eval)


def _check_positive_size(image_size_override: int) -> None:
  if image_size_override <= 0:
    raise errors.ConfigError(f'{errors.field_name("image_size")} must be '
                             f'positive, received: {image_size_override}')


def inference_image_size(model: config_lib.ModelConfig) -> int:
  """The size evaluation, prediction and teachers feed `model`, in pixels.

  A model trained at its default (train) resolution is run at its eval
  resolution, as the original did (EfficientNet-L2: trained at 475, run at
  800); a model trained at a size the user chose, a small-image model and a
  model of another family are run at the size they were trained at.
  """
  if model.small_image or not model_refs.has_eval_resolution(model.model_name):
    return model.image_size
  if model.image_size == model_resolution(model.model_name):
    return model_resolution(model.model_name, for_eval=True)
  return model.image_size


def model_config(dataset: datasets.DatasetInfo, model_name: str, *,
                 noise: Optional[config_lib.NoiseConfig] = None,
                 num_classes: Optional[int] = None,
                 image_size_override: Optional[int] = None,
                 small_image: Optional[bool] = None,
                 mean_rgb=None, stddev_rgb=None,
                 width_coefficient: Optional[float] = None,
                 depth_coefficient: Optional[float] = None,
                 sync_batch_norm: bool = False,
                 for_eval: bool = False) -> config_lib.ModelConfig:
  """The architecture of `model_name` for `dataset` (None: the dataset's value)."""
  noise = noise or config_lib.NoiseConfig()
  model_refs.check_model_name(model_name)
  small_image = dataset.small_image if small_image is None else small_image
  if image_size_override is not None:
    _check_positive_size(image_size_override)
  if (small_image and image_size_override is not None
      and dataset.image_size is not None
      and image_size_override != dataset.image_size):
    raise errors.ConfigError(
        f'{errors.field_name("image_size")}={image_size_override}: the small-image (32x32) '
        f'pipeline reads images at their own size, and {dataset.name}\'s are '
        f'{dataset.image_size}x{dataset.image_size} (pass '
        f'{errors.field_name("small_image")}=false to crop and resize instead)')
  return config_lib.ModelConfig(
      model_name=model_name,
      num_classes=dataset.num_classes if num_classes is None else num_classes,
      image_size=image_size(dataset, model_name, override=image_size_override,
                            for_eval=for_eval),
      small_image=small_image,
      mean_rgb=tuple(dataset.mean_rgb if mean_rgb is None else mean_rgb),
      stddev_rgb=tuple(dataset.stddev_rgb if stddev_rgb is None else stddev_rgb),
      dropout_rate=noise.dropout_rate,
      stochastic_depth_rate=noise.stochastic_depth_rate,
      width_coefficient=width_coefficient,
      depth_coefficient=depth_coefficient,
      sync_batch_norm=sync_batch_norm,
      class_names=(dataset.class_names if num_classes in (
          None, dataset.num_classes) else None))


def teacher_model_config(student: config_lib.ModelConfig,
                         model_name: str) -> config_lib.ModelConfig:
  """The architecture of a teacher named `model_name` for `student`'s data.

  It takes the student's classes, normalisation, small-image variant and
  width/depth overrides (the original passed them to both models); it runs at
  `inference_image_size` (its eval resolution, the student's size for
  small-image models).
  """
  size = (student.image_size if student.small_image
          else model_resolution(model_name, for_eval=True))
  return config_lib.ModelConfig(
      model_name=model_name, num_classes=student.num_classes, image_size=size,
      small_image=student.small_image, mean_rgb=student.mean_rgb,
      stddev_rgb=student.stddev_rgb,
      width_coefficient=student.width_coefficient,
      depth_coefficient=student.depth_coefficient)


def data_config(dataset: datasets.DatasetInfo, model: config_lib.ModelConfig,
                noise: config_lib.NoiseConfig, *, label_data_dir: str,
                unlabel_data_dir: str = '',
                **fields) -> config_lib.DataConfig:
  """The input pipeline of `model` on `dataset` with `noise`.

  `fields` set the remaining `DataConfig` fields (seed, use_cache,
  unlabel_prefixes, teacher_image_size, pseudo_labels_stored, ...).
  """
  augmentation = {name: getattr(noise, name) for name in _DATA_NOISE_FIELDS}
  augmentation['unl_augment_name'] = noise.unlabeled_augment_name
  return config_lib.DataConfig(
      label_data_dir=label_data_dir, unlabel_data_dir=unlabel_data_dir,
      image_size=model.image_size, small_image=model.small_image,
      flip=dataset.flip, num_classes=model.num_classes, **augmentation,
      **fields)
