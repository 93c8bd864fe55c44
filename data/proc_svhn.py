r"""SVHN (cropped digits, format 2) -> TFRecord shards, as the original release.

    python -m data.proc_svhn --raw_data_dir=data/svhn/raw \
        --output_dir=data/svhn/proc

reads `train_32x32.mat`, `test_32x32.mat` and `extra_32x32.mat` from
http://ufldl.stanford.edu/housenumbers/ (or, without --raw_data_dir, the
TensorFlow Datasets `svhn_cropped` set, which needs `pip install
tensorflow-datasets` and network access) and writes

    <output_dir>/train-00000-of-00128 ...        69,257 labeled
    <output_dir>/dev-00000-of-00064 ...           4,000 labeled (held out of train)
    <output_dir>/test-00000-of-00064 ...         26,032 labeled
    <output_dir>/unlabeled/extra-00000-of-00128 531,131 unlabeled (true label kept)
    <output_dir>/dataset_info.json

Like the original proc_svhn.py: `np.random.RandomState(seed)` permutes train
and then extra (the same stream, so seed 0 gives the original's dev split from
the .mat files), the first `--dev_size` shuffled train images become `dev`,
test is not shuffled, and `.mat` label 10 is the digit 0 (class 0, file label
1). Images are PNG by default (lossless); `--image_format=jpeg` writes JPEG
at `--jpeg_quality` (the original: 100).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable

from absl import flags
from absl import logging
import numpy as np

# First: the binaries' entry filters TensorFlow's start-up banner.
from noisy_student.runtime import entry
from data import layout
from data import array_writer
from noisy_student.runtime import errors
from data import image_codec

MAT_FILENAMES = {'train': 'train_32x32.mat', 'test': 'test_32x32.mat',
                 'extra': 'extra_32x32.mat'}
DOWNLOAD_URL = 'http://ufldl.stanford.edu/housenumbers/'
# Sizes of the real files; the original asserted train = 73,257 - 4,000.
SVHN_SIZES = {'train': 73257, 'test': 26032, 'extra': 531131}
NUM_CLASSES = 10
IMAGE_SHAPE = (32, 32, 3)


class SvhnDataError(errors.NoisyStudentError):
  """A source file or the sources as a whole are not usable; names the file."""


# --------------------------------------------------------------------------
# Reading the sources.
# --------------------------------------------------------------------------
def mat_labels_to_classes(y: np.ndarray, source: str) -> np.ndarray:
  """SVHN `.mat` labels 1..10 -> 0-based classes (10 is the digit 0).

  Args:
    y: numeric [N] or [N, 1]; integer-valued, in 1..10.
    source: file named in errors.

  Returns:
    int64 [N] classes in 0..9 (class d is the digit d).
  """
  y = np.asarray(y).reshape(-1)
  if not (np.issubdtype(y.dtype, np.integer) or
          np.issubdtype(y.dtype, np.floating)):
    raise SvhnDataError(f'{source}: y must be numeric, found dtype {y.dtype}')
  bad = ~np.isin(y, np.arange(1, 11))
  if np.any(bad):
    first = int(np.argmax(bad))
    raise SvhnDataError(
        f'{source}: labels must be integers in 1..10 (10 = digit 0); '
        f'{int(bad.sum())} of {len(y)} are not, e.g. y[{first}] = '
        f'{y[first].item()!r}')
  labels = y.astype(np.int64)
  return np.where(labels == 10, 0, labels)


def load_mat(path: str) -> tuple[np.ndarray, np.ndarray]:
  """Reads one SVHN format-2 file.

  Returns:
    images: uint8 [N, 32, 32, 3] RGB (a view of the file's X (32, 32, 3, N)).
    classes: int64 [N] in 0..9.

  Raises:
    SvhnDataError: naming `path` when the file is missing or unreadable, or
      `X`/`y` are absent or of the wrong shape, dtype or values.
  """
  import scipy.io  # pylint: disable=g-import-not-at-top

  if not os.path.isfile(path):
    raise SvhnDataError(
        f'{path}: file not found; download {os.path.basename(path)} from '
        f'{DOWNLOAD_URL} into --raw_data_dir')
  try:
    contents = scipy.io.loadmat(path)
  except Exception as err:  # scipy raises ValueError, OSError, zlib.error...
    raise SvhnDataError(
        f'{path}: cannot read it as a MATLAB 5 .mat file '
        f'({type(err).__name__}: {err})') from err
  found = sorted(k for k in contents if not k.startswith('__'))
  for key in ('X', 'y'):
    if key not in contents:
      raise SvhnDataError(
          f'{path}: no variable {key!r} (found {found}); SVHN format 2 files '
          'hold X uint8 (32, 32, 3, N) and y (N, 1)')
  x, y = contents['X'], contents['y']
  if x.ndim != 4 or tuple(x.shape[:3]) != IMAGE_SHAPE:
    raise SvhnDataError(f'{path}: X has shape {x.shape}, expected '
                        '(32, 32, 3, N)')
  if x.dtype != np.uint8:
    raise SvhnDataError(f'{path}: X has dtype {x.dtype}, expected uint8')
  n = x.shape[3]
  if y.size != n or (y.ndim == 2 and 1 not in y.shape) or y.ndim > 2:
    raise SvhnDataError(f'{path}: y has shape {y.shape}, expected ({n}, 1) '
                        f'to match X {x.shape}')
  return np.transpose(x, (3, 0, 1, 2)), mat_labels_to_classes(y, path)


def load_tfds(split: str, data_dir: str | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
  """Reads TensorFlow Datasets `svhn_cropped` (labels already 0..9)."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as err:
    raise SvhnDataError(
        'no --raw_data_dir given and tensorflow_datasets is not installed. '
        f'Either download {", ".join(MAT_FILENAMES.values())} from '
        f'{DOWNLOAD_URL} and pass --raw_data_dir=<that folder>, or run '
        '`pip install tensorflow-datasets` (it downloads svhn_cropped, '
        'about 1.3 GB, so it needs network access)') from err
  try:
    examples = list(tfds.load('svhn_cropped', split=split, as_supervised=True,
                              data_dir=data_dir).as_numpy_iterator())
    images = np.stack([image for image, _ in examples]) if examples else (
        np.zeros((0,) + IMAGE_SHAPE, np.uint8))
    labels = np.asarray([label for _, label in examples], np.int64)
  except Exception as err:
    raise SvhnDataError(
        f'TensorFlow Datasets could not load svhn_cropped/{split} '
        f'(data_dir={data_dir}); the first run downloads it and needs network '
        f'access: {type(err).__name__}: {err}') from err
  source = f'tfds:svhn_cropped/{split}'
  if images.dtype != np.uint8 or tuple(images.shape[1:]) != IMAGE_SHAPE:
    raise SvhnDataError(f'{source}: images are {images.dtype} {images.shape}, '
                        'expected uint8 (N, 32, 32, 3)')
  labels = np.asarray(labels, np.int64).reshape(-1)
  if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
    raise SvhnDataError(f'{source}: labels outside 0..9')
  return images, labels


# --------------------------------------------------------------------------
# Splitting.
# --------------------------------------------------------------------------
def shuffled_orders(num_train: int, num_extra: int | None, seed: int
                    ) -> tuple[np.ndarray, np.ndarray | None]:
  """The original's permutations: RandomState(seed) shuffles train, then extra.

  Returns int64 [num_train] and int64 [num_extra] (None without extra).
  """
  rng = np.random.RandomState(seed)
  train_order = np.arange(num_train)
  rng.shuffle(train_order)
  if num_extra is None:
    return train_order, None
  extra_order = np.arange(num_extra)
  rng.shuffle(extra_order)
  return train_order, extra_order


@dataclasses.dataclass(frozen=True)
class SvhnConfig:
  """What proc_svhn does; built from the flags in main().

  Attributes:
    output_dir: destination folder.
    raw_data_dir: folder with the three .mat files; None reads TFDS.
    tfds_data_dir: TensorFlow Datasets data_dir (TFDS source only).
    seed: shuffle seed (the original: 0).
    dev_size: train images held out as `dev` (0: no dev split).
    image_format: 'png' or 'jpeg'.
    jpeg_quality: JPEG quality in [1, 100].
    train_shards / eval_shards / extra_shards: shard counts of train, of dev
      and test, and of the unlabeled extra set.
    include_extra: also convert the extra set.
    overwrite: rewrite existing outputs.
  """
  output_dir: str
  raw_data_dir: str | None = None
  tfds_data_dir: str | None = None
  seed: int = 0
  dev_size: int = 4000
  image_format: str = 'png'
  jpeg_quality: int = image_codec.DEFAULT_JPEG_QUALITY
  train_shards: int = 128
  eval_shards: int = 64
  extra_shards: int = 128
  include_extra: bool = True
  overwrite: bool = False

  @property
  def sources(self) -> tuple[str, ...]:
    if self.include_extra:
      return ('train', 'test', 'extra')
    return ('train', 'test')

  def num_shards(self) -> dict[str, int]:
    shards = {'train': self.train_shards, 'test': self.eval_shards}
    if self.dev_size:
      shards['dev'] = self.eval_shards
    if self.include_extra:
      shards['extra'] = self.extra_shards
    return shards

  def validate(self) -> None:
    if not self.output_dir:
      raise SvhnDataError('--output_dir is required')
    if self.dev_size < 0:
      raise SvhnDataError(f'--dev_size must be >= 0, received: {self.dev_size}')
    for name in ('train_shards', 'eval_shards', 'extra_shards'):
      if getattr(self, name) <= 0:
        raise SvhnDataError(f'--{name} must be positive, received: '
                            f'{getattr(self, name)}')
    image_codec.check_format(self.image_format)


def mat_paths(config: SvhnConfig) -> dict[str, str]:
  return {split: os.path.join(config.raw_data_dir, MAT_FILENAMES[split])
          for split in config.sources}


def output_config(config: SvhnConfig) -> dict:
  """Everything that determines the output, compared on reruns."""
  if config.raw_data_dir:
    sources = {}
    for split, path in mat_paths(config).items():
      size = os.path.getsize(path) if os.path.isfile(path) else None
      sources[split] = {'file': os.path.basename(path), 'bytes': size}
  else:
    sources = {split: {'tfds': f'svhn_cropped/{split}'}
               for split in config.sources}
  image_format = image_codec.check_format(config.image_format)
  return {
      'dataset': 'svhn',
      'sources': sources,
      'seed': config.seed,
      'dev_size': config.dev_size,
      'image_format': image_format,
      'jpeg_quality': config.jpeg_quality if image_format == 'jpeg' else None,
      'num_shards': config.num_shards(),
  }


def build_splits(config: SvhnConfig, data: dict[str, tuple[np.ndarray,
                                                            np.ndarray]]
                 ) -> list[array_writer.ArraySplit]:
  """The train/dev/test/extra splits (in memory order) of loaded `data`."""
  train_images, train_labels = data['train']
  num_train = len(train_images)
  if config.dev_size >= num_train:
    raise SvhnDataError(f'--dev_size={config.dev_size} leaves no training '
                        f'images: train has {num_train}')
  extra = data.get('extra')
  train_order, extra_order = shuffled_orders(
      num_train, None if extra is None else len(extra[0]), config.seed)
  splits = [
      array_writer.ArraySplit('train', train_images, train_labels,
                              train_order[config.dev_size:], True,
                              config.train_shards)]
  if config.dev_size:
    splits.append(array_writer.ArraySplit(
        'dev', train_images, train_labels, train_order[:config.dev_size], True,
        config.eval_shards))
  test_images, test_labels = data['test']
  splits.append(array_writer.ArraySplit('test', test_images, test_labels, None,
                                        True, config.eval_shards))
  if extra is not None:
    splits.append(array_writer.ArraySplit(
        'extra', extra[0], extra[1], extra_order, False, config.extra_shards,
        subdir=layout.UNLABELED_SUBDIR))
  flag = {'train': 'train_shards', 'dev': 'eval_shards', 'test': 'eval_shards',
          'extra': 'extra_shards'}
  for split in splits:
    if split.num_shards > split.num_examples:
      raise SvhnDataError(
          f'--{flag[split.name]}={split.num_shards} is more than the '
          f'{split.num_examples} {split.name} images; use fewer shards')
  return splits


def prepare_svhn(config: SvhnConfig,
                 log_fn: Callable[[str], None] = logging.info) -> dict:
  """Converts SVHN as configured; returns the `dataset_info.json` contents.

  The returned dict also has 'shards_written' and 'shards_kept'. A rerun with
  the same configuration on complete outputs returns at once without reading
  the sources.
  """
  config.validate()
  expected = output_config(config)
  if not config.overwrite:
    info = array_writer.complete_info(config.output_dir, expected)
    if info is not None:
      total = sum(s['num_shards'] for s in info['splits'].values())
      log_fn(f'{config.output_dir}: all {total} shards already complete')
      return dict(info, shards_written=0, shards_kept=total)
  data = {}
  for split in config.sources:
    if config.raw_data_dir:
      path = mat_paths(config)[split]
      log_fn(f'reading {path}')
      data[split] = load_mat(path)
    else:
      log_fn(f'reading tfds svhn_cropped/{split}')
      data[split] = load_tfds(split, config.tfds_data_dir)
  extra_info = {
      'dataset': 'svhn',
      'num_classes': NUM_CLASSES,
      'digit_mapping': ('.mat label 10 -> class 0 (file label 1); .mat label '
                        'd in 1..9 -> class d (file label d + 1)'),
      'source_paths': (mat_paths(config) if config.raw_data_dir else
                       {split: f'tfds:svhn_cropped/{split}'
                        for split in config.sources}),
  }
  return array_writer.write_array_splits(
      config.output_dir, build_splits(config, data), expected,
      image_format=config.image_format, jpeg_quality=config.jpeg_quality,
      num_classes=NUM_CLASSES, name='svhn',
      class_names=[str(c) for c in range(NUM_CLASSES)], flip=False,
      extra_info=extra_info,
      overwrite=config.overwrite, log_fn=log_fn)


# --------------------------------------------------------------------------
# Binary.
# --------------------------------------------------------------------------
def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  flags.DEFINE_string(
      'raw_data_dir', None,
      'Folder with train_32x32.mat, test_32x32.mat, extra_32x32.mat (SVHN '
      'format 2). Unset: read TensorFlow Datasets svhn_cropped instead.', flag_values=fv)
  flags.DEFINE_string('tfds_data_dir', None,
                      'data_dir of TensorFlow Datasets (only without '
                      '--raw_data_dir).', flag_values=fv)
  flags.DEFINE_string('output_dir', None, 'Where the TFRecord shards go.', flag_values=fv)
  flags.DEFINE_integer('seed', 0, 'Seed of the train/extra shuffle (the '
                       'original used 0).', flag_values=fv)
  flags.DEFINE_integer('dev_size', 4000, 'Shuffled train images held out as '
                       'the dev split (0: no dev split).', flag_values=fv)
  flags.DEFINE_enum('image_format', 'png', list(image_codec.FORMATS),
                    'Image encoding: png (lossless) or jpeg (the original).', flag_values=fv)
  flags.DEFINE_integer('jpeg_quality', image_codec.DEFAULT_JPEG_QUALITY,
                       'JPEG quality in [1, 100] with --image_format=jpeg.', flag_values=fv)
  flags.DEFINE_integer('train_shards', 128, 'Shards of the train split.', flag_values=fv)
  flags.DEFINE_integer('eval_shards', 64, 'Shards of the dev and test splits.', flag_values=fv)
  flags.DEFINE_integer('extra_shards', 128, 'Shards of unlabeled/extra.', flag_values=fv)
  flags.DEFINE_bool('include_extra', True, 'Also convert extra_32x32.mat to '
                    'the unlabeled set.', flag_values=fv)
  flags.DEFINE_bool('overwrite', False, 'Rewrite existing shards (else '
                    'complete shards of the same configuration are kept).', flag_values=fv)


def config_from_flags(fv: flags.FlagValues) -> SvhnConfig:
  return entry.dataclass_from_flags(SvhnConfig, fv)


def main(argv: list[str]) -> None:
  del argv
  info = prepare_svhn(config_from_flags(flags.FLAGS))
  print(array_writer.summary_line(flags.FLAGS.output_dir, info))


def run():
  entry.run('proc_svhn', main, define_flags)


if __name__ == '__main__':
  run()
