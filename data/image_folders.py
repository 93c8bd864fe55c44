"""Finding images on disk: class-folder trees, flat folders and label maps.

A labeled tree has one folder per class (ImageNet: `n01440764/*.JPEG`); the
class order comes from a label map, or from the sorted folder names. A label
map is either the Keras/PyTorch `imagenet_class_index.json` format
(`{"0": ["n01440764", "tench"], ...}`, or `{"0": "n01440764", ...}`) or a text
file with one folder name per line in class order (a line
`n01440764 tench, Tinca tinca`, as in ImageNet's LOC_synset_mapping.txt, uses
its leading WordNet id).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re

IMAGE_EXTENSIONS = frozenset({
    '.jpg', '.jpeg', '.jpe', '.png', '.gif', '.bmp', '.tif', '.tiff', '.webp',
    '.ppm', '.pgm'})
_WNID_LINE = re.compile(r'^(n\d{8})\s')


class ImageTreeError(ValueError):
  """An input folder or label map cannot be used; names the path at fault."""


def read_label_map(path: str) -> list[str]:
  """Folder names in class order (index i is class i, 0-based).

  Raises:
    ImageTreeError: naming `path` for a missing, malformed or non-contiguous
      map, or a folder name listed twice.
  """
  if not os.path.isfile(path):
    raise ImageTreeError(f'--label_map={path}: file not found')
  with open(path, encoding='utf-8') as f:
    text = f.read()
  if text.lstrip().startswith(('{', '[')):
    names = _json_label_map(path, text)
  else:
    names = []
    for line in text.splitlines():
      line = line.strip()
      if line:
        match = _WNID_LINE.match(line)
        names.append(match.group(1) if match else line)
  if not names:
    raise ImageTreeError(f'--label_map={path}: no classes in the file')
  seen = {}
  for index, name in enumerate(names):
    if name in seen:
      raise ImageTreeError(f'--label_map={path}: folder {name!r} is listed '
                           f'twice (classes {seen[name]} and {index})')
    seen[name] = index
  return names


def _json_label_map(path: str, text: str) -> list[str]:
  try:
    data = json.loads(text)
  except json.JSONDecodeError as err:
    raise ImageTreeError(f'--label_map={path}: invalid JSON ({err})') from err
  if isinstance(data, list):
    entries = dict(enumerate(data))
  elif isinstance(data, dict):
    try:
      entries = {int(k): v for k, v in data.items()}
    except ValueError:
      raise ImageTreeError(
          f'--label_map={path}: keys must be class indices ("0", "1", ...), '
          f'found e.g. {next(iter(data))!r}') from None
  else:
    raise ImageTreeError(f'--label_map={path}: expected a JSON object')
  if sorted(entries) != list(range(len(entries))):
    raise ImageTreeError(f'--label_map={path}: class indices must be 0..'
                         f'{len(entries) - 1} without gaps')
  names = []
  for index in range(len(entries)):
    value = entries[index]
    if isinstance(value, list) and value and isinstance(value[0], str):
      value = value[0]
    if not isinstance(value, str):
      raise ImageTreeError(
          f'--label_map={path}: class {index} must map to a folder name or a '
          f'[folder, description] list, found {value!r}')
    names.append(value)
  return names


def _is_hidden(name: str) -> bool:
  return name.startswith('.')


def is_image_file(name: str) -> bool:
  return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def walk_images(root: str) -> tuple[list[str], list[str]]:
  """(image paths, other files) under `root`, recursively, sorted.

  Hidden files and folders are skipped; "other files" have no image
  extension and are reported, not read.
  """
  images, others = [], []
  for directory, subdirs, files in os.walk(root):
    subdirs[:] = sorted(d for d in subdirs if not _is_hidden(d))
    for name in sorted(files):
      if _is_hidden(name):
        continue
      path = os.path.join(directory, name)
      (images if is_image_file(name) else others).append(path)
  return sorted(images), sorted(others)


def class_folders(input_dir: str) -> list[str]:
  """Sorted names of the (non-hidden) subfolders of `input_dir`."""
  return sorted(d for d in os.listdir(input_dir) if not _is_hidden(d)
                and os.path.isdir(os.path.join(input_dir, d)))


@dataclasses.dataclass(frozen=True)
class Listing:
  """Images found under an input folder.

  Attributes:
    items: (path, 0-based class or None) per image, sorted by path.
    class_names: folder name per class (empty when unlabeled).
    ignored_files: files without an image extension (not read).
    empty_classes: classes of the label map without any image.
  """
  items: list[tuple[str, int | None]]
  class_names: list[str]
  ignored_files: list[str]
  empty_classes: list[str]


def _check_dir(input_dir: str) -> None:
  if not os.path.isdir(input_dir):
    raise ImageTreeError(f'--input_dir={input_dir}: not a folder')


def list_unlabeled(input_dir: str) -> Listing:
  """Every image under `input_dir` (a flat folder or any tree)."""
  _check_dir(input_dir)
  images, others = walk_images(input_dir)
  return Listing([(path, None) for path in images], [], others, [])


def list_labeled(input_dir: str, class_names: list[str] | None = None
                 ) -> Listing:
  """Images of a class-folder tree, labeled by folder.

  Args:
    input_dir: folder holding one subfolder per class.
    class_names: folder name per class (from a label map); None uses the
      sorted subfolder names.

  Raises:
    ImageTreeError: `input_dir` has no class folders, image files outside the
      class folders, or folders that are not in `class_names`.
  """
  _check_dir(input_dir)
  folders = class_folders(input_dir)
  if not folders:
    raise ImageTreeError(
        f'--input_dir={input_dir}: no class folders found (for a flat folder '
        'of images use --unlabeled)')
  loose = sorted(name for name in os.listdir(input_dir)
                 if not _is_hidden(name) and is_image_file(name)
                 and os.path.isfile(os.path.join(input_dir, name)))
  if loose:
    raise ImageTreeError(
        f'--input_dir={input_dir}: {len(loose)} image files lie outside the '
        f'class folders (e.g. {loose[0]}); move them or use --unlabeled')
  if class_names is None:
    class_names = folders
  index = {name: i for i, name in enumerate(class_names)}
  unknown = [name for name in folders if name not in index]
  if unknown:
    raise ImageTreeError(
        f'--input_dir={input_dir}: {len(unknown)} folders are not in the '
        f'label map: {", ".join(unknown[:10])}'
        + (' ...' if len(unknown) > 10 else ''))
  items, others, counts = [], [], {}
  for name in folders:
    images, ignored = walk_images(os.path.join(input_dir, name))
    items.extend((path, index[name]) for path in images)
    others.extend(ignored)
    counts[name] = len(images)
  empty = [name for name in class_names if not counts.get(name)]
  return Listing(sorted(items), list(class_names), sorted(others), empty)
