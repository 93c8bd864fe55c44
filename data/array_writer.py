"""In-memory image arrays -> sharded TFRecord splits plus `dataset_info.json`.

Used by `proc_svhn` and `prepare_digits`. Each split is written as
`<output_dir>/<subdir>/<name>-00000-of-000NN` shards (contiguous, in split
order, sizes differing by at most one) through `data.records` and the atomic
writers of `data.writers`.

Reruns are idempotent: `dataset_info.json` records the configuration that
produced the shards (first with `"complete": false`, at the end with `true`).
A rerun with the same configuration keeps every shard whose record count is
right and writes the missing ones (so a killed run resumes); a rerun with a
different configuration stops with an error unless `overwrite`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, Iterator, Mapping, Sequence

from absl import logging
import numpy as np
import tensorflow as tf

from data import layout
from data import dataset_info
from data import image_codec
from noisy_student.runtime import errors
from noisy_student.runtime import progress as progress_lib
from data import records
from data import writers

LABEL_CONVENTION = ('image/class/label holds class + 1 (1-based) in the files; '
                    'classes are 0-based in memory')


@dataclasses.dataclass(frozen=True)
class ArraySplit:
  """One split of an in-memory dataset.

  Attributes:
    name: file prefix of the shards ('train', 'dev', 'test', 'extra').
    images: uint8 [num_rows, height, width, 3] RGB, shared between splits.
    labels: int [num_rows] 0-based classes, or None when unknown.
    indices: int [num_examples] rows of `images` in split order; None for all
      rows in order.
    labeled: write `serialize_labeled` records; otherwise `serialize_unlabeled`
      (which keeps a known label for diagnostics).
    num_shards: number of shard files.
    subdir: folder under the output dir ('' or 'unlabeled').
  """
  name: str
  images: np.ndarray
  labels: np.ndarray | None
  indices: np.ndarray | None
  labeled: bool
  num_shards: int
  subdir: str = ''

  @property
  def num_examples(self) -> int:
    return len(self.images) if self.indices is None else len(self.indices)

  def row(self, i: int) -> int:
    return i if self.indices is None else int(self.indices[i])

  def split_labels(self) -> np.ndarray | None:
    if self.labels is None:
      return None
    labels = np.asarray(self.labels)
    return labels if self.indices is None else labels[self.indices]

  def file_pattern(self) -> str:
    return layout.total_pattern(self.subdir, self.name, self.num_shards)


def _check_split(split: ArraySplit) -> None:
  where = f'split {split.name!r}'
  images = split.images
  if (images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3):
    raise ValueError(f'{where}: images must be uint8 [n, height, width, 3], '
                     f'received: {images.dtype} {list(images.shape)}')
  if split.labels is not None and len(split.labels) != len(images):
    raise ValueError(f'{where}: {len(split.labels)} labels for '
                     f'{len(images)} images')
  if split.labeled and split.labels is None:
    raise ValueError(f'{where}: labeled=True needs labels')
  if (split.labels is not None and len(split.labels)
      and np.min(split.labels) < 0):
    raise ValueError(f'{where}: labels must be 0-based classes >= 0, '
                     f'received min {np.min(split.labels)}')
  if split.indices is not None and len(split.indices) and (
      np.min(split.indices) < 0 or np.max(split.indices) >= len(images)):
    raise ValueError(f'{where}: indices outside [0, {len(images)})')
  if split.num_shards <= 0:
    raise ValueError(f'{where}: num_shards must be positive, received: '
                     f'{split.num_shards}')
  if split.num_shards > split.num_examples:
    raise ValueError(
        f'{where}: {split.num_shards} shards for only {split.num_examples} '
        'examples would leave empty shards; use fewer shards')


def _normalized(obj):
  """JSON round trip, so tuples/np scalars compare equal to a re-read file."""
  return json.loads(json.dumps(obj, sort_keys=True, default=_json_default))


def _json_default(value):
  if isinstance(value, np.generic):
    return value.item()
  raise TypeError(f'not JSON serializable: {value!r}')


def _config_differences(old: Mapping, new: Mapping) -> list[str]:
  keys = sorted(set(old) | set(new))
  return [f'{k}: existing {old.get(k)!r}, this run {new.get(k)!r}'
          for k in keys if old.get(k) != new.get(k)]


def complete_info(output_dir: str, config: Mapping) -> dict | None:
  """The existing info if `output_dir` already holds this exact dataset.

  True only when `dataset_info.json` says complete, was written with `config`,
  and every shard it lists exists with the right record count (a cheap header
  walk). Lets binaries skip loading the sources on an idempotent rerun.
  """
  info = dataset_info.read(output_dir)
  if not info or not info.get('complete') or 'format' not in info:
    return None  # absent, unfinished, or written before it described itself
  if info.get('config') != _normalized(dict(config)):
    return None
  for name, split in info.get('splits', {}).items():
    directory = os.path.join(output_dir, split['directory'])
    paths = layout.shard_paths(directory, name, split['num_shards'])
    bounds = writers.shard_bounds(split['num_examples'], split['num_shards'])
    for path, (start, end) in zip(paths, bounds):
      if _record_count(path) != end - start:
        return None
  return info


def _record_count(path: str) -> int | None:
  if not tf.io.gfile.exists(path):
    return None
  try:
    return records.count_records(path)
  except records.RecordError:
    return None


def _existing_shards(directory: str, name: str) -> list[tuple[str, int]]:
  """(path, total) of files named `<name>-NNNNN-of-NNNNN` in `directory`."""
  if not tf.io.gfile.isdir(directory):
    return []
  found = []
  for filename in tf.io.gfile.listdir(directory):
    parsed = layout.parse_shard_name(filename)
    if parsed and parsed.prefix == name and parsed.task is None:
      found.append((os.path.join(directory, filename), parsed.total))
  return found


def _split_summary(split: ArraySplit, num_classes: int | None) -> dict:
  summary = {
      'num_examples': split.num_examples,
      'num_shards': split.num_shards,
      'directory': split.subdir,
      'file_pattern': split.file_pattern(),
      'labeled': split.labeled,
      'has_true_labels': split.labels is not None,
  }
  labels = split.split_labels()
  if labels is not None:
    counts = np.bincount(np.asarray(labels, np.int64),
                         minlength=num_classes or 0)
    summary['label_counts'] = counts.tolist()
  return summary


def _describe(splits: Sequence[ArraySplit], **fields) -> dict:
  """dataset_info's description: sizes of every split, pixel stats of 'train'."""
  stats = dataset_info.PixelStats()
  for split in splits:
    if split.name == 'train':
      rows = (np.arange(split.num_examples) if split.indices is None
              else np.asarray(split.indices))
      for start in range(0, len(rows), 4096):
        stats.add(split.images[rows[start:start + 4096]])
  size = dataset_info.common_size(s.images.shape[1:3] for s in splits)
  return dataset_info.description(image_size=size, pixel_stats=stats, **fields)


def _serialized(split: ArraySplit, start: int, end: int, image_format: str,
                jpeg_quality: int, progress: progress_lib.Progress
                ) -> Iterator[bytes]:
  for i in range(start, end):
    row = split.row(i)
    encoded = image_codec.encode(split.images[row], image_format, jpeg_quality)
    label = None if split.labels is None else int(split.labels[row])
    if split.labeled:
      yield records.serialize_labeled(encoded, label)
    else:
      yield records.serialize_unlabeled(encoded, label)
    progress.update()


def write_array_splits(output_dir: str, splits: Sequence[ArraySplit],
                       config: Mapping, *, image_format: str = 'png',
                       jpeg_quality: int = image_codec.DEFAULT_JPEG_QUALITY,
                       num_classes: int | None = None,
                       name: str = '',
                       class_names: Sequence[str] | None = None,
                       flip: bool = True,
                       extra_info: Mapping | None = None,
                       overwrite: bool = False,
                       log_fn: Callable[[str], None] = logging.info) -> dict:
  """Writes `splits` as shards and `dataset_info.json`; returns the info.

  Args:
    output_dir: destination folder (created if needed).
    splits: the splits to write (see ArraySplit).
    config: everything that determines the output (seed, sizes, shards,
      image format, sources); stored in the info file and compared on reruns.
    image_format: 'png' (lossless) or 'jpeg'.
    jpeg_quality: JPEG quality in [1, 100].
    num_classes: classes (also the length of the `label_counts` lists).
    name / class_names / flip: the dataset's description (data/dataset_info.py);
      its image size and the train split's mean/std RGB are measured here.
    extra_info: more top-level fields for `dataset_info.json`.
    overwrite: rewrite every shard, and delete shards of these splits that
      have another shard count.
    log_fn: receives notes (the progress line goes to absl logging).

  Returns:
    The info dict as written, plus 'shards_written' and 'shards_kept'.

  Raises:
    dataset_info.DatasetInfoError: `output_dir` holds shards from another configuration
      (or shards without a `dataset_info.json`) and `overwrite` is False.
  """
  image_format = image_codec.check_format(image_format)
  for split in splits:
    _check_split(split)
  config = _normalized(dict(config))
  info_path = dataset_info.path(output_dir)
  old = dataset_info.read(output_dir)
  if not overwrite:
    if old is not None and old.get('config') != config:
      differences = _config_differences(old.get('config') or {}, config)
      raise dataset_info.DatasetInfoError(
          f'{info_path} describes a different dataset ('
          + '; '.join(differences)
          + f'). Pass {errors.field_name("overwrite")} or another output dir.')
    if old is None:
      stray = [path for s in splits for path, _ in
               _existing_shards(os.path.join(output_dir, s.subdir), s.name)]
      if stray:
        raise dataset_info.DatasetInfoError(
            f'{output_dir} already holds shards (e.g. {stray[0]}) but no '
            f'{dataset_info.FILENAME}, so they cannot be checked. Pass '
            f'{errors.field_name("overwrite")} or another output dir.')

  info = dict(extra_info or {})
  info.update(_describe(splits, name=name, num_classes=num_classes,
                        class_names=class_names, flip=flip))
  info.update(
      config=config,
      label_convention=LABEL_CONVENTION,
      splits={s.name: _split_summary(s, num_classes) for s in splits})
  info = _normalized(info)
  writers.write_json(info_path, dict(info, complete=False))

  written = kept = 0
  for split in splits:
    directory = os.path.join(output_dir, split.subdir)
    if overwrite:
      for path, total in _existing_shards(directory, split.name):
        if total != split.num_shards:
          log_fn(f'removing {path} (another shard count)')
          tf.io.gfile.remove(path)
    progress = progress_lib.Progress(split.name, split.num_examples)
    paths = layout.shard_paths(directory, split.name, split.num_shards)
    bounds = writers.shard_bounds(split.num_examples, split.num_shards)
    for path, (start, end) in zip(paths, bounds):
      if not overwrite and _record_count(path) == end - start:
        kept += 1
        progress.update(end - start)
        continue
      writers.write_records(path, _serialized(split, start, end, image_format,
                                              jpeg_quality, progress))
      written += 1
    progress.finish()
  info['complete'] = True
  writers.write_json(info_path, info)
  log_fn(f'{output_dir}: {written} shards written, {kept} kept')
  return dict(info, shards_written=written, shards_kept=kept)


def summary_line(output_dir: str, info: Mapping) -> str:
  """The one JSON line a converter prints: images per split, shards written/kept."""
  counts = {name: s['num_examples'] for name, s in info['splits'].items()}
  return json.dumps({'output_dir': output_dir, 'counts': counts,
                     'shards_written': info['shards_written'],
                     'shards_kept': info['shards_kept']}, sort_keys=True)
