"""Per-task constants: image size, classes, split sizes, normalisation, flips.

One table, read by the binaries when they turn flags into a config. Every value
can be overridden by the matching flag (`--input_image_size`,
`--num_label_classes`, `--num_train_images`, ...).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

# ImageNet statistics of the original (tensorflow/tpu efficientnet, RGB, 0-255).
IMAGENET_MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STDDEV_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)
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
class TaskInfo:
  """What the training code needs to know about a dataset.

  Attributes:
    name: the `--task_name` value.
    num_classes: number of classes (labels are 0..num_classes-1 in memory).
    image_size: input resolution in pixels, or None for the model's default.
    small_image: use the 32x32 "small image" EfficientNet and input pipeline.
    mean_rgb / stddev_rgb: per-channel normalisation on 0-255 pixels.
    num_train_images: size of the labeled training split (`train-*` files).
    eval_split_sizes: evaluation split name (file prefix) -> number of images.
    flip: random horizontal flips in training (never for digits / SVHN).
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

  @property
  def eval_splits(self) -> tuple[str, ...]:
    return tuple(self.eval_split_sizes)


TASKS: dict[str, TaskInfo] = {
    'imagenet': TaskInfo(
        name='imagenet', num_classes=1000, image_size=None, small_image=False,
        mean_rgb=IMAGENET_MEAN_RGB, stddev_rgb=IMAGENET_STDDEV_RGB,
        num_train_images=1281167,
        eval_split_sizes={'validation': 50000}, flip=True),
    'svhn': TaskInfo(
        name='svhn', num_classes=10, image_size=32, small_image=True,
        mean_rgb=SVHN_MEAN_RGB, stddev_rgb=SVHN_STDDEV_RGB,
        num_train_images=73257 - 4000,
        eval_split_sizes={'dev': 4000, 'test': 26032}, flip=False),
    'cifar10': TaskInfo(
        name='cifar10', num_classes=10, image_size=32, small_image=True,
        mean_rgb=CIFAR10_MEAN_RGB, stddev_rgb=CIFAR10_STDDEV_RGB,
        num_train_images=50000 - 5000,
        eval_split_sizes={'dev': 5000, 'test': 10000}, flip=True),
    # The embedded demo dataset (scikit-learn's 1,797 handwritten digits):
    # 300 labeled train / 897 unlabeled / 200 dev / 400 test.
    'digits': TaskInfo(
        name='digits', num_classes=10, image_size=32, small_image=True,
        mean_rgb=DIGITS_MEAN_RGB, stddev_rgb=DIGITS_STDDEV_RGB,
        num_train_images=300,
        eval_split_sizes={'dev': 200, 'test': 400}, flip=False),
}


def get_task(name: str) -> TaskInfo:
  """Returns the TaskInfo for `name`; a ValueError lists the known tasks."""
  try:
    return TASKS[name]
  except KeyError:
    raise ValueError(
        f'Unknown --task_name={name!r}; known tasks: {", ".join(sorted(TASKS))}'
    ) from None
