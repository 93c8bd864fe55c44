"""What the training code needs to know about a dataset, and the built-in ones.

`DatasetInfo` holds the classes, image size, split sizes, normalisation and
flips of one dataset. The built-in datasets (`--task_name` imagenet, svhn,
cifar10, digits) are the table below; every value can be overridden by the
matching flag (`--input_image_size`, `--num_label_classes`,
`--num_train_images`, ...).
"""

from __future__ import annotations

import dataclasses
import numbers
import os
from typing import Mapping, Optional

from data import dataset_info
from efficientnet import params
from noisy_student.runtime import errors

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
    num_train_images: size of the labeled training split (`train-*` files);
      None when unknown (evaluation-only folders).
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
  num_train_images: Optional[int]
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
        f'unknown {errors.field_name("task_name")}={name!r}; built-in datasets: '
        f'{", ".join(sorted(BUILTIN))}') from None


# Largest image side that gets the 32x32 "small image" model and pipeline.
SMALL_IMAGE_MAX_SIZE = 32


def from_info(info: Mapping, folder: str) -> DatasetInfo:
  """The DatasetInfo a `dataset_info.json` (data/dataset_info.py) describes.

  Labeled splits other than `train` are the eval splits, in the file's order;
  a folder without measured statistics is normalised like ImageNet.

  Raises:
    DatasetInfoError naming the file when it records no classes.
  """
  num_classes = info.get('num_classes')
  if not num_classes:
    raise dataset_info.DatasetInfoError(
        f'{dataset_info.path(folder)} records no classes (a folder of '
        'unlabeled images); give the labeled folder as the data folder '
        '(main: --label_data_dir)')
  splits = info.get('splits', {})
  train = splits.get('train')
  image_size = info.get('image_size')
  names = info.get('class_names')
  return DatasetInfo(
      name=info.get('name') or os.path.basename(os.path.normpath(folder)),
      num_classes=int(num_classes), image_size=image_size,
      small_image=image_size is not None and image_size <= SMALL_IMAGE_MAX_SIZE,
      mean_rgb=tuple(info.get('mean_rgb') or IMAGENET_MEAN_RGB),
      stddev_rgb=tuple(info.get('stddev_rgb') or IMAGENET_STDDEV_RGB),
      num_train_images=int(train['num_examples']) if train else None,
      eval_split_sizes={name: int(s['num_examples'])
                        for name, s in splits.items()
                        if name != 'train' and s.get('labeled', True)},
      flip=bool(info.get('flip', True)),
      class_names=tuple(names) if names else None)


def with_counts(base: DatasetInfo, info: DatasetInfo) -> DatasetInfo:
  """`base` (a built-in task) with the classes and split sizes the data states."""
  return dataclasses.replace(
      base, num_classes=info.num_classes, class_names=info.class_names,
      num_train_images=(info.num_train_images if info.num_train_images
                        is not None else base.num_train_images),
      eval_split_sizes=dict(info.eval_split_sizes) or base.eval_split_sizes)


def resolve(task_name: Optional[str], data_dir: Optional[str], *,
            num_classes: Optional[int] = None,
            num_train_images: Optional[int] = None,
            image_size: Optional[int] = None) -> DatasetInfo:
  """The dataset of a job: the folder's description, the task, or the flags.

  Precedence, highest first: the count flags given here; the classes and
  split sizes of `<data_dir>/dataset_info.json` (or its parent's); the
  built-in `--task_name` (its normalisation, image size and flips); the rest
  of `dataset_info.json`. With neither a description nor a task, the flags
  must give at least the classes and the training-set size.

  Raises:
    ConfigError naming what is missing; DatasetInfoError for a bad file.
  """
  for field, value in (('num_classes', num_classes),
                       ('num_train_images', num_train_images),
                       ('image_size', image_size)):
    if value is None:
      continue
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
      raise errors.ConfigError(f'{errors.field_name(field)} must be a whole '
                               f'number, received: {value!r}')
    if value < 1:
      raise errors.ConfigError(f'{errors.field_name(field)} must be in '
                               f'[1, inf), received: {value}')
  found = dataset_info.find(data_dir, with_classes=True) if data_dir else None
  described = from_info(found[1], found[0]) if found else None
  if task_name:
    dataset = get_builtin(task_name)
    if described is not None:
      dataset = with_counts(dataset, described)
  elif described is not None:
    dataset = described
  elif num_classes and num_train_images:
    dataset = DatasetInfo(
        name='custom', num_classes=num_classes, image_size=image_size,
        small_image=image_size is not None and image_size <= SMALL_IMAGE_MAX_SIZE,
        mean_rgb=IMAGENET_MEAN_RGB, stddev_rgb=IMAGENET_STDDEV_RGB,
        num_train_images=num_train_images, eval_split_sizes={}, flip=True)
  else:
    unlabeled = dataset_info.find(data_dir) if data_dir else None
    if unlabeled is not None:
      from_info(unlabeled[1], unlabeled[0])  # raises: it records no classes
    where = data_dir.split(';')[0] if data_dir else 'the data folder'
    raise errors.ConfigError(
        f'{where} has no {dataset_info.FILENAME} (nor its parent) and no '
        f'{errors.field_name("task_name")} was given: pass {errors.field_name("task_name")} (built-in: '
        f'{", ".join(sorted(BUILTIN))}), write the folder with a converter '
        '(noisy-student-images-to-tfrecord / noisy-student-tfds-to-tfrecord write '
        f'{dataset_info.FILENAME}), or pass {errors.field_name("num_classes")} and '
        f'{errors.field_name("num_train_images")}')
  changes = {}
  if num_classes and num_classes != dataset.num_classes:
    changes.update(num_classes=num_classes, class_names=None)
  if num_train_images:
    changes['num_train_images'] = num_train_images
  return dataclasses.replace(dataset, **changes) if changes else dataset


def check_folder(data_dir: Optional[str],
                 splits: Optional[tuple[str, ...]] = None) -> None:
  """Compares the shards of `data_dir` with its dataset_info.json, if any.

  Counts records (headers only) before any work starts, so a description that
  contradicts its shards is reported by name instead of training on the
  wrong numbers.

  Raises:
    DatasetInfoError naming the file, the split and both counts.
  """
  if not data_dir:
    return
  for folder in [d for d in data_dir.split(';') if d]:
    found = dataset_info.find(folder)
    if found is not None:
      dataset_info.check_shards(*found, splits=splits)


def check_unlabeled_classes(dataset: DatasetInfo,
                            unlabel_data_dir: Optional[str]) -> None:
  """An unlabeled folder that records classes must record the labeled data's.

  Pseudo-labels are indices into the labeled data's classes; an unlabeled
  folder described with other classes (another dataset's images, or another
  class order) is refused rather than mixed in silently.

  Raises:
    DatasetInfoError naming the unlabeled folder's file and both class lists.
  """
  for folder in [d for d in (unlabel_data_dir or '').split(';') if d]:
    found = dataset_info.find(folder)
    if found is None:
      continue
    info = found[1]
    theirs, names = info.get('num_classes'), info.get('class_names')
    mismatch = (theirs is not None and theirs != dataset.num_classes) or (
        names and dataset.class_names
        and tuple(names) != tuple(dataset.class_names))
    if mismatch:
      ours = (list(dataset.class_names) if dataset.class_names
              else f'{dataset.num_classes} classes')
      raise dataset_info.DatasetInfoError(
          f'{dataset_info.path(found[0])} describes {theirs} classes '
          f'{names if names else ""} but the labeled data has {ours}: '
          f'pseudo-labels would name other classes; check {errors.field_name("unlabel_data_dir")} '
          '(images of another dataset used as unlabeled data: set '
          'num_classes and class_names to null in that file)')
