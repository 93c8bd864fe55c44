"""Image files on disk -> TFRecord shards, in several processes.

The library behind `python -m data.images_to_tfrecord`. The (seeded, shuffled)
file list is cut into `num_shards` contiguous pieces; each worker process
writes whole shards atomically, so the output does not depend on the number
of workers. Files that cannot be decoded are skipped and reported by path:
in the log, in `<output_dir>/<split>-skipped.txt` (path TAB reason) and in
`<output_dir>/<split>-summary.json`, which also records the configuration
and the finished shards so that a rerun keeps them (a killed run resumes).
Readers never take these reports for shards (they match shard names only).
The split is then recorded in `<output_dir>/dataset_info.json`
(data/dataset_info.py): classes, image count, the common image size and, for
`train`, the mean/std RGB measured over every written image.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import multiprocessing
import os
from typing import Callable, Sequence

from absl import logging
import numpy as np
import tensorflow as tf

from data import layout
from data import dataset_info
from noisy_student.runtime import errors
from data import image_codec
from data import image_folders
from noisy_student.runtime import progress as progress_lib
from data import records
from data import writers

LABELS_FILENAME = 'labels.txt'


class ConversionError(errors.NoisyStudentError):
  """The run cannot go ahead as configured; names the flag or file at fault."""


@dataclasses.dataclass(frozen=True)
class ConvertConfig:
  """What images_to_tfrecord does; built from the flags in its main().

  Attributes:
    input_dir: class folders (labeled) or any image tree (unlabeled).
    output_dir: destination of the shards and reports.
    split: file prefix of the shards (train, validation, extra, ...).
    num_shards: number of shard files.
    unlabeled: write unlabeled records; a flat input folder implies it.
    label_map: label map path (see data.image_folders); None: sorted folders.
    num_workers: at most this many processes writing shards (1: in this
      process); each worker takes at least `min_images_per_worker` images.
    seed: seed of the shuffle of the file order.
    shuffle: shuffle the file order (else sorted by path).
    reencode: re-encode JPEG/PNG files too.
    image_format: format of re-encoded images, 'jpeg' or 'png'.
    jpeg_quality: JPEG quality in [1, 100] of re-encoded images.
    overwrite: rewrite every shard.
    name: the dataset's name in dataset_info.json (default: the output
      folder's name).
    flip: horizontal flips keep the label (recorded in dataset_info.json).
    min_images_per_worker: images a worker process must have to be started
      (one costs seconds to start: it imports TensorFlow), so a small folder
      is written in this process whatever `num_workers` says.
  """
  input_dir: str
  output_dir: str
  split: str = 'train'
  num_shards: int = 128
  unlabeled: bool = False
  label_map: str | None = None
  num_workers: int = 1
  seed: int = 0
  shuffle: bool = True
  reencode: bool = False
  image_format: str = 'jpeg'
  jpeg_quality: int = image_codec.DEFAULT_JPEG_QUALITY
  overwrite: bool = False
  name: str | None = None
  flip: bool = True
  min_images_per_worker: int = 2000

  def validate(self) -> None:
    if not self.input_dir or not self.output_dir:
      raise ConversionError(f'{errors.field_name("input_dir")} and {errors.field_name("output_dir")} are required')
    if not self.split or '/' in self.split:
      raise ConversionError(f'{errors.field_name("split")} must be a file prefix, received: '
                            f'{self.split!r}')
    if self.num_shards <= 0:
      raise ConversionError(f'{errors.field_name("num_shards")} must be positive, received: '
                            f'{self.num_shards}')
    if self.num_workers <= 0:
      raise ConversionError(f'{errors.field_name("num_workers")} must be positive, received: '
                            f'{self.num_workers}')
    if not 1 <= self.jpeg_quality <= 100:
      raise ConversionError(f'{errors.field_name("jpeg_quality")} must be in [1, 100], received: '
                            f'{self.jpeg_quality}')
    image_codec.check_format(self.image_format)


# --------------------------------------------------------------------------
# One shard (runs in a worker process).
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ShardTask:
  path: str
  items: list[tuple[str, int | None]]
  labeled: bool
  reencode: bool
  image_format: str
  jpeg_quality: int
  measure_pixels: bool = False


def write_image_shard(task: ShardTask) -> dict:
  """Writes one shard; returns {'records', 'reencoded', 'skipped', 'sizes'}.

  'sizes' holds up to two distinct (height, width) of the images (two mean
  "several"); with `measure_pixels`, 'pixel_stats' sums the RGB pixels. A file
  that cannot be read or decoded is skipped, never fatal.
  """
  result = {'records': 0, 'reencoded': 0, 'skipped': [], 'sizes': []}
  stats = dataset_info.PixelStats()

  def serialized():
    for path, label in task.items:
      try:
        with open(path, 'rb') as f:
          data = f.read()
        data, reencoded, rgb = image_codec.storable_image(
            data, reencode=task.reencode, image_format=task.image_format,
            quality=task.jpeg_quality, source=path)
      except (OSError, image_codec.ImageDecodeError) as err:
        reason = str(err)
        if reason.startswith(path + ': '):
          reason = reason[len(path) + 2:]
        result['skipped'].append([path, reason])
        continue
      result['reencoded'] += int(reencoded)
      result['records'] += 1
      size = list(rgb.shape[:2])
      if size not in result['sizes'] and len(result['sizes']) < 2:
        result['sizes'].append(size)
      if task.measure_pixels:
        stats.add(rgb)
      if task.labeled:
        yield records.serialize_labeled(data, label)
      else:
        yield records.serialize_unlabeled(data)

  writers.write_records(task.path, serialized())
  if task.measure_pixels:
    result['pixel_stats'] = stats.to_json()
  return result


# --------------------------------------------------------------------------
# Planning and bookkeeping (main process).
# --------------------------------------------------------------------------
def _listing(config: ConvertConfig) -> tuple[image_folders.Listing, bool]:
  """The images to convert and whether they are labeled."""
  flat = (os.path.isdir(config.input_dir)
          and not image_folders.class_folders(config.input_dir))
  if config.unlabeled or flat:
    if config.label_map:
      raise ConversionError(f'{errors.field_name("label_map")} has no use with unlabeled input '
                            f'({errors.field_name("input_dir")}={config.input_dir})')
    return image_folders.list_unlabeled(config.input_dir), False
  label_map_path = config.label_map
  labels_file = os.path.join(config.output_dir, LABELS_FILENAME)
  if not label_map_path and tf.io.gfile.exists(labels_file):
    label_map_path = labels_file  # the classes of the folder's first split
  label_map = (image_folders.load_label_map(label_map_path)
               if label_map_path else None)
  return image_folders.list_labeled(config.input_dir, label_map), True


def _sha256(lines: Sequence[str]) -> str:
  digest = hashlib.sha256()
  for line in lines:
    digest.update(line.encode('utf-8') + b'\n')
  return digest.hexdigest()


def _fingerprint(config: ConvertConfig, listing: image_folders.Listing,
                 labeled: bool) -> dict:
  """Everything that determines the shard contents, compared on reruns."""
  root = os.path.abspath(config.input_dir)
  files = [f'{os.path.relpath(os.path.abspath(p), root)}\t{label}'
           for p, label in listing.items]
  return {
      'split': config.split,
      'num_shards': config.num_shards,
      'labeled': labeled,
      'num_files': len(listing.items),
      'files_sha256': _sha256(files),
      'num_classes': len(listing.class_names),
      'classes_sha256': _sha256(listing.class_names),
      'shuffle': config.shuffle,
      'seed': config.seed if config.shuffle else None,
      'reencode': config.reencode,
      'image_format': image_codec.check_format(config.image_format),
      'jpeg_quality': config.jpeg_quality,
  }


def _read_summary(path: str) -> dict | None:
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path, 'r') as f:
    try:
      return json.load(f)
    except json.JSONDecodeError:
      return None


def _write_labels_file(output_dir: str, class_names: list[str]) -> str:
  """Writes labels.txt (a folder per line); never changes an existing one."""
  path = os.path.join(output_dir, LABELS_FILENAME)
  text = ''.join(f'{name}\n' for name in class_names)
  if tf.io.gfile.exists(path):
    with tf.io.gfile.GFile(path, 'r') as f:
      old = f.read()
    if old == text:
      return path
    raise ConversionError(
        f'{path} already lists other classes than the folders of this '
        f'{errors.field_name("input_dir")}; pass {errors.field_name("label_map")}={path} so that every split uses the '
        f'same class indices (or use another {errors.field_name("output_dir")})')
  writers.write_text(path, text)
  return path


def _stale_shards(output_dir: str, split: str, num_shards: int) -> list[str]:
  if not tf.io.gfile.isdir(output_dir):
    return []
  stale = []
  for name in tf.io.gfile.listdir(output_dir):
    parsed = layout.parse_shard_name(name)
    if (parsed and parsed.prefix == split and parsed.task is None
        and parsed.total != num_shards):
      stale.append(os.path.join(output_dir, name))
  return stale


def _summarize(config: ConvertConfig, fingerprint: dict,
               listing: image_folders.Listing, labeled: bool,
               order_items: Sequence[tuple[str, int | None]],
               shards: dict[str, dict], complete: bool) -> dict:
  """The summary JSON; per-class counts only when `complete`."""
  skipped = sorted(entry for s in shards.values() for entry in s['skipped'])
  written = sum(s['records'] for s in shards.values())
  summary = {
      'complete': complete,
      'config': fingerprint,
      'input_dir': os.path.abspath(config.input_dir),
      'num_files': len(listing.items),
      'num_written': written,
      'num_skipped': len(skipped),
      'num_reencoded': sum(s['reencoded'] for s in shards.values()),
      'num_ignored_files': len(listing.ignored_files),
      'ignored_files': listing.ignored_files[:100],
      'skipped': skipped,
      'shards': shards,
  }
  if labeled and complete:  # O(images): only once, at the end
    skipped_paths = {path for path, _ in skipped}
    labels = [label for path, label in order_items
              if path not in skipped_paths]
    summary['classes'] = {
        'num_classes': len(listing.class_names),
        'empty_classes': listing.empty_classes,
        'class_counts': np.bincount(
            np.asarray(labels, np.int64),
            minlength=len(listing.class_names)).tolist(),
    }
  return summary


def convert(config: ConvertConfig,
            log_fn: Callable[[str], None] = logging.info) -> dict:
  """Converts the images of `config.input_dir`; returns the summary dict.

  The summary (also in `<output_dir>/<split>-summary.json`) has num_files,
  num_written, num_skipped, skipped ([path, reason] pairs), num_reencoded,
  classes (labeled), per-shard results, and 'shards_written'/'shards_kept'
  for this call.

  Raises:
    ConversionError / image_folders.ImageTreeError: naming the flag or file.
  """
  config.validate()
  listing, labeled = _listing(config)
  if not listing.items:
    extensions = ', '.join(sorted(image_folders.IMAGE_EXTENSIONS))
    raise ConversionError(f'{errors.field_name("input_dir")}={config.input_dir}: no image files '
                          f'({extensions})')
  if config.num_shards > len(listing.items):
    raise ConversionError(f'{errors.field_name("num_shards")}={config.num_shards} is more than the '
                          f'{len(listing.items)} images; use fewer shards')
  tf.io.gfile.makedirs(config.output_dir)
  if not labeled and not config.unlabeled:
    log_fn(f'{config.input_dir} has no class folders: writing unlabeled '
           'records')
  if labeled and not config.label_map and not tf.io.gfile.exists(
      os.path.join(config.output_dir, LABELS_FILENAME)):
    path = _write_labels_file(config.output_dir, listing.class_names)
    log_fn(f'classes (sorted folder names) written to {path}')

  items = list(listing.items)
  if config.shuffle:
    order = np.random.RandomState(config.seed).permutation(len(items))
    items = [items[i] for i in order]
  fingerprint = _fingerprint(config, listing, labeled)
  summary_path = os.path.join(config.output_dir, f'{config.split}-summary.json')
  paths = layout.shard_paths(config.output_dir, config.split,
                              config.num_shards)
  bounds = writers.shard_bounds(len(items), config.num_shards)

  if config.overwrite:
    for path in _stale_shards(config.output_dir, config.split,
                              config.num_shards):
      log_fn(f'removing {path} (another shard count)')
      tf.io.gfile.remove(path)
    shards = {}
  else:
    shards = _kept_shards(paths, summary_path, fingerprint)

  todo = [ShardTask(path, items[start:end], labeled, config.reencode,
                    config.image_format, config.jpeg_quality,
                    measure_pixels=config.split == 'train')
          for path, (start, end) in zip(paths, bounds)
          if os.path.basename(path) not in shards]
  kept = config.num_shards - len(todo)
  num_workers = worker_count(config.num_workers, len(todo),
                             sum(len(task.items) for task in todo),
                             config.min_images_per_worker)
  log_fn(f'{config.split}: {len(items):,} images in {config.num_shards} '
         f'shards; {kept} already complete, {len(todo)} to write with '
         f'{num_workers} worker(s)')
  writers.write_json(summary_path, _summarize(
      config, fingerprint, listing, labeled, items, shards, False))

  progress = progress_lib.Progress(config.split, len(items))
  progress.update(sum(end - start for (start, end), p in zip(bounds, paths)
                      if os.path.basename(p) in shards))
  for task, result in _run(todo, num_workers):
    name = os.path.basename(task.path)
    shards[name] = result
    for path, reason in result['skipped']:
      log_fn(f'skipped {path}: {reason}')
    progress.update(len(task.items))
    writers.write_json(summary_path, _summarize(
        config, fingerprint, listing, labeled, items, shards, False))
  progress.finish()

  summary = _summarize(config, fingerprint, listing, labeled, items,
                       dict(sorted(shards.items())), True)
  writers.write_text(
      os.path.join(config.output_dir, f'{config.split}-skipped.txt'),
      ''.join(f'{path}\t{reason}\n' for path, reason in summary['skipped']))
  writers.write_json(summary_path, summary)
  _record_split(config, listing, labeled, summary)
  log_fn(f'{config.split}: {summary["num_written"]:,} images written, '
         f'{summary["num_skipped"]} skipped (listed in '
         f'{config.split}-skipped.txt), {summary["num_reencoded"]:,} '
         're-encoded')
  return dict(summary, shards_written=len(todo), shards_kept=kept)


def _record_split(config: ConvertConfig, listing: image_folders.Listing,
                  labeled: bool, summary: dict) -> dict:
  """Adds this split to `<output_dir>/dataset_info.json`; returns the info."""
  shards = summary['shards'].values()
  stats = dataset_info.PixelStats()
  for shard in shards:
    if 'pixel_stats' in shard:
      stats.merge(dataset_info.PixelStats.from_json(shard['pixel_stats']))
  sizes = [tuple(size) for shard in shards for size in shard.get('sizes', [])]
  class_names = listing.class_names if labeled else None
  entry = dataset_info.split_entry(
      num_examples=summary['num_written'], num_shards=config.num_shards,
      labeled=labeled)
  if labeled:
    entry['label_counts'] = summary['classes']['class_counts']
  return dataset_info.update(
      config.output_dir,
      dataset_info.description(
          name=config.name or os.path.basename(
              os.path.normpath(config.output_dir)),
          num_classes=len(class_names) if class_names else None,
          class_names=class_names, image_size=dataset_info.common_size(sizes),
          pixel_stats=stats if config.split == 'train' else None,
          flip=config.flip),
      {config.split: entry})


def _kept_shards(paths: Sequence[str], summary_path: str,
                 fingerprint: dict) -> dict[str, dict]:
  """{shard name: result} of finished shards a rerun can keep.

  A shard is kept when the previous summary (same fingerprint) lists it and
  its record count matches; other existing shards are rewritten.

  Raises:
    ConversionError: the summary was written for other inputs or settings,
      or shards exist without a summary.
  """
  previous = _read_summary(summary_path)
  existing = [p for p in paths if tf.io.gfile.exists(p)]
  if previous is not None and previous.get('config') != fingerprint:
    raise ConversionError(
        f'{summary_path} was written for other inputs or settings; pass '
        f'{errors.field_name("overwrite")} or use another {errors.field_name("output_dir")}')
  if previous is None and existing:
    raise ConversionError(
        f'{existing[0]} exists but {summary_path} does not, so it cannot be '
        f'checked; pass {errors.field_name("overwrite")} or use another {errors.field_name("output_dir")}')
  kept = {}
  for path in existing:
    entry = (previous or {}).get('shards', {}).get(os.path.basename(path))
    if entry is not None and _count(path) == entry['records']:
      kept[os.path.basename(path)] = entry
  return kept


def _count(path: str) -> int | None:
  try:
    return records.count_records(path)
  except records.RecordError:
    return None


def worker_count(num_workers: int, num_tasks: int, num_images: int,
                 min_images_per_worker: int) -> int:
  """Worker processes worth starting: at most `num_workers`, one per shard
  to write, and `min_images_per_worker` images each (1: in this process)."""
  by_images = num_images // max(min_images_per_worker, 1)
  return max(1, min(num_workers, num_tasks, by_images))


def _run(tasks: list[ShardTask], num_workers: int):
  """Yields (task, result) as shards finish, in worker processes if > 1."""
  if num_workers == 1 or len(tasks) <= 1:
    for task in tasks:
      yield task, write_image_shard(task)
    return
  # 'spawn': the parent has started TensorFlow's threads, which fork() would
  # copy in an unusable state.
  context = multiprocessing.get_context('spawn')
  with concurrent.futures.ProcessPoolExecutor(
      max_workers=min(num_workers, len(tasks)), mp_context=context) as pool:
    futures = {pool.submit(write_image_shard, task): task for task in tasks}
    for future in concurrent.futures.as_completed(futures):
      yield futures[future], future.result()
