"""Files of the filtering step: paths, validation, streaming passes, outputs.

The decisions live in `noisy_student/pseudo_label.py`; this module reads and
writes. A *unit* is one prediction file, i.e. one (shard_id, task) pair, where
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

Memory per unit: two int32/float32 numbers per prediction record of the unit,
one read batch, and the shuffle buffer (at most `shuffle_buffer_bytes`; larger
outputs are shuffled through temporary bucket files next to the output).
Everything is written atomically; a unit is done when its stats file exists and
its output shard holds the record count the stats file states.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import uuid
from typing import Iterator

from absl import logging
import numpy as np
import tensorflow as tf

from data import progress as progress_lib
from data import records
from data import writers
from noisy_student import prediction_files
from noisy_student import pseudo_label

STATS_FORMAT = 1


class FilterError(ValueError):
  """Inputs, statistics or plan disagree; the message names the file."""


@dataclasses.dataclass(frozen=True)
class FilterConfig:
  """Everything the filter needs (built from the flags by the binary).

  Attributes:
    input_dir: folder of the unlabeled shards.
    prediction_dir: folder of the teacher's `train-info-*` prediction files.
    info_dir: folder of the `info-*.txt` files.
    output_dir: where data/, stats/, samples/ and the plan go.
    settings: selection settings (classes, num_image, thresholds, balance).
    prelim_stats_dir: statistics folder ('' = `<output_dir>/prelim_stats`).
    file_prefix: unlabeled shard prefix (`train`, `extra`).
    num_shards: shards of the unlabeled set.
    total_replicas: prediction workers per shard.
    num_samples_per_class: sample images saved per class over all units.
    shuffle_buffer_bytes: in-memory shuffle limit per unit.
    batch_size: records per read batch.
  """
  input_dir: str
  prediction_dir: str
  info_dir: str
  output_dir: str
  settings: pseudo_label.Settings
  prelim_stats_dir: str = ''
  file_prefix: str = 'train'
  num_shards: int = 128
  total_replicas: int = 1
  num_samples_per_class: int = 10
  shuffle_buffer_bytes: int = 512 << 20
  batch_size: int = 1024

  def __post_init__(self):
    if self.num_shards < 1:
      raise ValueError(f'--num_shards must be >= 1, received: {self.num_shards}')
    if self.total_replicas < 1:
      raise ValueError('--total_replicas must be >= 1, received: '
                       f'{self.total_replicas}')
    if self.num_samples_per_class < 0:
      raise ValueError('--num_samples_per_class must be >= 0, received: '
                       f'{self.num_samples_per_class}')
    if not self.prelim_stats_dir:
      object.__setattr__(self, 'prelim_stats_dir',
                         os.path.join(self.output_dir, 'prelim_stats'))

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
def input_shard_path(c: FilterConfig, shard: int) -> str:
  return prediction_files.input_shard_path(c.input_dir, c.file_prefix, shard,
                                           c.num_shards)


def prediction_path(c: FilterConfig, shard: int, task: int) -> str:
  return prediction_files.prediction_path(c.prediction_dir, shard,
                                          c.num_shards, task)


def info_path(c: FilterConfig, shard: int, task: int) -> str:
  return prediction_files.info_path(c.info_dir, shard, c.num_shards, task)


def prelim_stats_path(c: FilterConfig, shard: int, task: int) -> str:
  return os.path.join(c.prelim_stats_dir, f'prelim_stats_{shard:05d}_{task}.json')


def total_counts_path(c: FilterConfig) -> str:
  return os.path.join(c.prelim_stats_dir, 'total_counts.json')


def plan_path(c: FilterConfig) -> str:
  return os.path.join(c.output_dir, 'allocation_plan.json')


def output_shard_path(c: FilterConfig, shard: int, task: int) -> str:
  return os.path.join(c.output_dir, 'data',
                      f'train-{task}-{shard:05d}-of-{c.num_shards:05d}')


def unit_stats_path(c: FilterConfig, shard: int, task: int) -> str:
  return os.path.join(c.output_dir, 'stats', f'stats_{shard:05d}_{task}.json')


def final_stats_path(c: FilterConfig) -> str:
  return final_stats_file(c.output_dir)


def final_stats_file(output_dir: str) -> str:
  """final_stats.json of a filter run writing to `output_dir`."""
  return os.path.join(output_dir, 'stats', 'final_stats.json')


def sample_dir(c: FilterConfig) -> str:
  return os.path.join(c.output_dir, 'samples')


def _load_json(path: str):
  try:
    with tf.io.gfile.GFile(path) as f:
      return json.load(f)
  except json.JSONDecodeError as err:
    raise FilterError(f'{path}: not valid JSON ({err})') from err


# --------------------------------------------------------------------------
# Input validation and streaming.
# --------------------------------------------------------------------------
def check_unit_inputs(c: FilterConfig, shard: int, task: int) -> tuple[int, int]:
  """Checks a unit's files exist and agree on counts.

  Returns:
    (number of predictions, number of records in the whole unlabeled shard).

  Raises:
    FileNotFoundError / FilterError naming the file at fault.
  """
  info = info_path(c, shard, task)
  pred = prediction_path(c, shard, task)
  unlabeled = input_shard_path(c, shard)
  for path, what in ((info, 'info file'), (pred, 'prediction shard'),
                     (unlabeled, 'unlabeled shard')):
    if not tf.io.gfile.exists(path):
      raise FileNotFoundError(
          f'{path}: {what} of shard {shard} (task {task}) not found; run the '
          'teacher (--mode=predict) on it or check --input_dir/--prediction_dir'
          '/--info_dir/--file_prefix/--num_shards')
  extra_worker = prediction_path(c, shard, c.total_replicas)
  if tf.io.gfile.exists(extra_worker):
    raise FilterError(
        f'{extra_worker} exists, so shard {shard} was predicted by more than '
        f'--total_replicas={c.total_replicas} workers')
  try:
    image_num = int(_load_json(info)['image_num'])
  except (KeyError, TypeError, ValueError) as err:
    raise FilterError(f'{info}: expected {{"image_num": N}} ({err})') from err
  num_unlabeled = records.count_records(unlabeled)
  expected = len(range(task, num_unlabeled, c.total_replicas))
  if expected != image_num:
    raise FilterError(
        f'{unlabeled} holds {num_unlabeled} records, so worker {task} of '
        f'{c.total_replicas} owns {expected}, but {info} says image_num='
        f'{image_num} for {pred}')
  return image_num, num_unlabeled


def _count_error(pred: str, info: str, seen: int, image_num: int) -> FilterError:
  """`pred` holds `seen` records (or more, when seen > image_num)."""
  more = '+' if seen > image_num else ''
  return FilterError(f'{pred} holds {seen}{more} prediction records but {info} '
                     f'says image_num={image_num}')


def prediction_batches(path: str, num_classes: int, batch_size: int
                       ) -> Iterator[np.ndarray]:
  """Streams a prediction file: float32 [b, num_classes] per batch, in order.

  Raises:
    records.RecordError naming `path` and the record for a wrong
    `probabilities` length, a non-finite or negative top-1 probability, or an
    unreadable (truncated, corrupt) file.
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
          f'`probabilities`, expected --num_label_classes={num_classes}')
    probs = values.reshape(len(lengths), num_classes)
    top = probs.max(axis=1)
    bad = np.nonzero(~np.isfinite(top) | (top < 0))[0]
    if len(bad):
      raise records.RecordError(
          f'{path}: record {start + bad[0]} has a top-1 probability of '
          f'{top[bad[0]]}, expected a finite value >= 0')
    yield probs
    start += len(lengths)


def _image_batches(path: str, total_replicas: int, task: int, batch_size: int
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
  counts = np.zeros((c.num_classes, pseudo_label.NUM_BINS), np.int64)
  eligible = np.zeros_like(counts)
  labels_parts, probs_parts = [], []
  seen = 0
  progress = progress_lib.Progress(f'stats {os.path.basename(pred)}', image_num,
                                  unit='records')
  for probs in prediction_batches(pred, c.num_classes, c.batch_size):
    labels, top = pseudo_label.top1(probs)
    bins = pseudo_label.bin_index(top)
    counts += pseudo_label.class_bin_counts(labels, bins, c.num_classes)
    eligible += pseudo_label.class_bin_counts(
        labels, bins, c.num_classes,
        pseudo_label.eligible_mask(top, s.min_threshold, s.max_prob))
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
# Pass 1: statistics.
# --------------------------------------------------------------------------
def _stats_header(c: FilterConfig) -> dict:
  """The settings a statistics file depends on."""
  s = c.settings
  return {'format': STATS_FORMAT, 'num_shards': c.num_shards,
          'total_replicas': c.total_replicas,
          'num_label_classes': s.num_label_classes,
          'min_threshold': s.min_threshold, 'max_prob': s.max_prob}


def _check_header(path: str, obj: dict, c: FilterConfig) -> None:
  flag = {'num_label_classes': 'num_label_classes', 'num_shards': 'num_shards',
          'total_replicas': 'total_replicas', 'min_threshold': 'min_threshold',
          'max_prob': 'max_prob', 'format': 'format'}
  for key, want in _stats_header(c).items():
    if obj.get(key) != want:
      raise FilterError(
          f'{path} was computed with {key}={obj.get(key)!r} but this run has '
          f'--{flag[key]}={want!r}; delete it (or use another '
          '--prelim_stats_dir) and rerun the statistics pass')


def load_prelim_stats(c: FilterConfig, shard: int, task: int) -> dict:
  """A unit's statistics file, checked against the settings; None if absent."""
  path = prelim_stats_path(c, shard, task)
  if not tf.io.gfile.exists(path):
    return None
  obj = _load_json(path)
  _check_header(path, obj, c)
  try:
    obj['counts'] = pseudo_label.hist_from_json(obj['counts'], c.num_classes)
    obj['eligible'] = pseudo_label.hist_from_json(obj['eligible'],
                                                  c.num_classes)
  except (KeyError, ValueError) as err:
    raise FilterError(f'{path}: bad histogram ({err})') from err
  return obj


def ensure_prelim_stats(c: FilterConfig, shard: int, task: int) -> dict:
  """Loads a unit's statistics, computing and writing them first if absent."""
  stats = load_prelim_stats(c, shard, task)
  if stats is not None:
    return stats
  start = time.time()
  scan = scan_predictions(c, shard, task)
  obj = dict(_stats_header(c), shard_id=shard, task=task,
             num_records=scan['num_records'],
             thresholds=pseudo_label.THRESHOLDS.tolist(),
             counts=pseudo_label.hist_to_json(scan['counts']),
             eligible=pseudo_label.hist_to_json(scan['eligible']))
  writers.write_json(prelim_stats_path(c, shard, task), obj, indent=None)
  logging.info('statistics of shard %d task %d: %d records, %d eligible, %.1f s',
               shard, task, scan['num_records'], int(scan['eligible'].sum()),
               time.time() - start)
  return dict(obj, counts=scan['counts'], eligible=scan['eligible'])


def missing_prelim_stats(c: FilterConfig) -> list[str]:
  return [p for p in (prelim_stats_path(c, s, t) for s, t in c.units)
          if not tf.io.gfile.exists(p)]


def merge_prelim_stats(c: FilterConfig) -> dict | None:
  """Sums all units' statistics into total_counts.json once all exist.

  Returns:
    {'num_records', 'counts', 'eligible'} (histograms [C, NUM_BINS]) or None
    while some unit's statistics are missing.
  """
  if missing_prelim_stats(c):
    return None
  counts = np.zeros((c.num_classes, pseudo_label.NUM_BINS), np.int64)
  eligible = np.zeros_like(counts)
  num_records = 0
  for shard, task in c.units:
    stats = load_prelim_stats(c, shard, task)
    counts += stats['counts']
    eligible += stats['eligible']
    num_records += stats['num_records']
  path = total_counts_path(c)
  if not tf.io.gfile.exists(path):
    # at_or_above[c][b]: eligible images of class c with p >= THRESHOLDS[b].
    at_or_above = np.cumsum(eligible[:, ::-1], axis=1)[:, ::-1]
    writers.write_json(path, dict(
        _stats_header(c), num_units=len(c.units), num_records=num_records,
        thresholds=pseudo_label.THRESHOLDS.tolist(),
        counts=pseudo_label.hist_to_json(counts),
        eligible=pseudo_label.hist_to_json(eligible),
        eligible_at_or_above=pseudo_label.hist_to_json(at_or_above)),
        indent=None)
    logging.info('wrote %s: %d records in %d units', path, num_records,
                 len(c.units))
  return {'num_records': num_records, 'counts': counts, 'eligible': eligible}


# --------------------------------------------------------------------------
# The plan.
# --------------------------------------------------------------------------
def load_or_build_plan(c: FilterConfig) -> pseudo_label.Plan:
  """Loads allocation_plan.json (checking it fits `c`) or builds and writes it.

  Building needs every unit's statistics; any job may build it, the result is
  the same.
  """
  path = plan_path(c)
  if tf.io.gfile.exists(path):
    plan = pseudo_label.Plan.from_json(_load_json(path))
    for field in dataclasses.fields(pseudo_label.Settings):
      have, want = (getattr(plan.settings, field.name),
                    getattr(c.settings, field.name))
      if have != want:
        raise FilterError(
            f'{path} was built with {field.name}={have!r} but this run has '
            f'--{field.name}={want!r}; use another --output_dir or delete the '
            'old outputs')
    if list(plan.units) != c.units:
      raise FilterError(f'{path} was built for {len(plan.units)} units, this '
                        f'run has --num_shards={c.num_shards} x '
                        f'--total_replicas={c.total_replicas}')
    return plan
  missing = missing_prelim_stats(c)
  if missing:
    raise FilterError(
        f'{len(missing)} of {len(c.units)} statistics files are missing (first: '
        f'{", ".join(missing[:5])}); run the statistics pass '
        '(--only_get_stats=1) on every shard first')
  merged = merge_prelim_stats(c)
  plan = pseudo_label.build_plan(
      c.settings, c.units, merged['eligible'],
      (load_prelim_stats(c, s, t)['eligible'] for s, t in c.units))
  writers.write_json(path, plan.to_json(), indent=None)
  _log_plan(plan)
  return plan


def _log_plan(plan: pseudo_label.Plan) -> None:
  r, k = plan.rules, plan.settings.num_image
  for cls in range(len(r.eligible)):
    t = int(r.eligible[cls])
    if t == 0:
      logging.warning('class %d: no eligible image; it gets no pseudo labels',
                      cls)
    elif t < k and not plan.settings.use_all:
      logging.info('class %d: only %d eligible images for %d, %s', cls, t, k,
                   'upsampling' if plan.settings.upsample else 'keeping all')
    else:
      logging.info('class %d: %d eligible images, threshold %.3f', cls, t,
                   r.threshold[cls])
  logging.info('plan: %s output records expected', plan.to_json()['expected_total'])


# --------------------------------------------------------------------------
# Pass 2: selection, shuffling and writing.
# --------------------------------------------------------------------------
def _image_extension(encoded: bytes) -> str:
  if encoded[:8] == b'\x89PNG\r\n\x1a\n':
    return 'png'
  if encoded[:2] == b'\xff\xd8':
    return 'jpg'
  return 'bin'


def load_unit_stats(c: FilterConfig, shard: int, task: int) -> dict | None:
  """A unit's output statistics when its output shard is complete, else None.

  A unit counts as done only when the stats file exists and the output shard
  holds exactly the record count it states (both are written atomically, the
  shard first), so an interrupted unit is redone on rerun.
  """
  path = unit_stats_path(c, shard, task)
  if not tf.io.gfile.exists(path):
    return None
  stats = _load_json(path)
  out = output_shard_path(c, shard, task)
  if not tf.io.gfile.exists(out):
    return None
  try:
    if records.count_records(out) != stats.get('num_written'):
      return None
  except records.RecordError:
    return None
  return stats


class _Shuffler:
  """Writes records to `path` in a seeded random order with bounded memory.

  Up to `buffer_bytes` of records stay in memory; an output expected to be
  larger is first spread over `num_buckets` temporary files (each record to a
  random bucket), then each bucket is shuffled in memory and appended.
  """

  def __init__(self, path: str, rng: np.random.Generator, expected_bytes: int,
               buffer_bytes: int):
    self._path, self._rng = path, rng
    self._num_buckets = max(1, math.ceil(expected_bytes / max(buffer_bytes, 1)))
    self._memory: list[bytes] = []
    self._bucket_dir = None
    self._bucket_writers = []
    if self._num_buckets > 1:
      self._bucket_dir = os.path.join(
          os.path.dirname(path), f'.{os.path.basename(path)}.buckets-'
          f'{uuid.uuid4().hex[:8]}')
      tf.io.gfile.makedirs(self._bucket_dir)
      self._bucket_writers = [
          tf.io.TFRecordWriter(os.path.join(self._bucket_dir, f'{b:05d}'))
          for b in range(self._num_buckets)]
    self.count = 0

  def add(self, record: bytes, copies: int) -> None:
    self.count += copies
    if not self._bucket_writers:
      self._memory.extend([record] * copies)
      return
    for b in self._rng.integers(0, self._num_buckets, size=copies):
      self._bucket_writers[b].write(record)

  def _buckets(self) -> Iterator[list[bytes]]:
    if not self._bucket_writers:
      yield self._memory
      return
    for writer in self._bucket_writers:
      writer.close()
    for b in range(self._num_buckets):
      path = os.path.join(self._bucket_dir, f'{b:05d}')
      yield list(tf.data.TFRecordDataset(path).as_numpy_iterator())
      tf.io.gfile.remove(path)

  def write(self) -> int:
    """Writes the shuffled records atomically; returns how many."""
    try:
      with writers.atomic_tfrecord_writer(self._path) as writer:
        for bucket in self._buckets():
          for i in self._rng.permutation(len(bucket)):
            writer.write(bucket[i])
          bucket.clear()
    finally:
      self.close()
    return self.count

  def close(self) -> None:
    for writer in self._bucket_writers:
      writer.close()
    self._bucket_writers = []
    if self._bucket_dir and tf.io.gfile.exists(self._bucket_dir):
      tf.io.gfile.rmtree(self._bucket_dir)


def select_unit(c: FilterConfig, plan: pseudo_label.Plan, shard: int,
                task: int) -> dict:
  """Writes one unit's pseudo-labeled shard, samples and stats; idempotent.

  Returns:
    The unit's stats: num_records, num_written, per_class (written per class),
    num_duplicates (records written more than once count their extra copies).
  """
  done = load_unit_stats(c, shard, task)
  if done is not None:
    logging.info('shard %d task %d already filtered (%d records); skipping',
                 shard, task, done['num_written'])
    return done
  start = time.time()
  s = c.settings
  unit = plan.unit_index(shard, task)
  scan = scan_predictions(c, shard, task, keep_records=True)
  # One generator per unit, seeded by (seed, shard, task): reruns repeat.
  rng = np.random.default_rng([s.seed, shard, task])
  try:
    copies = pseudo_label.unit_copies(scan['labels'], scan['probs'], plan, unit,
                                      rng)
  except ValueError as err:
    raise FilterError(
        f'{prediction_path(c, shard, task)}: does not match '
        f'{plan_path(c)} ({err}); were the predictions redone after the '
        'statistics pass? Delete the statistics and the plan and rerun both '
        'passes') from err
  labels = scan['labels']
  num_written = int(copies.sum())
  if s.balance == 'exact' and num_written != plan.expected_per_unit[unit]:
    raise FilterError(f'shard {shard} task {task}: {num_written} records '
                      f'selected, the plan expects {plan.expected_per_unit[unit]}')
  input_path = input_shard_path(c, shard)
  input_bytes = tf.io.gfile.stat(input_path).length
  expected_bytes = int(input_bytes / max(c.total_replicas, 1)
                       * num_written / max(len(labels), 1))
  out_path = output_shard_path(c, shard, task)
  shuffler = _Shuffler(out_path, rng, expected_bytes, c.shuffle_buffer_bytes)
  samples_left = np.full(
      c.num_classes,
      pseudo_label.sample_quota(c.num_samples_per_class, len(plan.units), unit))
  samples = []
  progress = progress_lib.Progress(f'select {os.path.basename(out_path)}',
                                  len(labels), unit='records')
  index = 0
  try:
    for (images, _), probs in zip(
        _image_batches(input_path, c.total_replicas, task, c.batch_size),
        prediction_batches(prediction_path(c, shard, task), c.num_classes,
                           c.batch_size)):
      if len(images) != len(probs):
        raise FilterError(f'{input_path}: fewer records than its predictions '
                          f'{prediction_path(c, shard, task)}')
      for j in np.nonzero(copies[index:index + len(images)])[0]:
        i = index + j
        encoded = bytes(images[j])
        shuffler.add(records.serialize_pseudo_labeled(encoded, probs[j]),
                     int(copies[i]))
        label = labels[i]
        if samples_left[label] > 0:
          samples_left[label] -= 1
          samples.append((int(label), i, float(scan['probs'][i]), encoded))
      index += len(images)
      progress.update(len(images))
    if index != len(labels):
      raise FilterError(f'{input_path}: {index} records for worker {task}, '
                        f'its predictions have {len(labels)}')
    shuffler.write()
  finally:
    shuffler.close()
  for label, i, prob, encoded in samples:
    name = (f'image_{shard}_{task}_{i}_{prob:.3f}.'
            f'{_image_extension(encoded)}')
    with writers.atomic_output(
        os.path.join(sample_dir(c), str(label), name)) as f:
      f.write(encoded)
  per_class = np.bincount(labels, weights=copies,
                          minlength=c.num_classes).astype(np.int64)
  stats = {
      'shard_id': shard, 'task': task, 'num_records': int(len(labels)),
      'num_written': num_written, 'per_class': per_class.tolist(),
      'num_selected_images': int(np.count_nonzero(copies)),
      'num_duplicates': int(np.maximum(copies - 1, 0).sum()),
      'output': out_path,
  }
  writers.write_json(unit_stats_path(c, shard, task), stats)
  logging.info('shard %d task %d: wrote %d records (%d images) to %s in %.1f s',
               shard, task, num_written, stats['num_selected_images'], out_path,
               time.time() - start)
  return stats


def write_final_stats(c: FilterConfig, plan: pseudo_label.Plan) -> dict | None:
  """Sums every unit's output stats into final_stats.json once all are done.

  Returns the final stats, or None while some unit is unfinished.
  """
  per_class = np.zeros(c.num_classes, np.int64)
  total = num_records = duplicates = 0
  for shard, task in c.units:
    stats = load_unit_stats(c, shard, task)
    if stats is None:
      return None
    per_class += np.asarray(stats['per_class'], np.int64)
    total += stats['num_written']
    num_records += stats['num_records']
    duplicates += stats['num_duplicates']
  final = {
      'num_prediction_records': num_records, 'num_written': total,
      'num_duplicates': duplicates, 'per_class': per_class.tolist(),
      'expected_per_class': plan.to_json()['expected_per_class'],
      'num_image': c.settings.num_image,
      'min_threshold': c.settings.min_threshold,
      'balance': c.settings.balance,
  }
  # Spread of the balanced histogram over the classes that had candidates.
  present = per_class[plan.rules.eligible > 0]
  final['histogram_spread'] = int(present.max() - present.min()) if len(
      present) else 0
  writers.write_json(final_stats_path(c), final)
  logging.info('all %d units filtered: %d records, per class %s', len(c.units),
               total, per_class.tolist())
  return final
