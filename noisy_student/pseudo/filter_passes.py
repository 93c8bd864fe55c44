"""The filter's two passes over the prediction files (see docs/filtering.md).

1. statistics (`ensure_prelim_stats`, `merge_prelim_stats`): per-unit
   histograms of pseudo class x confidence bin, then their sum;
2. selection (`load_or_build_plan`, `select_unit`, `write_final_stats`): one
   allocation plan for every class, then each unit writes its pseudo-labeled
   shard (copies per record from `selection.unit_copies`), shuffled.
`run_pass` runs either pass over some units; jobs on many machines can share
the units, and the one that finishes last writes the merged or final stats.
File names and readers are in `filter_files`.

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
from typing import Iterator, Sequence

from absl import logging
import numpy as np
import tensorflow as tf

from noisy_student.runtime import progress as progress_lib
from data import layout
from data import records
from data import writers
from noisy_student.runtime import errors
from noisy_student.pseudo import filter_files
from noisy_student.pseudo import selection

# Version of the statistics files; files of another version are refused by name.
STATS_FORMAT = 1
# Suffix of the temporary bucket folders of a large unit's shuffle.
BUCKETS_SUFFIX = '.buckets'


# --------------------------------------------------------------------------
# Pass 1: statistics.
# --------------------------------------------------------------------------
def _stats_header(c: filter_files.FilterConfig) -> dict:
  """The settings a statistics file depends on."""
  s = c.settings
  return {'format': STATS_FORMAT, 'num_shards': c.num_shards,
          'total_replicas': c.total_replicas,
          'num_label_classes': s.num_label_classes,
          'min_threshold': s.min_threshold, 'max_prob': s.max_prob}


def _check_header(path: str, obj: dict, c: filter_files.FilterConfig) -> None:
  for key, want in _stats_header(c).items():
    if obj.get(key) != want:
      raise errors.FilterError(
          f'{path} was computed with {key}={obj.get(key)!r} but this run has '
          f'{errors.field_name(key)}={want!r}; delete it (or use '
          f'another {errors.field_name("prelim_stats_dir")}) and rerun the '
          'statistics pass')


def load_prelim_stats(c: filter_files.FilterConfig, shard: int, task: int) -> dict:
  """A unit's statistics file, checked against the settings; None if absent."""
  path = filter_files.prelim_stats_path(c, shard, task)
  if not tf.io.gfile.exists(path):
    return None
  obj = filter_files.load_json(path)
  _check_header(path, obj, c)
  filter_files.check_same_predictions(c, shard, task, path, obj)
  try:
    obj['counts'] = selection.hist_from_json(obj['counts'], c.num_classes)
    obj['eligible'] = selection.hist_from_json(obj['eligible'],
                                                  c.num_classes)
  except (KeyError, ValueError) as err:
    raise errors.FilterError(f'{path}: bad histogram ({err})') from err
  return obj


def ensure_prelim_stats(c: filter_files.FilterConfig, shard: int, task: int) -> dict:
  """Loads a unit's statistics, computing and writing them first if absent."""
  stats = load_prelim_stats(c, shard, task)
  if stats is not None:
    return stats
  start = time.time()
  scan = filter_files.scan_predictions(c, shard, task)
  obj = dict(_stats_header(c), shard_id=shard, task=task,
             predictions=filter_files.predictions_identity(c, shard, task),
             num_records=scan['num_records'],
             thresholds=selection.THRESHOLDS.tolist(),
             counts=selection.hist_to_json(scan['counts']),
             eligible=selection.hist_to_json(scan['eligible']))
  writers.write_json(filter_files.prelim_stats_path(c, shard, task), obj, indent=None)
  logging.info('statistics of shard %d task %d: %d records, %d eligible, %.1f s',
               shard, task, scan['num_records'], int(scan['eligible'].sum()),
               time.time() - start)
  return dict(obj, counts=scan['counts'], eligible=scan['eligible'])


def missing_prelim_stats(c: filter_files.FilterConfig) -> list[str]:
  return [p for p in (filter_files.prelim_stats_path(c, s, t) for s, t in c.units)
          if not tf.io.gfile.exists(p)]


def merge_prelim_stats(c: filter_files.FilterConfig) -> dict | None:
  """Sums all units' statistics into total_counts.json once all exist.

  Returns:
    {'num_records', 'counts', 'eligible'} (histograms [C, NUM_BINS]) or None
    while some unit's statistics are missing.
  """
  if missing_prelim_stats(c):
    return None
  counts = np.zeros((c.num_classes, selection.NUM_BINS), np.int64)
  eligible = np.zeros_like(counts)
  num_records = 0
  for shard, task in c.units:
    stats = load_prelim_stats(c, shard, task)
    counts += stats['counts']
    eligible += stats['eligible']
    num_records += stats['num_records']
  path = filter_files.total_counts_path(c)
  if not tf.io.gfile.exists(path):
    # at_or_above[c][b]: eligible images of class c with p >= THRESHOLDS[b].
    at_or_above = np.cumsum(eligible[:, ::-1], axis=1)[:, ::-1]
    writers.write_json(path, dict(
        _stats_header(c), num_units=len(c.units), num_records=num_records,
        thresholds=selection.THRESHOLDS.tolist(),
        counts=selection.hist_to_json(counts),
        eligible=selection.hist_to_json(eligible),
        eligible_at_or_above=selection.hist_to_json(at_or_above)),
        indent=None)
    logging.info('wrote %s: %d records in %d units', path, num_records,
                 len(c.units))
  return {'num_records': num_records, 'counts': counts, 'eligible': eligible}


# --------------------------------------------------------------------------
# The plan.
# --------------------------------------------------------------------------
def load_or_build_plan(c: filter_files.FilterConfig) -> selection.AllocationPlan:
  """Loads allocation_plan.json (checking it fits `c`) or builds and writes it.

  Building needs every unit's statistics; any job may build it, the result is
  the same.
  """
  path = filter_files.plan_path(c)
  if tf.io.gfile.exists(path):
    plan = selection.AllocationPlan.from_json(filter_files.load_json(path))
    for field in dataclasses.fields(selection.Settings):
      have, want = (getattr(plan.settings, field.name),
                    getattr(c.settings, field.name))
      if have != want:
        raise errors.FilterError(
            f'{path} was built with {field.name}={have!r} but this run has '
            f'{errors.field_name(field.name)}={want!r}; use another '
            f'{errors.field_name("output_dir")} or delete the '
            'old outputs')
    if list(plan.units) != c.units:
      raise errors.FilterError(f'{path} was built for {len(plan.units)} units, this '
                        f'run has {errors.field_name("num_shards")}='
                        f'{c.num_shards} x '
                        f'{errors.field_name("total_replicas")}='
                        f'{c.total_replicas}')
    return plan
  missing = missing_prelim_stats(c)
  if missing:
    raise errors.FilterError(
        f'{len(missing)} of {len(c.units)} statistics files are missing (first: '
        f'{", ".join(missing[:5])}); run the statistics pass '
        '(filter_unlabel --only_get_stats=1) on every shard first')
  merged = merge_prelim_stats(c)
  plan = selection.build_plan(
      c.settings, c.units, merged['eligible'],
      (load_prelim_stats(c, s, t)['eligible'] for s, t in c.units))
  writers.write_json(path, plan.to_json(), indent=None)
  _log_plan(plan)
  return plan


def _log_plan(plan: selection.AllocationPlan) -> None:
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
  scarce = [int(t) for t in r.eligible if 0 < t < k]
  if scarce and plan.settings.upsample and not plan.settings.use_all:
    logging.warning(
        'upsampling: %d of %d classes have fewer than %s=%d eligible images '
        '(fewest %d), so their images are repeated up to %d each: %d eligible '
        'images become %s records. Pass a smaller %s, or %s=false to keep '
        'each image once.', len(scarce), len(r.eligible),
        errors.field_name('num_image'), k, min(scarce), k,
        int(np.sum(r.eligible)), plan.to_json()['expected_total'],
        errors.field_name('num_image'), errors.field_name('upsample'))


# --------------------------------------------------------------------------
# Pass 2: selection, shuffling and writing.
# --------------------------------------------------------------------------
def _image_extension(encoded: bytes) -> str:
  if encoded[:8] == b'\x89PNG\r\n\x1a\n':
    return 'png'
  if encoded[:2] == b'\xff\xd8':
    return 'jpg'
  return 'bin'


def load_unit_stats(c: filter_files.FilterConfig, shard: int, task: int) -> dict | None:
  """A unit's output statistics when its output shard is complete, else None.

  A unit counts as done only when the stats file exists and the output shard
  holds exactly the record count it states (both are written atomically, the
  shard first), so an interrupted unit is redone on rerun.

  Raises:
    FilterError when the unit was filtered from other predictions.
  """
  path = filter_files.unit_stats_path(c, shard, task)
  if not tf.io.gfile.exists(path):
    return None
  stats = filter_files.load_json(path)
  out = filter_files.output_shard_path(c, shard, task)
  if not tf.io.gfile.exists(out):
    return None
  try:
    if records.count_records(out) != stats.get('num_written'):
      return None
  except records.RecordError:
    return None
  filter_files.check_same_predictions(c, shard, task, path, stats)
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
    writers.remove_stale_temps(path, suffix=BUCKETS_SUFFIX)  # a killed run's
    if self._num_buckets > 1:
      self._bucket_dir = writers.temp_path(path, suffix=BUCKETS_SUFFIX)
      tf.io.gfile.makedirs(self._bucket_dir)
      self._bucket_writers = [
          tf.io.TFRecordWriter(layout.bucket_path(self._bucket_dir, b))
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
      path = layout.bucket_path(self._bucket_dir, b)
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


def select_unit(c: filter_files.FilterConfig, plan: selection.AllocationPlan, shard: int,
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
  scan = filter_files.scan_predictions(c, shard, task, keep_records=True)
  # One generator per unit, seeded by (seed, shard, task): reruns repeat.
  rng = np.random.default_rng([s.seed, shard, task])
  try:
    copies = selection.unit_copies(scan['labels'], scan['probs'], plan, unit,
                                      rng)
  except ValueError as err:
    raise errors.FilterError(
        f'{filter_files.prediction_path(c, shard, task)}: does not match '
        f'{filter_files.plan_path(c)} ({err}); were the predictions redone after the '
        'statistics pass? Delete the statistics and the plan and rerun both '
        'passes') from err
  labels = scan['labels']
  num_written = int(copies.sum())
  if s.balance == 'exact' and num_written != plan.expected_per_unit[unit]:
    raise errors.FilterError(f'shard {shard} task {task}: {num_written} records '
                      f'selected, the plan expects {plan.expected_per_unit[unit]}')
  input_path = filter_files.input_shard_path(c, shard)
  input_bytes = tf.io.gfile.stat(input_path).length
  expected_bytes = int(input_bytes / max(c.total_replicas, 1)
                       * num_written / max(len(labels), 1))
  out_path = filter_files.output_shard_path(c, shard, task)
  shuffler = _Shuffler(out_path, rng, expected_bytes, c.shuffle_buffer_bytes)
  samples_left = np.full(
      c.num_classes,
      selection.sample_quota(c.num_samples_per_class, len(plan.units), unit))
  samples = []
  progress = progress_lib.Progress(f'select {os.path.basename(out_path)}',
                                  len(labels), unit='records')
  index = 0
  try:
    for (images, _), probs in zip(
        filter_files.image_batches(input_path, c.total_replicas, task, c.batch_size),
        filter_files.prediction_batches(filter_files.prediction_path(c, shard, task), c.num_classes,
                           c.batch_size)):
      if len(images) != len(probs):
        raise errors.FilterError(f'{input_path}: fewer records than its predictions '
                          f'{filter_files.prediction_path(c, shard, task)}')
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
      raise errors.FilterError(f'{input_path}: {index} records for worker {task}, '
                        f'its predictions have {len(labels)}')
    shuffler.write()
  finally:
    shuffler.close()
  for label, i, prob, encoded in samples:
    name = (f'image_{shard}_{task}_{i}_{prob:.3f}.'
            f'{_image_extension(encoded)}')
    with writers.atomic_output(
        os.path.join(filter_files.sample_dir(c), str(label), name)) as f:
      f.write(encoded)
  per_class = np.bincount(labels, weights=copies,
                          minlength=c.num_classes).astype(np.int64)
  stats = {
      'shard_id': shard, 'task': task,
      'predictions': filter_files.predictions_identity(c, shard, task),
      'num_records': int(len(labels)),
      'num_written': num_written, 'per_class': per_class.tolist(),
      'num_selected_images': int(np.count_nonzero(copies)),
      'num_duplicates': int(np.maximum(copies - 1, 0).sum()),
      'output': out_path,
  }
  writers.write_json(filter_files.unit_stats_path(c, shard, task), stats)
  logging.info('shard %d task %d: wrote %d records (%d images) to %s in %.1f s',
               shard, task, num_written, stats['num_selected_images'], out_path,
               time.time() - start)
  return stats


def write_final_stats(c: filter_files.FilterConfig, plan: selection.AllocationPlan) -> dict | None:
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
  writers.write_json(filter_files.final_stats_path(c), final)
  logging.info('all %d units filtered: %d records, per class %s', len(c.units),
               total, per_class.tolist())
  return final


def run_pass(c: filter_files.FilterConfig, units: Sequence[tuple[int, int]],
             only_get_stats: bool) -> dict | None:
  """Runs the statistics pass (`only_get_stats`) or the selection pass over `units`.

  Returns the merged statistics (stats pass) or the final statistics
  (selection pass) once every unit of the job is done, else None: with many
  jobs, the one that finishes last writes them.
  """
  if only_get_stats:
    for shard, task in units:
      ensure_prelim_stats(c, shard, task)
    merged = merge_prelim_stats(c)
    if merged is None:
      logging.info('%d units still lack statistics; the merged counts are '
                   'written by the job that finishes last',
                   len(missing_prelim_stats(c)))
    return merged
  plan = load_or_build_plan(c)
  for shard, task in units:
    select_unit(c, plan, shard, task)
  final = write_final_stats(c, plan)
  if final is None:
    logging.info('other units are still unfinished; final_stats.json is '
                 'written by the job that finishes last')
  return final


def check_filter_output(filter_dir: str, min_threshold: float) -> int:
  """The number of pseudo-labeled images the selection wrote (from
  `<filter_dir>/stats/final_stats.json`); raises FilterError when it is 0,
  since a student cannot train on an empty unlabeled set (iterate,
  filter_unlabel and beam_label stop there)."""
  path = layout.FilterDirs(filter_dir).final_stats
  with tf.io.gfile.GFile(path) as f:
    stats = json.load(f)
  written = int(stats['num_written'])
  if written == 0:
    raise errors.FilterError(
        f'{path}: the filter kept no pseudo-labels: none of the '
        f'{stats.get("num_prediction_records", "?")} teacher predictions has '
        f'a top-1 probability >= {errors.field_name("min_threshold")}='
        f'{min_threshold}. Lower {errors.field_name("min_threshold")} or '
        'train the teacher longer, then rerun.')
  return written
