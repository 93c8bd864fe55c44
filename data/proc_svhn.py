r"""SVHN (cropped digits, format 2) -> TFRecords, as the original proc_svhn.py.

  python -m data.proc_svhn --raw_data_dir=data/svhn/raw --output_dir=data/svhn/proc

Reads `train_32x32.mat`, `test_32x32.mat` and `extra_32x32.mat` from
`--raw_data_dir` (keys `X` uint8 [32, 32, 3, N], `y` [N, 1] with 10 meaning
digit 0), or TensorFlow Datasets' `svhn_cropped` when no directory is given.
With the default seed the train split is shuffled and its first 4,000 images
become `dev`, leaving 69,257 for `train`; `test` has 26,032 and `extra`
(531,131, shuffled) is written as the unlabeled set. Labels: .mat 10 -> class
0, d -> class d (stored 1-based in the files, as every labeled shard).

Output:
  <output_dir>/train-00000-of-00128 ... (128 shards), dev-…-of-00064,
  test-…-of-00064, <output_dir>/unlabeled/extra-…-of-00128,
  <output_dir>/dataset_info.json.
Existing complete shards are kept (idempotent reruns) unless --overwrite.
"""

from __future__ import annotations

import os
import sys
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np

from data import image_codec
from data import records
from data import writers

MAT_FILES = {'train': 'train_32x32.mat', 'test': 'test_32x32.mat',
             'extra': 'extra_32x32.mat'}


class SvhnFormatError(ValueError):
  """A .mat file is missing or not in the SVHN format-2 layout; names it."""


def load_mat(path: str) -> tuple[np.ndarray, np.ndarray]:
  """(images uint8 [N, 32, 32, 3], labels int64 [N] in 0..9) from one .mat file."""
  import scipy.io  # pylint: disable=g-import-not-at-top
  if not os.path.exists(path):
    raise SvhnFormatError(f'{path}: file not found')
  try:
    contents = scipy.io.loadmat(path)
  except Exception as err:  # scipy raises several types for bad files.
    raise SvhnFormatError(f'{path}: not a readable .mat file ({err})') from err
  keys = sorted(k for k in contents if not k.startswith('__'))
  if 'X' not in contents or 'y' not in contents:
    raise SvhnFormatError(f'{path}: expected keys X and y, found {keys}')
  images, labels = contents['X'], contents['y']
  if images.ndim != 4 or images.shape[:3] != (32, 32, 3):
    raise SvhnFormatError(f'{path}: X must have shape (32, 32, 3, N), found '
                          f'{images.shape}')
  if images.dtype != np.uint8:
    raise SvhnFormatError(f'{path}: X must be uint8, found {images.dtype}')
  labels = np.asarray(labels).reshape(-1)
  if labels.shape[0] != images.shape[3]:
    raise SvhnFormatError(f'{path}: {images.shape[3]} images but '
                          f'{labels.shape[0]} labels in y')
  if labels.size and (labels.min() < 1 or labels.max() > 10 or
                      np.any(labels != np.round(labels))):
    raise SvhnFormatError(f'{path}: labels must be integers in 1..10, found '
                          f'{labels.min()}..{labels.max()}')
  labels = labels.astype(np.int64) % 10  # 10 means digit 0
  return np.transpose(images, (3, 0, 1, 2)), labels


def load_tfds(split: str) -> tuple[np.ndarray, np.ndarray]:
  """The same arrays from TensorFlow Datasets' svhn_cropped (needs network)."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as err:
    raise SvhnFormatError(
        'No --raw_data_dir given and tensorflow_datasets is not installed: '
        'either download train/test/extra_32x32.mat from '
        'http://ufldl.stanford.edu/housenumbers/ into a folder and pass '
        '--raw_data_dir, or `pip install tensorflow-datasets` (it downloads '
        'svhn_cropped, so it needs network access)') from err
  data = tfds.as_numpy(tfds.load('svhn_cropped', split=split, batch_size=-1))
  return data['image'].astype(np.uint8), data['label'].astype(np.int64)


def split_data(arrays: dict, dev_size: int, seed: int) -> dict:
  """Shuffles train (and extra) with `seed` and holds out `dev_size` for dev."""
  rng = np.random.RandomState(seed)
  out = {}
  train_images, train_labels = arrays['train']
  perm = rng.permutation(len(train_images))
  train_images, train_labels = train_images[perm], train_labels[perm]
  if dev_size >= len(train_images):
    raise ValueError(f'--dev_size={dev_size} leaves no training images '
                     f'(train has {len(train_images)})')
  out['dev'] = (train_images[:dev_size], train_labels[:dev_size])
  out['train'] = (train_images[dev_size:], train_labels[dev_size:])
  out['test'] = arrays['test']
  if 'extra' in arrays:
    images, labels = arrays['extra']
    perm = rng.permutation(len(images))
    out['extra'] = (images[perm], labels[perm])
  return out


def write_split(name: str, images: np.ndarray, labels: np.ndarray,
                output_dir: str, num_shards: int, image_format: str,
                overwrite: bool) -> list[str]:
  """Encodes and writes one split shard by shard, with a progress line."""
  unlabeled = name == 'extra'
  directory = os.path.join(output_dir, 'unlabeled') if unlabeled else output_dir
  paths = writers.shard_paths(directory, name, num_shards)
  bounds = writers.shard_bounds(len(images), num_shards)
  start_time = time.time()
  for i, (path, (start, end)) in enumerate(zip(paths, bounds)):
    if not overwrite and os.path.exists(path):
      continue
    recs = []
    for image, label in zip(images[start:end], labels[start:end]):
      encoded = image_codec.encode(image, image_format)
      recs.append(records.serialize_unlabeled(encoded, int(label)) if unlabeled
                  else records.serialize_labeled(encoded, int(label)))
    writers.write_records(path, recs)
    done = end
    rate = done / max(time.time() - start_time, 1e-9)
    logging.log_every_n_seconds(
        logging.INFO, '%s: shard %d/%d, %d/%d images, %.0f img/s', 5, name,
        i + 1, num_shards, done, len(images), rate)
  return paths


def prepare(raw_data_dir: str | None, output_dir: str, *, seed: int = 0,
            dev_size: int = 4000, image_format: str = 'png',
            train_shards: int = 128, eval_shards: int = 64,
            extra_shards: int = 128, include_extra: bool = True,
            overwrite: bool = False) -> dict:
  """Reads the raw data, splits it and writes every split; returns counts."""
  splits = ['train', 'test'] + (['extra'] if include_extra else [])
  arrays = {}
  for split in splits:
    if raw_data_dir:
      arrays[split] = load_mat(os.path.join(raw_data_dir, MAT_FILES[split]))
    else:
      arrays[split] = load_tfds(split)
    logging.info('%s: %d images', split, len(arrays[split][0]))
  data = split_data(arrays, dev_size, seed)
  shards = {'train': train_shards, 'dev': eval_shards, 'test': eval_shards,
            'extra': extra_shards}
  for name, (images, labels) in data.items():
    write_split(name, images, labels, output_dir, shards[name], image_format,
                overwrite)
  counts = {name: int(len(images)) for name, (images, _) in data.items()}
  writers.write_json(os.path.join(output_dir, 'dataset_info.json'), {
      'source': os.path.abspath(raw_data_dir) if raw_data_dir else 'tfds:svhn_cropped',
      'seed': seed, 'dev_size': dev_size, 'counts': counts,
      'image_format': image_format, 'shards': {k: shards[k] for k in counts},
      'label_mapping': '.mat label 10 -> class 0; file label = class + 1'})
  return counts


FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string('raw_data_dir', None,
                      'Folder with train/test/extra_32x32.mat; empty: TFDS.')
  flags.DEFINE_string('output_dir', None, 'Where the TFRecords go.')
  flags.DEFINE_integer('seed', 0, 'Shuffle seed (the original used 0).')
  flags.DEFINE_integer('dev_size', 4000, 'Images of train held out as dev.')
  flags.DEFINE_enum('image_format', 'png', list(image_codec.FORMATS),
                    'png (lossless) or jpeg (quality 100, as the original).')
  flags.DEFINE_integer('train_shards', 128, 'Shards of train.')
  flags.DEFINE_integer('eval_shards', 64, 'Shards of dev and of test.')
  flags.DEFINE_integer('extra_shards', 128, 'Shards of the unlabeled extra set.')
  flags.DEFINE_bool('include_extra', True, 'Also convert extra_32x32.mat.')
  flags.DEFINE_bool('overwrite', False, 'Rewrite existing shards.')
  flags.mark_flag_as_required('output_dir')


def main(argv):
  del argv
  try:
    counts = prepare(FLAGS.raw_data_dir, FLAGS.output_dir, seed=FLAGS.seed,
                     dev_size=FLAGS.dev_size, image_format=FLAGS.image_format,
                     train_shards=FLAGS.train_shards,
                     eval_shards=FLAGS.eval_shards,
                     extra_shards=FLAGS.extra_shards,
                     include_extra=FLAGS.include_extra,
                     overwrite=FLAGS.overwrite)
  except (SvhnFormatError, ValueError) as err:
    print(f'error: {err}', file=sys.stderr)
    sys.exit(1)
  print(f'SVHN written to {FLAGS.output_dir}: {counts}')


if __name__ == '__main__':
  define_flags()
  logging.set_verbosity(logging.INFO)
  app.run(main)
