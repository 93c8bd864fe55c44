"""Atomic, idempotent writing of TFRecord shards and small text/JSON files.

Every output is first written to a temporary file in the destination folder and
renamed into place only when complete, so a killed job never leaves a file that
looks finished. File names are `data.layout`'s.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from typing import Iterable, Iterator, Sequence

import tensorflow as tf

from data import layout
from noisy_student.runtime import errors
from noisy_student.runtime import temp_names


# The temporary-name rule is runtime's (efficientnet/ uses it without data/).
TEMP_MARKER = temp_names.TEMP_MARKER
temp_path = temp_names.temp_path
is_temp_name = temp_names.is_temp_name


def remove_stale_temps(path: str, suffix: str = '') -> list[str]:
  """Removes the temporaries `temp_path(path, suffix)` of a killed writer.

  A writer of `path` calls it before it starts: one writer owns a path at a
  time, so every temporary of that path (and suffix) is a leftover of an
  interrupted run. Returns what was removed.
  """
  directory, base = os.path.split(path)
  pattern = re.compile(re.escape(f'.{base}{TEMP_MARKER}') + r'[0-9a-f]{8}'
                       + re.escape(suffix) + '$')
  if not tf.io.gfile.isdir(directory or '.'):
    return []
  stale = [os.path.join(directory, name)
           for name in tf.io.gfile.listdir(directory or '.')
           if pattern.match(name.rstrip('/'))]
  for leftover in stale:
    _remove(leftover)
  return stale


def _remove(path: str) -> None:
  if tf.io.gfile.isdir(path):
    tf.io.gfile.rmtree(path)
  elif tf.io.gfile.exists(path):
    tf.io.gfile.remove(path)


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = '') -> Iterator[str]:
  """Yields a temporary path next to `path` for a writer to fill.

  On a clean exit the temporary file or folder is renamed to `path`; an
  existing folder at `path` is replaced only once the new one is whole. On an
  exception the temporary is removed and `path` is left as it was.
  """
  directory = os.path.dirname(path)
  if directory:
    tf.io.gfile.makedirs(directory)
  remove_stale_temps(path, suffix)
  tmp = temp_path(path, suffix)
  try:
    yield tmp
    if tf.io.gfile.isdir(tmp) and tf.io.gfile.exists(path):
      old = temp_path(path)
      tf.io.gfile.rename(path, old)
      tf.io.gfile.rename(tmp, path)
      _remove(old)
    else:
      tf.io.gfile.rename(tmp, path, overwrite=True)
  finally:
    _remove(tmp)


# Written into every folder this project replaces whole (a SavedModel), so
# that a later run knows the folder is its own to replace.
OWNED_MARKER = '.written-by-noisy-student'
# What a SavedModel folder holds; an older export of ours has no marker.
_SAVED_MODEL_ENTRIES = {'saved_model.pb', 'variables', 'assets',
                        'fingerprint.pb', 'keras_metadata.pb', OWNED_MARKER}


def _inside(path: str, folder: str) -> bool:
  """True when `path` is `folder` or lies inside it (after abspath)."""
  path, folder = os.path.abspath(path), os.path.abspath(folder)
  return path == folder or path.startswith(folder.rstrip('/') + '/')


def check_replaceable_dir(path: str, protect: Sequence[str] = (),
                          name: str = 'export_dir') -> None:
  """Refuses a folder a writer would replace whole when that would delete
  anything this project did not write there.

  Args:
    path: the folder to be replaced.
    protect: paths that must survive (a model_dir, a source checkpoint).
    name: what `path` is called in the error (a flag or argument name).

  Raises:
    ConfigError naming `path` and what it would delete: a protected path
    equal to or inside it, a file, or a folder holding files other than a
    SavedModel without this project's marker.
  """
  for kept in protect:
    if kept and _inside(kept, path):
      raise errors.ConfigError(
          f'{name}={path} would replace {kept} (the folder is replaced '
          f'whole): choose a folder outside it')
  if not tf.io.gfile.exists(path):
    return
  if not tf.io.gfile.isdir(path):
    raise errors.ConfigError(f'{name}={path} is a file, not a folder; '
                             'nothing was written')
  entries = {e.rstrip('/') for e in tf.io.gfile.listdir(path)}
  if not entries or (entries <= _SAVED_MODEL_ENTRIES and (
      OWNED_MARKER in entries or 'saved_model.pb' in entries)):
    return  # empty, or a SavedModel (ours: marked, or an older export)
  others = sorted(entries - _SAVED_MODEL_ENTRIES) or sorted(entries)
  raise errors.ConfigError(
      f'{name}={path} holds files this project did not write '
      f'({", ".join(others[:3])}{", ..." if len(others) > 3 else ""}); the '
      'folder would be replaced whole: choose a new or empty folder')


@contextlib.contextmanager
def replace_dir(path: str, protect: Sequence[str] = (),
                name: str = 'export_dir') -> Iterator[str]:
  """`atomic_path` for a folder replaced whole, after
  `check_replaceable_dir`; the new folder carries OWNED_MARKER."""
  check_replaceable_dir(path, protect, name)
  with atomic_path(os.path.abspath(path)) as tmp:
    yield tmp
    with tf.io.gfile.GFile(os.path.join(tmp, OWNED_MARKER), 'w') as f:
      f.write('This folder is replaced whole by the next export into it.\n')


@contextlib.contextmanager
def atomic_output(path: str, mode: str = 'wb') -> Iterator:
  """Opens a temp file next to `path`; renames it to `path` on clean exit.

  On an exception the temp file is removed and `path` is left as it was.
  """
  with atomic_path(path) as tmp:
    with tf.io.gfile.GFile(tmp, mode) as f:
      yield f


@contextlib.contextmanager
def atomic_tfrecord_writer(path: str) -> Iterator[tf.io.TFRecordWriter]:
  """A TFRecordWriter whose file appears at `path` only once closed cleanly."""
  with atomic_path(path) as tmp:
    writer = tf.io.TFRecordWriter(tmp)
    try:
      yield writer
    finally:
      writer.close()


def write_records(path: str, records: Iterable[bytes]) -> int:
  """Writes serialized records to `path` atomically; returns how many."""
  count = 0
  with atomic_tfrecord_writer(path) as writer:
    for record in records:
      writer.write(record)
      count += 1
  return count


def shard_bounds(num_items: int, num_shards: int) -> list[tuple[int, int]]:
  """Contiguous [start, end) ranges splitting `num_items` into `num_shards`.

  Sizes differ by at most one (like the original's np.linspace spacing).
  """
  if num_shards <= 0:
    raise ValueError(f'num_shards must be positive, received: {num_shards}')
  bounds = []
  for i in range(num_shards):
    start = (num_items * i) // num_shards
    end = (num_items * (i + 1)) // num_shards
    bounds.append((start, end))
  return bounds


def write_sharded(records: Sequence[bytes], output_dir: str, split: str,
                  num_shards: int, overwrite: bool = False) -> list[str]:
  """Writes `records` (in order) as `num_shards` shards of `split`.

  Idempotent: a shard that already exists is kept unless `overwrite`. Returns
  the shard paths.
  """
  paths = layout.shard_paths(output_dir, split, num_shards)
  for path, (start, end) in zip(paths, shard_bounds(len(records), num_shards)):
    if not overwrite and tf.io.gfile.exists(path):
      continue
    write_records(path, records[start:end])
  return paths


def write_json(path: str, obj, indent: int | None = 2) -> None:
  """Writes `obj` as JSON to `path` atomically."""
  with atomic_output(path, 'w') as f:
    f.write(json.dumps(obj, indent=indent, sort_keys=True) + '\n')


def write_text(path: str, text: str) -> None:
  with atomic_output(path, 'w') as f:
    f.write(text)


def write_npz(path: str, **arrays) -> None:
  """`np.savez_compressed` of `arrays` to `path`, atomically."""
  import io  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  buffer = io.BytesIO()  # zipfile seeks, which a GFile being written cannot
  np.savez_compressed(buffer, **arrays)
  with atomic_output(path) as f:
    f.write(buffer.getvalue())
