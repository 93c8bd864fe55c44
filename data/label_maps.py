"""Class-folder names <-> 0-based labels for ImageFolder-style trees.

ImageNet-A/-C/-P and the corrupted / perturbed copies written by
`data.make_corrupted` and `data.make_perturbed` store one folder per class.
A *label map* says which folder name is which label:

* `'imagenet'` (default): the 1000 ImageNet wnids in class order
  (`imagenet_wnids.txt` next to this file, derived from the standard
  `imagenet_class_index.json`), e.g. `n01440764` -> 0.
* `'numeric'`: the folder name is the label itself (`'0'`, `'7'`, ...).
* a `.txt` file: one folder name per line, line i is label i.
* a `.json` file: either the Keras class-index format
  `{"0": ["n01440764", "tench"], ...}` or `{"folder_name": label, ...}`.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Mapping

import tensorflow as tf

from noisy_student.runtime import errors

WNIDS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          'imagenet_wnids.txt')


class LabelMapError(errors.NoisyStudentError):
  """A label map file or a class folder name is unusable; names the file."""


@functools.lru_cache(maxsize=None)
def imagenet_wnids() -> tuple[str, ...]:
  """The 1000 ImageNet wnids in class order (index = 0-based label)."""
  with open(WNIDS_FILE) as f:
    wnids = tuple(line.strip() for line in f if line.strip())
  if len(wnids) != 1000:
    raise ValueError(f'{WNIDS_FILE}: expected 1000 wnids, found {len(wnids)}')
  return wnids


class LabelMap:
  """Folder name <-> label.

  Attributes:
    spec: the string it was built from (for reports).
    names: folder name per label, or None for `'numeric'`.
  """

  def __init__(self, spec: str, names: tuple[str, ...] | None):
    self.spec = spec
    self.names = names
    self._index = ({name: i for i, name in enumerate(names)}
                   if names is not None else None)

  def label(self, folder_name: str, path: str = '') -> int:
    """0-based label of a class folder; ValueError naming `path` if unknown."""
    where = path or folder_name
    if self._index is None:
      if not folder_name.isdigit():
        raise LabelMapError(f'{where}: class folder {folder_name!r} is not an '
                         f'integer label (label map {self.spec!r})')
      return int(folder_name)
    if folder_name not in self._index:
      raise LabelMapError(f'{where}: class folder {folder_name!r} is not in the '
                       f'label map {self.spec!r}')
    return self._index[folder_name]

  def name(self, label: int) -> str:
    """Folder name of a 0-based label."""
    if self.names is None:
      return str(int(label))
    if not 0 <= label < len(self.names):
      raise ValueError(f'label {label} is outside the label map {self.spec!r} '
                       f'({len(self.names)} classes)')
    return self.names[label]


def _names_from_json(path: str, obj) -> tuple[str, ...]:
  if not isinstance(obj, Mapping) or not obj:
    raise LabelMapError(f'{path}: expected a non-empty JSON object')
  first = next(iter(obj.values()))
  if isinstance(first, list):  # {"0": ["wnid", "name"], ...}
    try:
      items = sorted((int(k), v[0]) for k, v in obj.items())
    except (ValueError, TypeError, IndexError) as err:
      raise LabelMapError(f'{path}: not a {{"index": ["wnid", "name"]}} '
                       f'class index: {err}') from err
    return _dense(path, items)
  try:
    items = sorted((int(v), k) for k, v in obj.items())
  except (ValueError, TypeError) as err:
    raise LabelMapError(f'{path}: not a {{"folder": label}} map: {err}') from err
  return _dense(path, items)


def _dense(path: str, items: list[tuple[int, str]]) -> tuple[str, ...]:
  labels = [label for label, _ in items]
  if labels != list(range(len(items))):
    raise LabelMapError(f'{path}: labels must be 0..{len(items) - 1} without gaps')
  return tuple(name for _, name in items)


def load_label_map(spec: str | None = None) -> LabelMap:
  """Builds a LabelMap from `'imagenet'`, `'numeric'` or a .txt/.json path.

  Raises:
    ValueError / FileNotFoundError naming `spec` when it cannot be read.
  """
  spec = spec or 'imagenet'
  if spec == 'imagenet':
    return LabelMap(spec, imagenet_wnids())
  if spec == 'numeric':
    return LabelMap(spec, None)
  if not tf.io.gfile.exists(spec):
    raise errors.MissingFileError(
        f'label map {spec!r}: no such file (expected "imagenet", "numeric", '
        'or a .txt / .json file)')
  with tf.io.gfile.GFile(spec) as f:
    text = f.read()
  if spec.endswith('.json'):
    try:
      obj = json.loads(text)
    except json.JSONDecodeError as err:
      raise LabelMapError(f'{spec}: invalid JSON: {err}') from err
    return LabelMap(spec, _names_from_json(spec, obj))
  names = tuple(line.strip() for line in text.splitlines() if line.strip())
  if not names:
    raise LabelMapError(f'{spec}: the label map file is empty')
  if len(set(names)) != len(names):
    raise LabelMapError(f'{spec}: the label map has duplicate names')
  return LabelMap(spec, names)
