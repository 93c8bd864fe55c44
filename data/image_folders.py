"""Finding images on disk: class-folder trees and flat folders.

A labeled tree has one folder per class (ImageNet: `n01440764/*.JPEG`). The
class of a folder comes from a `data.label_maps.LabelMap` ('imagenet', the
built-in 1000 wnids; 'numeric', folder name = class; a .txt file with one
folder name per line; a .json file in the imagenet_class_index.json format),
or, without one, from the position of the folder name in sorted order.
"""

from __future__ import annotations

import dataclasses
import os

from noisy_student.runtime import errors
from data import label_maps

IMAGE_EXTENSIONS = frozenset({
    '.jpg', '.jpeg', '.jpe', '.png', '.gif', '.bmp', '.tif', '.tiff', '.webp',
    '.ppm', '.pgm'})


class ImageTreeError(errors.NoisyStudentError):
  """An input folder or label map cannot be used; names the path at fault."""


def load_label_map(spec: str) -> label_maps.LabelMap:
  """label_maps.load_label_map, with errors naming the label_map field."""
  try:
    return label_maps.load_label_map(spec)
  except (ValueError, FileNotFoundError) as err:
    raise ImageTreeError(f'{errors.field_name("label_map")}={spec}: {err}') from err


def _is_hidden(name: str) -> bool:
  return name.startswith('.')


def is_image_file(name: str) -> bool:
  return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def walk_images(root: str) -> tuple[list[str], list[str]]:
  """(image paths, other files) under `root`, recursively, sorted.

  Hidden files and folders are skipped; "other files" are reported, not
  read: names without an image extension, names that are not valid UTF-8
  (shown with \\x escapes) and anything that is not a regular file (a FIFO
  named x.png would block a reader forever).
  """
  images, others = [], []
  for directory, subdirs, files in os.walk(root):
    subdirs[:] = sorted(d for d in subdirs if not _is_hidden(d))
    for name in sorted(files):
      if _is_hidden(name):
        continue
      path = os.path.join(directory, name)
      if not readable_name(os.path.relpath(path, root)):
        others.append(printable(path))
      elif is_image_file(name) and os.path.isfile(path):
        images.append(path)
      else:
        others.append(path)
  return sorted(images), sorted(others)


def readable_name(path: str) -> bool:
  """False for a name with bytes that are not UTF-8 (Python keeps them as
  surrogate escapes, which cannot be written to a record or a report)."""
  try:
    path.encode('utf-8')
    return True
  except UnicodeEncodeError:
    return False


def printable(path: str) -> str:
  """`path` with undecodable bytes as \\x escapes (for messages)."""
  return os.fsencode(path).decode('utf-8', 'backslashreplace')


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
    raise ImageTreeError(f'{errors.field_name("input_dir")}={input_dir}: not a folder')


def list_unlabeled(input_dir: str) -> Listing:
  """Every image under `input_dir` (a flat folder or any tree)."""
  _check_dir(input_dir)
  images, others = walk_images(input_dir)
  return Listing([(path, None) for path in images], [], others, [])


def _folder_classes(input_dir: str, folders: list[str],
                    label_map: label_maps.LabelMap | None
                    ) -> tuple[dict[str, int], list[str]]:
  """({folder: class}, class names) for the class folders of `input_dir`."""
  if label_map is None:
    return {name: i for i, name in enumerate(folders)}, list(folders)
  if label_map.names is None:  # 'numeric'
    unknown = [name for name in folders if not name.isdigit()]
  else:
    known = set(label_map.names)
    unknown = [name for name in folders if name not in known]
  if unknown:
    raise ImageTreeError(
        f'{errors.field_name("input_dir")}={input_dir}: {len(unknown)} folders are not in the '
        f'label map {label_map.spec!r}: {", ".join(unknown[:10])}'
        + (' ...' if len(unknown) > 10 else ''))
  classes = {name: label_map.label(name) for name in folders}
  if label_map.names is None:
    names = [str(i) for i in range(max(classes.values()) + 1)]
  else:
    names = list(label_map.names)
  return classes, names


def list_labeled(input_dir: str,
                 label_map: label_maps.LabelMap | None = None) -> Listing:
  """Images of a class-folder tree, labeled by folder.

  Args:
    input_dir: folder holding one subfolder per class.
    label_map: folder name -> class; None uses the sorted subfolder names.

  Raises:
    ImageTreeError: `input_dir` has no class folders, image files outside the
      class folders, or folders that the label map does not know.
  """
  _check_dir(input_dir)
  folders = class_folders(input_dir)
  if not folders:
    raise ImageTreeError(
        f'{errors.field_name("input_dir")}={input_dir}: no class folders found (for a flat folder '
        f'of images use {errors.field_name("unlabeled")})')
  undecodable = [printable(n) for n in folders if not readable_name(n)]
  if undecodable:
    raise ImageTreeError(
        f'{errors.field_name("input_dir")}={input_dir}: class folder {undecodable[0]!r} has a name '
        'that is not UTF-8 (class names are saved as text); rename it')
  odd = [name for name in folders if '\n' in name or '\r' in name]
  if odd:
    raise ImageTreeError(
        f'{errors.field_name("input_dir")}={input_dir}: class folder {odd[0]!r} has a line break in '
        'its name (labels.txt holds one class name per line); rename it')
  loose = sorted(name for name in os.listdir(input_dir)
                 if not _is_hidden(name) and is_image_file(name)
                 and os.path.isfile(os.path.join(input_dir, name)))
  if loose:
    raise ImageTreeError(
        f'{errors.field_name("input_dir")}={input_dir}: {len(loose)} image files lie outside the '
        f'class folders (e.g. {loose[0]}); move them or use {errors.field_name("unlabeled")}')
  classes, class_names = _folder_classes(input_dir, folders, label_map)
  items, others, counts = [], [], {}
  for name in folders:
    images, ignored = walk_images(os.path.join(input_dir, name))
    items.extend((path, classes[name]) for path in images)
    others.extend(ignored)
    counts[classes[name]] = len(images)
  empty = [name for i, name in enumerate(class_names) if not counts.get(i)]
  return Listing(sorted(items), class_names, sorted(others), empty)
