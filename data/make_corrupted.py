r"""Writes an ImageNet-C-style corrupted copy of any labeled TFRecord eval set.

    python -m data.make_corrupted --input_pattern='/data/digits/test-*' \
        --output_dir=/data/digits-c --split=test

Every image of `--input_pattern` (labeled schema, `data/records.py`) is
corrupted with each of the 15 ImageNet-C corruptions + the 4 extra ones
(`--corruptions` selects a subset) at severities 1-5 (`--severities`), using
the maintained `imagecorruptions` fork, and written as

* `--output_format=tfrecord` (default): `<out>/<corruption>/<severity>/
  <split>-0000i-of-0000n`, labeled schema, so `eval_robustness
  --benchmark=corrupted` (or `evaluate_corrupted`) scores it; or
* `--output_format=folder`: the ImageNet-C layout `<out>/<corruption>/
  <severity>/<class>/<split>_<index>.png` (class folder names from
  `--label_map`, default the integer label).

Each image's randomness is seeded by (--seed, corruption, severity, index), so
reruns give identical bytes; finished outputs are skipped (idempotent), files
appear atomically, and `<out>/corrupted_info.json` records what was made.
"""

from __future__ import annotations

import concurrent.futures
from importlib import metadata
import itertools
import json
import multiprocessing
import os
from typing import Sequence

from absl import flags
from absl import logging
# First: the binaries' entry filters TensorFlow's start-up banner.
from noisy_student.runtime import entry
import tensorflow as tf

from data import layout
from data import corruptions as corruptions_lib
from data import dataset_info
from noisy_student.runtime import errors
from data import label_maps
from noisy_student.runtime import progress as progress_lib
from data import records
from data import writers

INFO_FILE = 'corrupted_info.json'
OUTPUT_FORMATS = ('tfrecord', 'folder')
IMAGE_FORMATS = ('png', 'jpeg')
_CHUNK = 64  # images per worker task
# Settings that must match an existing corrupted_info.json to add to it.
_FIXED_KEYS = ('source_file_pattern', 'split', 'num_images', 'seed',
               'output_format', 'image_format', 'num_shards', 'label_map')


def read_source(file_pattern: str, max_images: int | None = None
                ) -> tuple[list[bytes], list[int], list[str]]:
  """Encoded images, 0-based labels and 'file record i' origins, in order.

  Raises:
    FileNotFoundError naming the pattern when nothing matches; ValueError
    naming the file and record of a record without a label.
  """
  files = layout.glob_user_records(file_pattern)
  if not files:
    raise errors.MissingFileError(
        f'{errors.field_name("input_pattern")} {file_pattern!r}: no files '
        'match')
  images, labels, sources = [], [], []
  for path in files:
    for i, serialized in enumerate(tf.data.TFRecordDataset(path)
                                   .as_numpy_iterator()):
      if max_images is not None and len(images) >= max_images:
        return images, labels, sources
      example = records.read_example(serialized)
      if records.LABEL_KEY not in example or records.IMAGE_KEY not in example:
        raise records.RecordError(f'{path} record {i}: not a labeled example (needs '
                         f'{records.IMAGE_KEY} and {records.LABEL_KEY})')
      images.append(example[records.IMAGE_KEY])
      labels.append(int(example[records.LABEL_KEY][0]) - 1)
      sources.append(f'{path} record {i}')
  return images, labels, sources


def _folder_paths(directory: str, labels: Sequence[int], split: str,
                  label_map: label_maps.LabelMap, image_format: str
                  ) -> list[str]:
  extension = 'png' if image_format == 'png' else 'jpg'
  return [os.path.join(directory, label_map.name(label),
                       f'{split}_{i:06d}.{extension}')
          for i, label in enumerate(labels)]


def _check_info(info_path: str, settings: dict) -> dict | None:
  """The existing info (or None); ValueError if its fixed settings differ."""
  if not tf.io.gfile.exists(info_path):
    return None
  with tf.io.gfile.GFile(info_path) as f:
    existing = json.load(f)
  differing = [k for k in _FIXED_KEYS if existing.get(k) != settings.get(k)]
  if differing:
    details = ', '.join(f'{k}: {existing.get(k)!r} -> {settings.get(k)!r}'
                        for k in differing)
    raise errors.ConfigError(
        f'{info_path}: this output was made with other settings ({details}); '
        f'use another {errors.field_name("output_dir")} or '
        f'{errors.field_name("overwrite")}')
  return existing


def make_corrupted(file_pattern: str, output_dir: str, *, split: str = 'test',
                   corruptions: Sequence[str] = (
                       corruptions_lib.CORRUPTION_NAMES),
                   severities: Sequence[int] = corruptions_lib.SEVERITIES,
                   output_format: str = 'tfrecord', num_shards: int = 1,
                   max_images: int | None = None, seed: int = 0,
                   num_workers: int = 1, image_format: str = 'png',
                   label_map: str | None = 'numeric',
                   overwrite: bool = False) -> dict:
  """Writes corrupted copies of a labeled TFRecord set; returns the info dict.

  Args:
    file_pattern: glob of the clean labeled TFRecords (e.g. `<dir>/test-*`).
    output_dir: root of the corrupted copy.
    split: file-name prefix of the output shards / images.
    corruptions: names from `data.corruptions.CORRUPTION_NAMES`.
    severities: subset of 1..5.
    output_format: 'tfrecord' or 'folder' (ImageNet-C layout).
    num_shards: TFRecord shards per (corruption, severity).
    max_images: use only the first N images (in file order).
    seed: run seed; each image's seed derives from it (see `image_seed`).
    num_workers: processes corrupting in parallel (1 = in this process).
    image_format: 'png' (lossless, default) or 'jpeg' (quality 95).
    label_map: class folder names for 'folder' output (`data.label_maps`).
    overwrite: recompute outputs that already exist.

  Returns:
    The dict also written to `<output_dir>/corrupted_info.json`.
  """
  corruptions, severities = list(corruptions), [int(s) for s in severities]
  corruptions_lib.check_corruptions(corruptions, severities)
  if output_format not in OUTPUT_FORMATS:
    raise errors.ConfigError(f'output_format must be one of {OUTPUT_FORMATS}, '
                     f'received: {output_format!r}')
  if num_shards < 1 or num_workers < 1:
    raise errors.ConfigError(f'num_shards and num_workers must be >= 1, received: '
                     f'{num_shards}, {num_workers}')
  if image_format not in IMAGE_FORMATS:
    raise errors.ConfigError(f'image_format must be one of {IMAGE_FORMATS}, '
                     f'received: {image_format!r}')
  images, labels, sources = read_source(file_pattern, max_images)
  label_map_obj = label_maps.load_label_map(label_map)
  settings = {
      'source_file_pattern': file_pattern, 'split': split,
      'num_images': len(images), 'seed': seed, 'output_format': output_format,
      'image_format': image_format,
      'num_shards': num_shards if output_format == 'tfrecord' else None,
      'label_map': label_map if output_format == 'folder' else None,
  }
  info_path = os.path.join(output_dir, INFO_FILE)
  existing = None if overwrite else _check_info(info_path, settings)

  todo = []
  for corruption, severity in itertools.product(corruptions, severities):
    directory = os.path.join(output_dir, corruption, str(severity))
    if output_format == 'tfrecord':
      targets = layout.shard_paths(directory, split, num_shards)
    else:
      targets = _folder_paths(directory, labels, split, label_map_obj,
                              image_format)
    if overwrite or not all(tf.io.gfile.exists(t) for t in targets):
      todo.append((corruption, severity, directory, targets))

  progress = progress_lib.Progress('make_corrupted',
                                   len(todo) * len(images))
  context = multiprocessing.get_context('spawn')
  executor = (concurrent.futures.ProcessPoolExecutor(
      num_workers, mp_context=context,
      initializer=corruptions_lib.limit_threads)
              if num_workers > 1 and todo else None)
  try:
    for corruption, severity, directory, targets in todo:
      chunks = [range(i, min(i + _CHUNK, len(images)))
                for i in range(0, len(images), _CHUNK)]
      args = [([images[i] for i in c], list(c), [sources[i] for i in c],
               corruption, severity, seed, image_format) for c in chunks]
      if executor is None:
        results = (corruptions_lib.corrupt_encoded(*a) for a in args)
      else:
        results = executor.map(corruptions_lib.corrupt_encoded,
                               *zip(*args))
      encoded = []
      for chunk_result in results:
        encoded += chunk_result
        progress.update(len(chunk_result), f'{corruption} {severity}')
      if output_format == 'tfrecord':
        serialized = [records.serialize_labeled(e, l)
                      for e, l in zip(encoded, labels)]
        writers.write_sharded(serialized, directory, split, num_shards,
                              overwrite=True)
      else:
        for path, data in zip(targets, encoded):
          with writers.atomic_output(path) as f:
            f.write(data)
  finally:
    if executor is not None:
      executor.shutdown()
  seconds = progress.finish()

  done = set(existing['corruptions']) if existing else set()
  done |= set(corruptions)
  done_severities = set(existing['severities']) if existing else set()
  done_severities |= set(severities)
  info = dict(settings)
  info.update({
      'corruptions': [c for c in corruptions_lib.CORRUPTION_NAMES
                      if c in done],
      'severities': sorted(done_severities),
      'source_files': layout.glob_user_records(file_pattern),
      'imagecorruptions_version': metadata.version('imagecorruptions-imaug'),
      'computed': [f'{c}/{s}' for c, s, _, _ in todo],
      'seconds': round(seconds, 2),
  })
  writers.write_json(info_path, info)
  if output_format == 'tfrecord':
    _describe(output_dir, file_pattern, split, num_shards, len(images),
              info['corruptions'], info['severities'])
  return info


def _describe(output_dir: str, file_pattern: str, split: str, num_shards: int,
              num_images: int, corruptions: Sequence[str],
              severities: Sequence[int]) -> dict:
  """dataset_info.json of the copy: the source's classes, one split per pair."""
  source = dataset_info.find(os.path.dirname(file_pattern), with_classes=True)
  described = source[1] if source else {}
  description = dataset_info.description(
      name=f'{described.get("name") or "dataset"}-c',
      num_classes=described.get('num_classes'),
      class_names=described.get('class_names'),
      image_size=described.get('image_size'), flip=described.get('flip', True))
  splits = {f'{c}/{s}/{split}': dataset_info.split_entry(
      num_examples=num_images, num_shards=num_shards, labeled=True,
      directory=f'{c}/{s}', split=split)
            for c in corruptions for s in severities}
  return dataset_info.update(output_dir, description, splits)


# ---------------------------------------------------------------------------
# Binary.
# ---------------------------------------------------------------------------
FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  """Defines the binary's flags (called only when run as a binary)."""
  flags.DEFINE_string('input_pattern', None, 'Glob of the clean labeled '
                      'TFRecords, e.g. "/data/svhn/test-*".', required=True, flag_values=fv)
  flags.DEFINE_string('output_dir', None, 'Root of the corrupted copy.',
                      required=True, flag_values=fv)
  flags.DEFINE_string('split', 'test',
                      'File-name prefix of the written shards / images.', flag_values=fv)
  flags.DEFINE_list('corruptions', list(corruptions_lib.CORRUPTION_NAMES),
                    'Corruptions to write (default: the 15 ImageNet-C ones '
                    '+ the 4 extra).', flag_values=fv)
  flags.DEFINE_list('severities', ['1', '2', '3', '4', '5'],
                    'Severities (1-5) to write.', flag_values=fv)
  flags.DEFINE_enum('output_format', 'tfrecord', OUTPUT_FORMATS,
                    'tfrecord (labeled schema) or folder (ImageNet-C layout '
                    'of image files).', flag_values=fv)
  flags.DEFINE_integer('num_shards', 1,
                       'TFRecord shards per corruption and severity.', flag_values=fv)
  flags.DEFINE_integer('max_images', None,
                       'Use only the first N images (bounds demo time).', flag_values=fv)
  flags.DEFINE_integer('seed', 0, 'Seed of the corruption randomness.', flag_values=fv)
  flags.DEFINE_integer('num_workers', 1, 'Processes corrupting in parallel.', flag_values=fv)
  flags.DEFINE_enum('image_format', 'png', list(IMAGE_FORMATS),
                    'Encoding of the corrupted images.', flag_values=fv)
  flags.DEFINE_string('label_map', 'numeric', 'Class folder names for '
                      '--output_format=folder: "numeric" (the label), '
                      '"imagenet" (wnids) or a .txt / .json file.', flag_values=fv)
  flags.DEFINE_bool('overwrite', False, 'Recompute outputs that exist.', flag_values=fv)


def main(argv: Sequence[str]) -> None:
  del argv
  try:
    severities = [int(s) for s in FLAGS.severities]
  except ValueError as err:
    raise errors.ConfigError(f'--severities must be integers 1-5, received: '
                         f'{FLAGS.severities}') from err
  info = make_corrupted(
      FLAGS.input_pattern, FLAGS.output_dir, split=FLAGS.split,
      corruptions=FLAGS.corruptions, severities=severities,
      output_format=FLAGS.output_format, num_shards=FLAGS.num_shards,
      max_images=FLAGS.max_images, seed=FLAGS.seed,
      num_workers=FLAGS.num_workers, image_format=FLAGS.image_format,
      label_map=FLAGS.label_map, overwrite=FLAGS.overwrite)
  logging.info('%d images x %d corruption/severity pairs computed, %s',
               info['num_images'], len(info['computed']),
               os.path.join(FLAGS.output_dir, INFO_FILE))


def run():
  entry.run('make_corrupted', main, define_flags)


if __name__ == '__main__':
  run()
