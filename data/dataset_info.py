"""`dataset_info.json`: a data folder describes itself.

Every converter (`images_to_tfrecord`, `prepare_digits`, `proc_svhn`,
`tfds_to_tfrecord`, `make_corrupted`) writes one `dataset_info.json` in the
folder it writes shards into; `main`, `iterate`, `filter_unlabel` and
`eval_robustness` read it, so a folder needs no `--task_name`. Fields (format
1; a converter may add fields of its own, e.g. its configuration):

  format       1
  name         the dataset's name ('digits', 'cifar10', the folder's name)
  num_classes  labels are 0..num_classes-1 in memory (1-based in the files);
               null for a folder of unlabeled images only
  class_names  [str] naming classes 0.. (null when unknown)
  image_size   the side in pixels when every image is square and of one size,
               else null (the model's resolution is used)
  mean_rgb, stddev_rgb
               per-channel mean and standard deviation on 0-255 pixels over
               the train split, measured while converting (null without one)
  flip         whether horizontal flips keep the label (false for digits/SVHN)
  splits       {split: {num_examples, num_shards, labeled, directory}}: the
               shards `<directory>/<split>-NNNNN-of-<num_shards>` (directory
               relative to the folder, '' for the folder itself; a split may
               also name its file prefix in `split` when its key differs)

Reruns of a converter on the same folder update their splits and keep the
others; two runs that disagree on the classes are refused by name.
"""

from __future__ import annotations

import json
import math
import os
from typing import Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from noisy_student.runtime import errors
from data import layout
from data import records
from data import writers

FILENAME = 'dataset_info.json'
FORMAT = 1
# Fields that describe the whole dataset (the rest describe splits or sources).
DESCRIPTION_FIELDS = ('name', 'num_classes', 'class_names', 'image_size',
                      'mean_rgb', 'stddev_rgb', 'flip')


class DatasetInfoError(errors.NoisyStudentError):
  """A dataset_info.json is unreadable or contradicts the shards; names the file."""


def path(folder: str) -> str:
  return os.path.join(folder, FILENAME)


def read(folder: str) -> Optional[dict]:
  """The parsed `<folder>/dataset_info.json`, or None when there is none."""
  info_path = path(folder)
  if not tf.io.gfile.exists(info_path):
    return None
  with tf.io.gfile.GFile(info_path) as f:
    text = f.read()
  try:
    info = json.loads(text)
  except json.JSONDecodeError as err:
    raise DatasetInfoError(f'{info_path}: not valid JSON ({err})') from None
  if not isinstance(info, dict):
    raise DatasetInfoError(f'{info_path}: expected a JSON object')
  check(info, info_path)
  return info


def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _finite_triple(value) -> bool:
  return (isinstance(value, list) and len(value) == 3 and all(
      isinstance(v, (int, float)) and not isinstance(v, bool)
      and math.isfinite(v) for v in value))


def _inside(relative: str) -> bool:
  """Whether a relative path stays inside the folder it is relative to."""
  if os.path.isabs(relative) or '://' in relative:
    return False
  normal = os.path.normpath(relative) if relative else '.'
  return normal != '..' and not normal.startswith('..' + os.sep)


def check(info: Mapping, info_path: str) -> None:
  """Checks the type and range of every field a reader uses.

  Raises:
    DatasetInfoError naming the file, the field and the value, e.g.
    `.../dataset_info.json: image_size must be a positive integer or null,
    found "abc"`.
  """
  def fail(field: str, expected: str) -> None:
    raise DatasetInfoError(f'{info_path}: {field} must be {expected}, found '
                           f'{_short(info[field] if field in info else None)}')

  num_classes = info.get('num_classes')
  if num_classes is not None and not (_is_int(num_classes) and num_classes >= 1):
    fail('num_classes', 'a positive integer or null (unlabeled images)')
  names = info.get('class_names')
  if names is not None:
    if not isinstance(names, list) or not all(
        isinstance(n, str) and n and '\n' not in n and '\r' not in n
        for n in names):
      fail('class_names', 'a list of non-empty one-line names or null')
  size = info.get('image_size')
  if size is not None and not (_is_int(size) and size >= 1):
    fail('image_size', 'a positive integer or null (images of several sizes)')
  for field in ('mean_rgb', 'stddev_rgb'):
    value = info.get(field)
    if value is not None and not _finite_triple(value):
      fail(field, 'a list of 3 finite numbers (0-255 scale) or null')
  std = info.get('stddev_rgb')
  if std is not None and min(std) <= 0:
    fail('stddev_rgb', 'positive (a zero deviation divides by zero when '
         'normalising; delete the field to use ImageNet\'s)')
  if 'flip' in info and not isinstance(info['flip'], bool):
    fail('flip', 'true or false')
  splits = info.get('splits', {})
  if not isinstance(splits, dict):
    fail('splits', 'an object {split: {num_examples, num_shards, ...}}')
  for split, entry in splits.items():
    where = f'splits.{split}'
    if not isinstance(entry, dict):
      raise DatasetInfoError(f'{info_path}: {where} must be an object, found '
                             f'{_short(entry)}')
    for field, lowest in (('num_examples', 0), ('num_shards', 1)):
      value = entry.get(field)
      if not (_is_int(value) and value >= lowest):
        raise DatasetInfoError(
            f'{info_path}: {where}.{field} must be an integer >= {lowest}, '
            f'found {_short(value)}')
    directory = entry.get('directory', '')
    if not isinstance(directory, str) or not _inside(directory):
      raise DatasetInfoError(
          f'{info_path}: {where}.directory={_short(directory)} leaves the '
          'folder: a split\'s directory must be relative and inside it')
    prefix = entry.get('split', split)
    if not isinstance(prefix, str) or not prefix or not _inside(prefix):
      raise DatasetInfoError(
          f'{info_path}: {where}.split={_short(prefix)} must be a file prefix '
          'inside the folder')


def find(data_dir: str, *, with_classes: bool = False
         ) -> Optional[tuple[str, dict]]:
  """(folder, info) of the `dataset_info.json` describing `data_dir`.

  Looks in `data_dir`, then in its parent (unlabeled shards live in an
  `unlabeled/` subfolder of the dataset); with `with_classes`, only a file
  that records classes counts. `data_dir` may be `;`-separated (the first
  folder counts).
  """
  first = data_dir.split(';')[0].rstrip('/')
  for folder in (first, os.path.dirname(first)):
    if folder:
      info = read(folder)
      if info is not None and (info.get('num_classes') or not with_classes):
        return folder, info
  return None


class PixelStats:
  """Running per-channel sums of uint8 RGB pixels, for mean and stddev."""

  def __init__(self):
    self.count = 0
    self.sum = np.zeros(3, np.float64)
    self.sum_squares = np.zeros(3, np.float64)

  def add(self, images: np.ndarray) -> None:
    """images: uint8 [..., 3] (one image or a batch)."""
    pixels = np.asarray(images, np.float64).reshape(-1, 3)
    self.count += len(pixels)
    self.sum += pixels.sum(axis=0)
    self.sum_squares += np.square(pixels).sum(axis=0)

  def merge(self, other: 'PixelStats') -> None:
    self.count += other.count
    self.sum += other.sum
    self.sum_squares += other.sum_squares

  def to_json(self) -> list:
    return [self.count, self.sum.tolist(), self.sum_squares.tolist()]

  @classmethod
  def from_json(cls, value: Sequence) -> 'PixelStats':
    stats = cls()
    stats.count = int(value[0])
    stats.sum = np.asarray(value[1], np.float64)
    stats.sum_squares = np.asarray(value[2], np.float64)
    return stats

  def mean_std(self) -> tuple[Optional[list], Optional[list]]:
    """([R, G, B] mean, [R, G, B] stddev) on 0-255, or (None, None) if empty
    or if a channel never varies (no deviation to divide by)."""
    if not self.count:
      return None, None
    mean = self.sum / self.count
    variance = np.maximum(self.sum_squares / self.count - np.square(mean), 0.0)
    if np.sqrt(variance).round(4).min() <= 0:
      return None, None
    return ([round(float(v), 4) for v in mean],
            [round(float(v), 4) for v in np.sqrt(variance)])


def only_unlabeled_split(folder: str) -> Optional[str]:
  """The one unlabeled split of `folder`'s dataset_info.json (its shards in
  the folder itself), or None when it lists none or several."""
  info = read(folder) or {}
  unlabeled = [name for name, entry in (info.get('splits') or {}).items()
               if isinstance(entry, dict) and not entry.get('labeled', True)
               and not entry.get('directory')]
  return unlabeled[0] if len(unlabeled) == 1 else None


def common_size(sizes) -> Optional[int]:
  """The side of every (height, width) in `sizes` when all are one square size."""
  sizes = set(tuple(int(v) for v in s) for s in sizes)
  if len(sizes) == 1:
    height, width = sizes.pop()
    if height == width:
      return height
  return None


def description(*, name: str, num_classes: Optional[int],
                class_names: Optional[Sequence[str]] = None,
                image_size: Optional[int] = None,
                pixel_stats: Optional[PixelStats] = None,
                flip: bool = True) -> dict:
  """The dataset-wide fields (see the module docstring)."""
  mean, std = (pixel_stats or PixelStats()).mean_std()
  if class_names is not None and num_classes is not None and (
      len(class_names) != num_classes):
    raise ValueError(f'{len(class_names)} class names for {num_classes} classes')
  return {'format': FORMAT, 'name': name, 'num_classes': num_classes,
          'class_names': list(class_names) if class_names is not None else None,
          'image_size': image_size, 'mean_rgb': mean, 'stddev_rgb': std,
          'flip': bool(flip)}


def split_entry(*, num_examples: int, num_shards: int, labeled: bool,
                directory: str = '', **more) -> dict:
  """One split's entry (extra fields, e.g. label_counts, are kept)."""
  return {'num_examples': int(num_examples), 'num_shards': int(num_shards),
          'labeled': bool(labeled), 'directory': directory, **more}


def update(folder: str, new_description: Mapping, splits: Mapping[str, Mapping],
           **more) -> dict:
  """Merges a converter run into `<folder>/dataset_info.json`; returns it.

  The run's splits replace entries of the same name and the others are kept;
  `more` are top-level fields of the converter. A run of unlabeled images
  (num_classes None) keeps the classes already recorded; two runs with other
  classes are refused.

  Raises:
    DatasetInfoError naming the file and both class lists.
  """
  info = read(folder) or {}
  merged = dict(info)
  new_description = dict(new_description)
  for key in ('num_classes', 'class_names'):
    old, new = info.get(key), new_description.get(key)
    if new is None:
      new_description[key] = old
    elif old is not None and old != new:
      raise DatasetInfoError(
          f'{path(folder)} records {key}={_short(old)} but this run has '
          f'{_short(new)}; convert into another {errors.field_name("output_dir")}, or delete the '
          'file and the shards to start over')
  if info.get('splits') and info.get('image_size') != new_description.get(
      'image_size'):
    new_description['image_size'] = None  # the splits' sizes differ
  if new_description.get('mean_rgb') is None:
    for key in ('mean_rgb', 'stddev_rgb'):
      new_description[key] = info.get(key)
  merged.update(new_description)
  merged.update(more)
  merged['splits'] = {**info.get('splits', {}), **{k: dict(v) for k, v in
                                                  splits.items()}}
  writers.write_json(path(folder), merged)
  return merged


def _short(value) -> str:
  text = json.dumps(value)
  return text if len(text) <= 80 else text[:77] + '...'


def shard_files(folder: str, split: str, entry: Mapping) -> list[str]:
  """The shard paths one split entry names (they may not all exist)."""
  prefix = entry.get('split', split)
  directory = os.path.join(folder, entry.get('directory', ''))
  return layout.shard_paths(directory, prefix, int(entry['num_shards']))


def check_shard_files(files: Sequence[str]) -> None:
  """Refuses an empty shard among `files` where dataset_info.json (in their
  folder or its parent, `find`) says its split has at least one image per
  shard: such a shard was cut or replaced, and would be read as 0 images.

  Only the given files are looked at (their sizes): a worker predicting a
  few shards of a large split reads nothing else.

  Raises:
    DatasetInfoError naming the shard and the description.
  """
  by_folder = {}
  for file in files:
    by_folder.setdefault(os.path.dirname(file) or '.', set()).add(
        os.path.normpath(file))
  for files_folder, chosen in sorted(by_folder.items()):
    found = None if '://' in files_folder else find(files_folder)
    if found is None:
      continue
    folder, info = found
    for split, entry in info.get('splits', {}).items():
      try:
        num_examples, num_shards = (int(entry['num_examples']),
                                    int(entry['num_shards']))
      except (KeyError, TypeError, ValueError):
        continue
      if num_examples < num_shards:
        continue  # some shards may rightly be empty
      for shard in shard_files(folder, split, entry):
        shard = os.path.normpath(shard)
        if (shard in chosen and tf.io.gfile.exists(shard)
            and tf.io.gfile.stat(shard).length == 0):
          raise DatasetInfoError(
              f'{shard} is empty, but {path(folder)} says split {split} has '
              f'{num_examples} images in {num_shards} shards: convert it '
              'again, or restore the shard')


def check_shards(folder: str, info: Optional[Mapping] = None,
                 splits: Optional[Sequence[str]] = None) -> dict[str, int]:
  """Counts the records of every split and compares them with the file.

  Reads only record headers (fast). Returns {split: records}.

  Raises:
    DatasetInfoError naming the file and the split whose shards are missing or
    hold another number of records, or a class count that disagrees with the
    class names / label counts.
  """
  info = read(folder) if info is None else info
  info_path = path(folder)
  num_classes = info.get('num_classes')
  names = info.get('class_names')
  if names is not None and num_classes is not None and len(names) != num_classes:
    raise DatasetInfoError(f'{info_path}: num_classes={num_classes} but '
                           f'{len(names)} class_names')
  counts = {}
  for split, entry in info.get('splits', {}).items():
    if splits is not None and split not in splits:
      continue
    label_counts = entry.get('label_counts')
    if label_counts is not None and num_classes is not None and (
        len(label_counts) > num_classes):
      raise DatasetInfoError(
          f'{info_path}: split {split} has labels up to {len(label_counts) - 1} '
          f'but num_classes={num_classes}')
    total, empty = 0, None
    for shard in shard_files(folder, split, entry):
      if not tf.io.gfile.exists(shard):
        raise DatasetInfoError(f'{info_path} lists split {split} but its shard '
                               f'{shard} does not exist')
      held = records.count_records(shard)
      total += held
      if not held and empty is None:
        empty = shard
    if total != int(entry['num_examples']):
      raise DatasetInfoError(
          f'{info_path} says split {split} has {entry["num_examples"]} images '
          f'but its {entry["num_shards"]} shards hold {total}'
          + (f' ({empty} holds none)' if empty else ''))
    counts[split] = total
  return counts
