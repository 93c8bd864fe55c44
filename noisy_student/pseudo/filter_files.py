"""Files of the filtering step: its config, paths, input checks and readers.

The decisions live in `noisy_student/pseudo/selection.py` and the two passes
that apply them in `noisy_student/pseudo/filter_passes.py`; this module names,
checks and streams the files they read and write. A *unit* is one prediction file, i.e. one (shard_id, task) pair, where
`task` is the worker index when a shard was split among `total_replicas`
prediction workers (worker w owns records i with i % total_replicas == w).

Inputs (written by `main --mode=predict`, original names):
* `<input_dir>/<file_prefix>-%05d-of-%05d`           unlabeled shard
* `<prediction_dir>/train-info-%05d-of-%05d-%05d`   (shard, num_shards, task)
* `<info_dir>/info-%05d-of-%05d-%05d.txt`           {"image_num": N}
Outputs:
* `<prelim_stats_dir>/prelim_stats_%05d_%d.json`      per-unit histograms
* `<prelim_stats_dir>/total_counts.json`              merged histograms
* `<output_dir>/allocation_plan.json`                 the global plan
* `<output_dir>/data/train-%d-%05d-of-%05d`           (task, shard, num_shards)
* `<output_dir>/stats/stats_%05d_%d.json`             per-unit output counts
* `<output_dir>/stats/final_stats.json`               totals, once all are done
* `<output_dir>/samples/<class>/image_<shard>_<task>_<index>_<prob>.png|jpg`

"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING
import json
import os
from typing import Iterator

import numpy as np
import tensorflow as tf

from noisy_student.runtime import progress as progress_lib
from data import layout
from data import records
from noisy_student.runtime import errors
from noisy_student.core import config as config_lib
from noisy_student.core.config import doc
from noisy_student.pseudo import selection


@dataclasses.dataclass(frozen=True)
class FilterConfig:
  """Everything the filter needs (built from the flags by the binary).

  The fields with help texts are `filter_unlabel`'s flags
  (`cli/config_flags.py`); `settings` are the selection flags.
  """
  input_dir: str = doc(MISSING, 'Folder of the unlabeled shards '
                       '`<file_prefix>-%05d-of-%05d` whose images are copied.')
  prediction_dir: str = doc(MISSING, 'Folder of the teacher\'s prediction '
                            'files `train-info-%05d-of-%05d-%05d`.')
  info_dir: str = doc(MISSING, 'Folder of the per-shard `info-*.txt` files '
                      '({"image_num": N}).')
  output_dir: str = doc(MISSING, 'Where data/, stats/, samples/ and '
                        'allocation_plan.json are written.')
  settings: selection.Settings = doc(MISSING, 'The selection settings.')
  prelim_stats_dir: str = doc('', 'Where the statistics pass writes '
                              '`prelim_stats_%05d_%d.json`; default '
                              '<output_dir>/prelim_stats.')
  file_prefix: str = doc('train', 'Prefix of the unlabeled shards.')
  num_shards: int = doc(128, 'Shards of the unlabeled set.')
  total_replicas: int = doc(1, 'Prediction workers per shard (the '
                            '--total_replicas of --mode=predict).')
  num_samples_per_class: int = doc(10, 'Sample images per class saved under '
                                   '<output_dir>/samples/<class>/.')
  # In-memory shuffle limit per unit (the flag is --shuffle_buffer_mb).
  shuffle_buffer_bytes: int = 512 << 20
  batch_size: int = 1024  # records per read batch
  # The unlabeled shards in unit order, when they do not follow the
  # `<file_prefix>-%05d-of-%05d` names (the Beam pipeline's file pattern);
  # `num_shards` must equal their number.
  input_files: tuple[str, ...] = ()

  def __post_init__(self):
    config_lib.check_ranges(self, {
        'num_shards': (1, None), 'total_replicas': (1, None),
        'num_samples_per_class': (0, None), 'shuffle_buffer_bytes': (1, None),
        'batch_size': (1, None)})
    if self.input_files and len(self.input_files) != self.num_shards:
      raise errors.ConfigError(
          f'{len(self.input_files)} input files for '
          f'{errors.field_name("num_shards")}={self.num_shards}')
    if not self.prelim_stats_dir:
      object.__setattr__(self, 'prelim_stats_dir',
                         layout.FilterDirs(self.output_dir).prelim_stats)

  @property
  def units(self) -> list[tuple[int, int]]:
    """All (shard_id, task) pairs, shard-major: the plan's fixed unit order."""
    return [(s, t) for s in range(self.num_shards)
            for t in range(self.total_replicas)]

  @property
  def num_classes(self) -> int:
    return self.settings.num_label_classes


# --------------------------------------------------------------------------
# Paths (the original's names).
# --------------------------------------------------------------------------
def dirs(c: FilterConfig) -> layout.FilterDirs:
  return layout.FilterDirs(c.output_dir, c.prelim_stats_dir)


def input_shard_path(c: FilterConfig, shard: int) -> str:
  if c.input_files:
    return c.input_files[shard]
  return layout.shard_path(c.input_dir, c.file_prefix, shard, c.num_shards)


def prediction_path(c: FilterConfig, shard: int, task: int) -> str:
  return layout.prediction_path(c.prediction_dir, shard, c.num_shards, task)


def info_path(c: FilterConfig, shard: int, task: int) -> str:
  return layout.info_path(c.info_dir, shard, c.num_shards, task)


def prelim_stats_path(c: FilterConfig, shard: int, task: int) -> str:
  return dirs(c).prelim_unit_stats(shard, task)


def total_counts_path(c: FilterConfig) -> str:
  return dirs(c).total_counts


def plan_path(c: FilterConfig) -> str:
  return dirs(c).plan


def output_shard_path(c: FilterConfig, shard: int, task: int) -> str:
  return dirs(c).shard(shard, c.num_shards, task)


def unit_stats_path(c: FilterConfig, shard: int, task: int) -> str:
  return dirs(c).unit_stats(shard, task)


def final_stats_path(c: FilterConfig) -> str:
  return dirs(c).final_stats


def sample_dir(c: FilterConfig) -> str:
  return dirs(c).samples


def load_json(path: str):
  try:
    with tf.io.gfile.GFile(path) as f:
      return json.load(f)
  except json.JSONDecodeError as err:
    raise errors.FilterError(f'{path}: not valid JSON ({err})') from err


# --------------------------------------------------------------------------
# Input validation and streaming.
# --------------------------------------------------------------------------
def check_unit_inputs(c: FilterConfig, shard: int, task: int) -> tuple[int, int]:
  """Checks a unit's files exist and agree on counts.

  Returns:
    (number of predictions, number of records in the whole unlabeled shard).

  Raises:
    FileNotFoundError / errors.FilterError naming the file at fault.
  """
  info = info_path(c, shard, task)
  pred = prediction_path(c, shard, task)
  unlabeled = input_shard_path(c, shard)
  for path, what in ((info, 'info file'), (pred, 'prediction shard'),
                     (unlabeled, 'unlabeled shard')):
    if not tf.io.gfile.exists(path):
      checks = '/'.join(errors.field_name(f) for f in (
          'input_dir', 'prediction_dir', 'info_dir', 'file_prefix',
          'num_shards'))
      raise errors.MissingFileError(
          f'{path}: {what} of shard {shard} (task {task}) not found; run the '
          f'teacher (main --mode=predict) on it or check {checks}')
  extra_worker = prediction_path(c, shard, c.total_replicas)
  if tf.io.gfile.exists(extra_worker):
    raise errors.FilterError(
        f'{extra_worker} exists, so shard {shard} was predicted by more than '
        f'{errors.field_name("total_replicas")}={c.total_replicas} workers')
  try:
    image_num = int(load_json(info)['image_num'])
  except (KeyError, TypeError, ValueError) as err:
    raise errors.FilterError(f'{info}: expected {{"image_num": N}} ({err})') from err
  num_unlabeled = records.count_records(unlabeled)
  expected = len(range(task, num_unlabeled, c.total_replicas))
  if expected != image_num:
    raise errors.FilterError(
        f'{unlabeled} holds {num_unlabeled} records, so worker {task} of '
        f'{c.total_replicas} owns {expected}, but {info} says image_num='
        f'{image_num} for {pred}')
  return image_num, num_unlabeled


def predictions_identity(c: FilterConfig, shard: int, task: int) -> dict:
  """What a unit's predictions are: their info file's origin (`made_from`:
  the teacher's weights, the input's size), count and the prediction file's
  size. Recorded in the filter's statistics, so that statistics or output of
  other predictions are never taken as this run's."""
  info = load_json(info_path(c, shard, task))
  made = info.get('made_from') if isinstance(info, dict) else None
  return {'made_from': made,
          'image_num': info.get('image_num') if isinstance(info, dict) else None,
          'prediction_bytes': int(tf.io.gfile.stat(
              prediction_path(c, shard, task)).length)}


def check_same_predictions(c: FilterConfig, shard: int, task: int,
                           path: str, recorded: dict) -> None:
  """FilterError when `path` (a statistics file) was made from predictions
  other than the unit's current ones (a teacher or input that changed);
  files of earlier versions, which record none, are taken as they are."""
  before = recorded.get('predictions')
  if before is None:  # written by an earlier version: nothing to compare
    return
  current = predictions_identity(c, shard, task)
  if before == current:
    return
  what = 'from other predictions (' + '; '.join(
      f'{key}: {before.get(key)!r} -> {value!r}'
      for key, value in current.items() if before.get(key) != value) + ')'
  raise errors.FilterError(
      f'{path} was written {what} of shard {shard} (task {task}): '
      f'{prediction_path(c, shard, task)} was redone since. Filter into a new '
      f'{errors.field_name("output_dir")}, or delete the old output (and its '
      'statistics) so that both passes run again')


def _count_error(pred: str, info: str, seen: int, image_num: int) -> errors.FilterError:
  """`pred` holds `seen` records (or more, when seen > image_num)."""
  more = '+' if seen > image_num else ''
  return errors.FilterError(f'{pred} holds {seen}{more} prediction records but {info} '
                     f'says image_num={image_num}')


# How far a stored softmax may stray from [0, 1] and from a sum of 1
# (bfloat16 teachers round each probability to 8 bits of mantissa).
PROBABILITY_TOLERANCE = 1e-6
SUM_TOLERANCE = 1e-2


def softmax_rows(probs: np.ndarray) -> np.ndarray:
  """bool [n]: which rows of `probs` [n, C] are probability distributions
  (finite, in [0, 1], summing to 1 within SUM_TOLERANCE)."""
  with np.errstate(invalid='ignore'):
    return (np.isfinite(probs).all(axis=1)
            & (probs >= -PROBABILITY_TOLERANCE).all(axis=1)
            & (probs <= 1 + PROBABILITY_TOLERANCE).all(axis=1)
            & (np.abs(probs.sum(axis=1) - 1) <= SUM_TOLERANCE))


def prediction_batches(path: str, num_classes: int, batch_size: int
                       ) -> Iterator[np.ndarray]:
  """Streams a prediction file: float32 [b, num_classes] per batch, in order.

  Raises:
    records.RecordError naming `path` and the record for a wrong
    `probabilities` length, probabilities that are not a distribution
    (`softmax_rows`), or an unreadable (truncated, corrupt) file.
  """
  def parse(serialized):
    sparse = tf.io.parse_example(serialized, {
        records.PROBABILITIES_KEY: tf.io.VarLenFeature(tf.float32)
    })[records.PROBABILITIES_KEY]
    size = tf.shape(serialized)[0]
    lengths = tf.math.bincount(tf.cast(sparse.indices[:, 0], tf.int32),
                               minlength=size, maxlength=size)
    return sparse.values, lengths

  dataset = (tf.data.TFRecordDataset(path, buffer_size=8 << 20)
             .batch(batch_size)
             .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
             .prefetch(2))
  start = 0
  iterator = dataset.as_numpy_iterator()
  while True:
    try:
      values, lengths = next(iterator)
    except StopIteration:
      return
    except tf.errors.OpError as err:
      raise records.RecordError(
          f'{path}: unreadable prediction record after record {start}: '
          f'{err.message}') from err
    bad = np.nonzero(lengths != num_classes)[0]
    if len(bad):
      raise records.RecordError(
          f'{path}: record {start + bad[0]} has {lengths[bad[0]]} '
          f'`probabilities`, expected '
          f'{errors.field_name("num_label_classes")}={num_classes}')
    probs = values.reshape(len(lengths), num_classes)
    bad = np.nonzero(~softmax_rows(probs))[0]
    if len(bad):
      row = probs[bad[0]]
      raise records.RecordError(
          f'{path}: record {start + bad[0]} has `probabilities` that are not '
          f'a distribution (min {row.min():.4g}, max {row.max():.4g}, sum '
          f'{row.sum():.4g}): expected finite values in [0, 1] summing to 1, '
          f'as the teacher\'s softmax writes them')
    yield probs
    start += len(lengths)


def image_batches(path: str, total_replicas: int, task: int, batch_size: int
                   ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
  """Streams this worker's unlabeled records: (image bytes [b], label [b]).

  The label is the optional true label, 0-based, -1 when absent.
  """
  def parse(serialized):
    parsed = tf.io.parse_example(serialized, {
        records.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string, ''),
        records.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64, 0),
    })
    return parsed[records.IMAGE_KEY], parsed[records.LABEL_KEY] - 1

  dataset = (tf.data.TFRecordDataset(path, buffer_size=8 << 20)
             .shard(total_replicas, task)
             .batch(batch_size)
             .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
             .prefetch(2))
  iterator = dataset.as_numpy_iterator()
  while True:
    try:
      yield next(iterator)
    except StopIteration:
      return
    except tf.errors.OpError as err:
      raise records.RecordError(
          f'{path}: unreadable unlabeled record: {err.message}') from err


def scan_predictions(c: FilterConfig, shard: int, task: int,
                     keep_records: bool = False) -> dict:
  """Reads one unit's predictions, validates them, and histograms them.

  Returns:
    {'num_records', 'counts' [C, NUM_BINS] (all), 'eligible' [C, NUM_BINS]}
    plus, with `keep_records`, 'labels' int32 [n] and 'probs' float32 [n].
  """
  image_num, _ = check_unit_inputs(c, shard, task)
  pred, s = prediction_path(c, shard, task), c.settings
  counts = np.zeros((c.num_classes, selection.NUM_BINS), np.int64)
  eligible = np.zeros_like(counts)
  labels_parts, probs_parts = [], []
  seen = 0
  progress = progress_lib.Progress(f'stats {os.path.basename(pred)}', image_num,
                                  unit='records')
  for probs in prediction_batches(pred, c.num_classes, c.batch_size):
    labels, top = selection.top1(probs)
    bins = selection.bin_index(top)
    counts += selection.class_bin_counts(labels, bins, c.num_classes)
    eligible += selection.class_bin_counts(
        labels, bins, c.num_classes,
        selection.eligible_mask(top, s.min_threshold, s.max_prob))
    if keep_records:
      labels_parts.append(labels)
      probs_parts.append(top)
    seen += len(labels)
    if seen > image_num:
      raise _count_error(pred, info_path(c, shard, task), seen, image_num)
    progress.update(len(labels))
  if seen != image_num:
    raise _count_error(pred, info_path(c, shard, task), seen, image_num)
  out = {'num_records': seen, 'counts': counts, 'eligible': eligible}
  if keep_records:
    out['labels'] = np.concatenate(labels_parts or [np.zeros(0, np.int32)])
    out['probs'] = np.concatenate(probs_parts or [np.zeros(0, np.float32)])
  return out


# --------------------------------------------------------------------------
