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
import uuid

import tensorflow as tf

from data import layout


TEMP_MARKER = '.tmp-'


def temp_path(path: str, suffix: str = '') -> str:
  """A hidden temporary name next to `path`: `.<name>.tmp-<8 hex><suffix>`.

  Every temporary file or folder of the project is named this way: readers
  skip names that start with '.', and `is_temp_name` recognises them.
  `suffix` keeps an extension a writer needs (e.g. '.keras').
  """
  directory, base = os.path.split(path)
  return os.path.join(directory,
                      f'.{base}{TEMP_MARKER}{uuid.uuid4().hex[:8]}{suffix}')


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


def is_temp_name(name: str) -> bool:
  """True for names made by `temp_path` (a killed writer's leftovers)."""
  base = os.path.basename(name)
  return base.startswith('.') and TEMP_MARKER in base


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
