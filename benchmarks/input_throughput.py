"""Images/s of the training input path: decode + preprocess_for_train.

A `tf.data` pipeline over encoded real photos (PNG for the 32x32 small-image
path, JPEG for ImageNet-size): decode -> preprocess_for_train (RandAugment
'v1' at each magnitude, or none) with a parallel map -> batch -> prefetch.
After a warm-up, it times whole batches and prints a markdown table.

  python -m benchmarks.input_throughput                  # small + imagenet
  python -m benchmarks.input_throughput --paths=imagenet --magnitudes=27 \
      --batch_size=64 --batches=10
"""

from __future__ import annotations

import dataclasses
import io
import os
import pathlib
import time
from typing import Sequence

from absl import app
from absl import flags
import numpy as np

# TensorFlow's start-up banner filtered (and TF_CPP_MIN_LOG_LEVEL=2), as in the binaries.
from noisy_student.runtime import quiet  # noqa: E402  pylint: disable=wrong-import-position
quiet.install()
# pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow as tf  # noqa: E402

from noisy_student.augment import preprocessing  # noqa: E402

# pylint: enable=g-import-not-at-top,wrong-import-position

_PATHS = flags.DEFINE_list(
    'paths', ['small', 'imagenet'],
    'Input paths to measure: "small" (32x32 PNG, small_image=True) and/or '
    '"imagenet" (JPEG photos -> --image_size, small_image=False).')
_MAGNITUDES = flags.DEFINE_list(
    'magnitudes', ['none', '5', '27'],
    'RandAugment magnitudes to measure; "none" = augment_name None.')
_IMAGE_SIZE = flags.DEFINE_integer(
    'image_size', 224, 'Output size of the imagenet path, pixels.')
_NUM_LAYERS = flags.DEFINE_integer(
    'num_layers', 2, 'RandAugment ops per image (--randaug_layer).')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 128, 'Images per batch.')
_WARMUP_BATCHES = flags.DEFINE_integer(
    'warmup_batches', 5, 'Batches run before timing starts.')
_BATCHES = flags.DEFINE_integer('batches', 30, 'Batches timed per row.')
_NUM_PARALLEL_CALLS = flags.DEFINE_integer(
    'num_parallel_calls', -1, 'Parallel map calls; -1 = tf.data.AUTOTUNE.')
_SHARED_DIR = flags.DEFINE_string(
    'shared_dir', str(pathlib.Path(__file__).resolve().parents[2] / 'shared'),
    'Optional folder with images/*.jpg and data/cifar10/*.npz to use as '
    'inputs besides the scikit-image photos.')


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
  """What to measure.

  Attributes:
    paths: 'small' and/or 'imagenet'.
    magnitudes: RandAugment magnitudes, None = no RandAugment.
    image_size: imagenet output side, pixels (small is always 32).
    num_layers: RandAugment N.
    batch_size, warmup_batches, batches: batching and timing.
    num_parallel_calls: map parallelism (tf.data.AUTOTUNE = -1).
    shared_dir: optional extra photos.
  """
  paths: tuple[str, ...]
  magnitudes: tuple[int | None, ...]
  image_size: int
  num_layers: int
  batch_size: int
  warmup_batches: int
  batches: int
  num_parallel_calls: int
  shared_dir: pathlib.Path


def config_from_flags() -> BenchmarkConfig:
  """Validates the flags; errors name the flag and the value received."""
  for path in _PATHS.value:
    if path not in ('small', 'imagenet'):
      raise app.UsageError(
          f"--paths takes 'small' and/or 'imagenet', received: {path!r}")
  magnitudes = []
  for value in _MAGNITUDES.value:
    if value == 'none':
      magnitudes.append(None)
    elif value.isdigit():
      magnitudes.append(int(value))
    else:
      raise app.UsageError(
          f"--magnitudes takes integers >= 0 or 'none', received: {value!r}")
  for name, value in (('batch_size', _BATCH_SIZE.value),
                      ('batches', _BATCHES.value),
                      ('image_size', _IMAGE_SIZE.value)):
    if value < 1:
      raise app.UsageError(f'--{name} must be >= 1, received: {value}')
  return BenchmarkConfig(
      paths=tuple(_PATHS.value), magnitudes=tuple(magnitudes),
      image_size=_IMAGE_SIZE.value, num_layers=_NUM_LAYERS.value,
      batch_size=_BATCH_SIZE.value, warmup_batches=_WARMUP_BATCHES.value,
      batches=_BATCHES.value, num_parallel_calls=_NUM_PARALLEL_CALLS.value,
      shared_dir=pathlib.Path(_SHARED_DIR.value))


def _encode(image: np.ndarray, fmt: str) -> bytes:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  buffer = io.BytesIO()
  Image.fromarray(np.ascontiguousarray(image)).save(
      buffer, format=fmt, **({'quality': 90} if fmt == 'JPEG' else {}))
  return buffer.getvalue()


def _photos(shared_dir: pathlib.Path) -> list[np.ndarray]:
  """scikit-image photos, plus ../shared/images/*.jpg when present."""
  import skimage.data  # pylint: disable=g-import-not-at-top
  photos = [getattr(skimage.data, name)()
            for name in ('chelsea', 'coffee', 'rocket', 'astronaut')]
  for path in sorted((shared_dir / 'images').glob('*.jpg')):
    photos.append(preprocessing.decode_image(path.read_bytes()).numpy())
  return photos


def encoded_inputs(path: str, shared_dir: pathlib.Path) -> list[bytes]:
  """Encoded images of one input path (PNG 32x32 or JPEG photos)."""
  if path == 'imagenet':
    return [_encode(photo, 'JPEG') for photo in _photos(shared_dir)]
  cifar = sorted((shared_dir / 'data' / 'cifar10').glob('*.npz'))
  if cifar:
    with np.load(cifar[0]) as data:
      key = next(k for k in data.files if data[k].ndim == 4)
      images = data[key][:256]
      if images.shape[1] == 3:   # NCHW
        images = images.transpose(0, 2, 3, 1)
  else:
    images = [photo[r:r + 32, c:c + 32] for photo in _photos(shared_dir)
              for r in range(0, 256, 64) for c in range(0, 256, 64)]
  return [_encode(image, 'PNG') for image in images]


def build_dataset(encoded: Sequence[bytes], *, small_image: bool,
                  image_size: int, magnitude: int | None,
                  config: BenchmarkConfig) -> tf.data.Dataset:
  """decode -> preprocess_for_train (parallel) -> batch -> prefetch."""

  def element(index, data):
    seed = tf.stack([tf.constant(0, tf.int64), index])
    return preprocessing.preprocess_for_train(
        preprocessing.decode_image(data), image_size, seed,
        small_image=small_image,
        augment_name=None if magnitude is None else 'v1',
        randaug_magnitude=0 if magnitude is None else magnitude,
        randaug_num_layers=config.num_layers)

  return (tf.data.Dataset.from_tensor_slices(list(encoded)).repeat()
          .enumerate()
          .map(element, num_parallel_calls=config.num_parallel_calls,
               deterministic=False)
          .batch(config.batch_size, drop_remainder=True)
          .prefetch(tf.data.AUTOTUNE))


def measure(dataset: tf.data.Dataset, config: BenchmarkConfig,
            label: str) -> float:
  """Images/s over `config.batches` batches after the warm-up."""
  iterator = iter(dataset)
  for _ in range(config.warmup_batches):
    next(iterator)
  start = time.perf_counter()
  report_every = max(1, config.batches // 3)
  for i in range(1, config.batches + 1):
    next(iterator)
    if i % report_every == 0 or i == config.batches:
      elapsed = time.perf_counter() - start
      rate = i * config.batch_size / elapsed
      eta = (config.batches - i) * elapsed / i
      print(f'{label}: batch {i}/{config.batches}, {rate:.0f} images/s, '
            f'ETA {eta:.0f}s', flush=True)
  return config.batches * config.batch_size / (time.perf_counter() - start)


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  config = config_from_flags()
  rows = []
  for path in config.paths:
    small_image = path == 'small'
    image_size = 32 if small_image else config.image_size
    encoded = encoded_inputs(path, config.shared_dir)
    source = 'PNG' if small_image else 'JPEG'
    for magnitude in config.magnitudes:
      augment = 'none' if magnitude is None else (
          f'N={config.num_layers}, M={magnitude}')
      label = f'{path} {image_size}x{image_size} {augment}'
      dataset = build_dataset(encoded, small_image=small_image,
                              image_size=image_size, magnitude=magnitude,
                              config=config)
      rows.append((f'{path} ({len(encoded)} {source}s)',
                   f'{image_size}x{image_size}', augment,
                   measure(dataset, config, label)))
  print(f'\n{os.cpu_count()} CPU cores, tf {tf.__version__}, batch '
        f'{config.batch_size}, {config.batches} timed batches after '
        f'{config.warmup_batches} warm-up\n')
  print('| input | output | RandAugment | images/s |')
  print('|---|---|---|---|')
  for source, size, augment, rate in rows:
    print(f'| {source} | {size} | {augment} | {rate:,.0f} |')


if __name__ == '__main__':
  app.run(main)
