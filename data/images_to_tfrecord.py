r"""Image folders -> sharded TFRecords (labeled class folders or unlabeled images).

Labeled (ImageNet-style synset folders):
  python -m data.images_to_tfrecord --input_dir=imagenet/train \
      --output_dir=data/imagenet/proc --split=train --num_shards=1024 \
      --label_map=imagenet_class_index.json --num_workers=8
Unlabeled (any folder tree; class folders ignored):
  python -m data.images_to_tfrecord --input_dir=photos --unlabeled \
      --output_dir=data/imagenet/proc/unlabeled --split=extra --num_shards=128

`--label_map` is either the Keras/PyTorch `imagenet_class_index.json`
(`{"0": ["n01440764", "tench"], ...}`) or a text file with one folder name per
line in class order; without it the sorted folder names are classes 0..K-1 and
`<output_dir>/labels.txt` records them. JPEG and PNG files are stored byte for
byte (unless --reencode); other formats (GIF, BMP, TIFF, grayscale or CMYK
JPEG, ...) are converted to RGB. Files that cannot be decoded are listed in
`<output_dir>/<split>-skipped.txt` and counted; they never stop a run. Every
worker process writes whole shards atomically; existing shards are kept on
rerun unless --overwrite. A summary is written to `<split>-summary.json`.
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import sys
import time
from typing import Optional, Sequence

from absl import app
from absl import flags
from absl import logging
import numpy as np

from data import image_codec
from data import records
from data import writers

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.gif', '.bmp', '.tif', '.tiff',
                    '.webp', '.ppm', '.pgm')


def read_label_map(path: str) -> list[str]:
  """Folder names in class order, from a class-index JSON or a text file."""
  with open(path) as f:
    text = f.read()
  if path.endswith('.json'):
    try:
      mapping = json.loads(text)
      return [mapping[str(i)][0] if isinstance(mapping[str(i)], list)
              else mapping[str(i)] for i in range(len(mapping))]
    except (KeyError, ValueError, TypeError) as err:
      raise ValueError(f'{path}: expected {{"0": ["n01440764", "tench"], ...}} '
                       f'({err})') from err
  names = [line.strip().split()[0] for line in text.splitlines() if line.strip()]
  if not names:
    raise ValueError(f'{path}: empty label map')
  return names


def _is_image(name: str) -> bool:
  return name.lower().endswith(IMAGE_EXTENSIONS)


def list_labeled(input_dir: str, label_map: Optional[Sequence[str]]
                 ) -> tuple[list[tuple[str, int]], list[str]]:
  """[(path, class)] over class folders, and the class names in order."""
  folders = sorted(d for d in os.listdir(input_dir)
                   if os.path.isdir(os.path.join(input_dir, d)))
  if not folders:
    raise ValueError(f'{input_dir}: no class folders (use --unlabeled for a '
                     'flat folder of images)')
  classes = list(label_map) if label_map else folders
  index = {name: i for i, name in enumerate(classes)}
  unknown = [d for d in folders if d not in index]
  if unknown:
    raise ValueError(f'{input_dir}: folders {unknown[:5]} are not in the label '
                     f'map ({len(classes)} classes)')
  items = []
  for folder in folders:
    for root, _, files in os.walk(os.path.join(input_dir, folder)):
      items.extend((os.path.join(root, f), index[folder])
                   for f in sorted(files) if _is_image(f))
  return sorted(items), classes


def list_unlabeled(input_dir: str) -> list[tuple[str, int]]:
  """[(path, -1)] for every image file below `input_dir`."""
  items = []
  for root, _, files in os.walk(input_dir):
    items.extend((os.path.join(root, f), -1) for f in files if _is_image(f))
  if not items:
    raise ValueError(f'{input_dir}: no image files ({", ".join(IMAGE_EXTENSIONS)})')
  return sorted(items)


def _write_shard(task: tuple) -> tuple[str, int, list[str]]:
  """Worker: converts the files of one shard; returns (path, written, skipped)."""
  path, items, unlabeled, reencode, image_format = task
  skipped, recs = [], []
  for file_path, label in items:
    try:
      with open(file_path, 'rb') as f:
        data, _ = image_codec.to_tfrecord_bytes(f.read(), reencode, image_format)
    except (OSError, ValueError) as err:
      skipped.append(f'{file_path}\t{err}')
      continue
    recs.append(records.serialize_unlabeled(data) if unlabeled
                else records.serialize_labeled(data, label))
  written = writers.write_records(path, recs)
  return path, written, skipped


def convert(input_dir: str, output_dir: str, *, split: str = 'train',
            num_shards: int = 128, unlabeled: bool = False,
            label_map_path: Optional[str] = None, num_workers: int = 1,
            seed: int = 0, reencode: bool = False, image_format: str = 'jpeg',
            overwrite: bool = False) -> dict:
  """Converts the folder; returns the summary (also written as JSON)."""
  if unlabeled:
    items, classes = list_unlabeled(input_dir), []
  else:
    label_map = read_label_map(label_map_path) if label_map_path else None
    items, classes = list_labeled(input_dir, label_map)
    if not label_map_path:
      writers.write_text(os.path.join(output_dir, 'labels.txt'),
                         '\n'.join(classes) + '\n')
  order = np.random.default_rng(seed).permutation(len(items))
  items = [items[i] for i in order]
  num_shards = min(num_shards, max(1, len(items)))
  paths = writers.shard_paths(output_dir, split, num_shards)
  tasks = [(path, items[start:end], unlabeled, reencode, image_format)
           for path, (start, end) in zip(paths, writers.shard_bounds(len(items), num_shards))
           if overwrite or not os.path.exists(path)]
  written, skipped, start_time = 0, [], time.time()
  # 'spawn': forking a process that has loaded TensorFlow can deadlock.
  executor = (concurrent.futures.ProcessPoolExecutor(
      num_workers, mp_context=multiprocessing.get_context('spawn'))
              if num_workers > 1 and len(tasks) > 1 else None)
  results = executor.map(_write_shard, tasks) if executor else map(_write_shard, tasks)
  try:
    for done, (_, count, bad) in enumerate(results, start=1):
      written += count
      skipped.extend(bad)
      for line in bad:
        logging.warning('skipped undecodable image %s', line)
      logging.log_every_n_seconds(
          logging.INFO, '%s: %d/%d shards, %d images, %d skipped, %.0f img/s',
          5, split, done, len(tasks), written, len(skipped),
          written / max(time.time() - start_time, 1e-9))
  finally:
    if executor:
      executor.shutdown()
  if skipped:
    writers.write_text(os.path.join(output_dir, f'{split}-skipped.txt'),
                       '\n'.join(skipped) + '\n')
  summary = {'input_dir': os.path.abspath(input_dir), 'split': split,
             'num_shards': num_shards, 'files': len(items),
             'written': written, 'skipped': len(skipped),
             'shards_written': len(tasks), 'num_classes': len(classes),
             'unlabeled': unlabeled}
  writers.write_json(os.path.join(output_dir, f'{split}-summary.json'), summary)
  return summary


FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string('input_dir', None, 'Class folders, or any image tree with --unlabeled.')
  flags.DEFINE_string('output_dir', None, 'Where the shards go.')
  flags.DEFINE_string('split', 'train', 'File prefix of the shards (train, validation, extra, ...).')
  flags.DEFINE_integer('num_shards', 128, 'Number of shards.')
  flags.DEFINE_bool('unlabeled', False, 'Write unlabeled records (no class folders needed).')
  flags.DEFINE_string('label_map', None, 'imagenet_class_index.json or one folder name per line.')
  flags.DEFINE_integer('num_workers', os.cpu_count() or 1, 'Processes converting shards.')
  flags.DEFINE_integer('seed', 0, 'Shuffle seed of the file order.')
  flags.DEFINE_bool('reencode', False, 'Re-encode JPEG/PNG files too.')
  flags.DEFINE_enum('image_format', 'jpeg', list(image_codec.FORMATS),
                    'Format for converted (or re-encoded) images.')
  flags.DEFINE_bool('overwrite', False, 'Rewrite existing shards.')
  flags.mark_flags_as_required(['input_dir', 'output_dir'])


def main(argv):
  del argv
  try:
    summary = convert(FLAGS.input_dir, FLAGS.output_dir, split=FLAGS.split,
                      num_shards=FLAGS.num_shards, unlabeled=FLAGS.unlabeled,
                      label_map_path=FLAGS.label_map,
                      num_workers=FLAGS.num_workers, seed=FLAGS.seed,
                      reencode=FLAGS.reencode,
                      image_format=FLAGS.image_format, overwrite=FLAGS.overwrite)
  except (ValueError, OSError) as err:
    print(f'error: {err}', file=sys.stderr)
    sys.exit(1)
  print(json.dumps(summary, indent=2))


if __name__ == '__main__':
  define_flags()
  logging.set_verbosity(logging.INFO)
  app.run(main)
