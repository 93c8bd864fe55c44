"""What the training code needs to know about a dataset, and the built-in ones.

`DatasetInfo` holds the classes, image size, split sizes, normalisation and
flips of one dataset. The built-in datasets (`--task_name` imagenet, svhn,
cifar10, digits) are the table below; every value can be overridden by the
matching flag (`--input_image_size`, `--num_label_classes`,
`--num_train_images`, ...).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Optional

from efficientnet import params
from noisy_student.core import errors

# ImageNet statistics: the EfficientNet checkpoints' (efficientnet/params.py).
IMAGENET_MEAN_RGB = params.IMAGENET_MEAN_RGB
IMAGENET_STDDEV_RGB = params.IMAGENET_STDDEV_RGB
# SVHN statistics of the original (noisystudent task_info.py).
SVHN_MEAN_RGB = (0.4376821 * 255, 0.4437697 * 255, 0.47280442 * 255)
SVHN_STDDEV_RGB = (0.19803012 * 255, 0.20101562 * 255, 0.19703614 * 255)
# CIFAR-10 training-set statistics (the usual published values).
CIFAR10_MEAN_RGB = (0.4914 * 255, 0.4822 * 255, 0.4465 * 255)
CIFAR10_STDDEV_RGB = (0.2470 * 255, 0.2435 * 255, 0.2616 * 255)
# scikit-learn digits as written by data/prepare_digits.py (32x32, gray->RGB),
# measured over all 1,797 images.
DIGITS_MEAN_RGB = (0.3055 * 255,) * 3
DIGITS_STDDEV_RGB = (0.3235 * 255,) * 3


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What the training code needs to know about a dataset.

  Attributes:
    name: the `--task_name` value (or the data folder's name).
    num_classes: number of classes (labels are 0..num_classes-1 in memory).
    image_size: input resolution in pixels, or None for the model's default.
    small_image: use the 32x32 "small image" EfficientNet and input pipeline.
    mean_rgb / stddev_rgb: per-channel normalisation on 0-255 pixels.
    num_train_images: size of the labeled training split (`train-*` files).
    eval_split_sizes: evaluation split name (file prefix) -> number of images.
    flip: random horizontal flips in training (never for digits / SVHN).
    class_names: names of classes 0..num_classes-1, when known.
  """
  name: str
  num_classes: int
  image_size: int | None
  small_image: bool
  mean_rgb: tuple[float, float, float]
  stddev_rgb: tuple[float, float, float]
  num_train_images: int
  eval_split_sizes: Mapping[str, int]
  flip: bool
  class_names: Optional[tuple[str, ...]] = None

  @property
  def eval_splits(self) -> tuple[str, ...]:
    return tuple(self.eval_split_sizes)


BUILTIN: dict[str, DatasetInfo] = {
    'imagenet': DatasetInfo(
        name='imagenet', num_classes=1000, image_size=None, small_image=False,
        mean_rgb=IMAGENET_MEAN_RGB, stddev_rgb=IMAGENET_STDDEV_RGB,
        num_train_images=1281167,
        eval_split_sizes={'validation': 50000}, flip=True),
    'svhn': DatasetInfo(
        name='svhn', num_classes=10, image_size=32, small_image=True,
        mean_rgb=SVHN_MEAN_RGB, stddev_rgb=SVHN_STDDEV_RGB,
        num_train_images=73257 - 4000,
        eval_split_sizes={'dev': 4000, 'test': 26032}, flip=False),
    'cifar10': DatasetInfo(
        name='cifar10', num_classes=10, image_size=32, small_image=True,
        mean_rgb=CIFAR10_MEAN_RGB, stddev_rgb=CIFAR10_STDDEV_RGB,
        num_train_images=50000 - 5000,
        eval_split_sizes={'dev': 5000, 'test': 10000}, flip=True),
    # The embedded demo dataset (scikit-learn's 1,797 handwritten digits):
    # 300 labeled train / 897 unlabeled / 200 dev / 400 test.
    'digits': DatasetInfo(
        name='digits', num_classes=10, image_size=32, small_image=True,
        mean_rgb=DIGITS_MEAN_RGB, stddev_rgb=DIGITS_STDDEV_RGB,
        num_train_images=300,
        eval_split_sizes={'dev': 200, 'test': 400}, flip=False),
}


def get_builtin(name: str) -> DatasetInfo:
  """The built-in dataset `name`; a ConfigError lists the known ones."""
  try:
    return BUILTIN[name]
  except KeyError:
    raise errors.ConfigError(
        f'unknown --task_name={name!r}; built-in datasets: '
        f'{", ".join(sorted(BUILTIN))}') from None
