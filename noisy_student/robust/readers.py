"""Readers for ImageNet-A / -C / -P trees and TFRecord corrupted copies.

Published layouts (and the ones `data.make_corrupted` / `data.make_perturbed`
write):

* ImageNet-A: `<root>/<wnid>/*.jpg` (200 class folders);
* ImageNet-C: `<root>/<corruption>/<severity>/<wnid>/*.JPEG`;
* ImageNet-P: `<root>/<perturbation>/<wnid>/*.mp4`; noise perturbations at
  difficulty d > 1 live in `<root>/<perturbation>_<d>/<wnid>/*.mp4`;
* our corrupted TFRecords: `<root>/<corruption>/<severity>/<split>-*` in the
  labeled schema of `data/records.py`.

Class folders become labels through a `data.label_maps.LabelMap` (ImageNet
wnids by default). Images reach the model through an injectable
`preprocess_fn(uint8 [H, W, 3]) -> float32 [S, S, 3]` in 0-255.
"""

from __future__ import annotations

import collections
import concurrent.futures
import io
import os
from typing import Callable, Iterator, Sequence

import numpy as np
from PIL import Image
import tensorflow as tf

from data import layout
from data import label_maps
from data import records
from noisy_student.augment import preprocessing
from noisy_student.runtime import errors
from noisy_student.robust import metrics

PreprocessFn = Callable[[np.ndarray], np.ndarray]
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp')
VIDEO_EXTENSIONS = ('.mp4',)
NUM_THREADS = 8  # decoding threads (PIL / FFmpeg release the GIL)


# ---------------------------------------------------------------------------
# Preprocessing and decoding.
# ---------------------------------------------------------------------------
def resize_preprocess(image_size: int) -> PreprocessFn:
  """uint8 [H, W, 3] -> float32 [image_size, image_size, 3], bicubic, 0-255.

  The resize is TF1's `resize_bicubic` (align_corners=False,
  half_pixel_centers=False), as the original EfficientNet preprocessing; no
  crop, no clipping. Images already image_size x image_size are only cast.
  """
  if image_size <= 0:
    raise errors.InputError(f'image_size must be positive, received: {image_size}')

  def preprocess(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
      raise errors.InputError(f'expected an RGB image [H, W, 3], got {image.shape}')
    if image.shape[:2] == (image_size, image_size):
      return image.astype(np.float32)
    resized = tf.raw_ops.ResizeBicubic(
        images=tf.constant(image[np.newaxis], tf.float32),
        size=[image_size, image_size], align_corners=False,
        half_pixel_centers=False)
    return resized[0].numpy()

  return preprocess


def eval_crop_preprocess(image_size: int) -> PreprocessFn:
  """The standard evaluation preprocessing (centre crop with 32-pixel padding,
  then the TF1 bicubic resize; `preprocessing.preprocess_for_eval`), used for
  ImageNet-A as the original evaluation of ImageNet models."""
  def eval_crop(image: np.ndarray) -> np.ndarray:
    return preprocessing.preprocess_for_eval(
        tf.constant(np.asarray(image, np.uint8)), image_size,
        small_image=False).numpy()

  eval_crop.__name__ = f'centre crop (padding 32) + bicubic resize to {image_size}'
  return eval_crop


def decode_image_file(path: str) -> np.ndarray:
  """An image file -> uint8 [H, W, 3] (grayscale/alpha converted to RGB)."""
  with tf.io.gfile.GFile(path, 'rb') as f:
    data = f.read()
  try:
    image = Image.open(io.BytesIO(data))
    image.load()
  except (OSError, ValueError) as err:
    raise errors.InputError(f'{path}: cannot decode the image: {err}') from err
  return np.asarray(image.convert('RGB'), np.uint8)


def decode_video(path: str) -> np.ndarray:
  """An .mp4 (any format FFmpeg reads) -> uint8 [frames, H, W, 3] RGB.

  Raises:
    ValueError naming `path` when the file cannot be opened or decoded, or has
    no video frames.
  """
  import av  # pylint: disable=g-import-not-at-top

  frames = []
  try:
    with av.open(path) as container:
      if not container.streams.video:
        raise errors.InputError(f'{path}: the file has no video stream')
      for frame in container.decode(video=0):
        frames.append(frame.to_ndarray(format='rgb24'))
  except av.FFmpegError as err:
    raise errors.InputError(f'{path}: cannot decode the video: {err}') from err
  if not frames:
    raise errors.InputError(f'{path}: the video has no frames')
  return np.stack(frames)


def _listdir(path: str, what: str) -> list[str]:
  if not tf.io.gfile.isdir(path):
    raise errors.MissingFileError(f'{path}: no such {what} folder')
  return sorted(name.rstrip('/') for name in tf.io.gfile.listdir(path))


def _subdirs(path: str, what: str) -> list[str]:
  return [n for n in _listdir(path, what) if not n.startswith('.')
          and tf.io.gfile.isdir(os.path.join(path, n))]


# ---------------------------------------------------------------------------
# Class-folder trees.
# ---------------------------------------------------------------------------
def list_class_folders(root: str, label_map: label_maps.LabelMap,
                       extensions: Sequence[str] = IMAGE_EXTENSIONS,
                       what: str = 'image') -> list[tuple[str, int]]:
  """(path, label) of every file in `<root>/<class>/`, sorted by class, name.

  Raises:
    FileNotFoundError naming `root` when it is missing or holds no files;
    ValueError naming the class folder when the label map does not know it.
  """
  samples = []
  for folder in _subdirs(root, what):
    directory = os.path.join(root, folder)
    label = label_map.label(folder, directory)
    for name in _listdir(directory, what):
      if name.lower().endswith(tuple(extensions)):
        samples.append((os.path.join(directory, name), label))
  if not samples:
    raise errors.MissingFileError(f'{root}: no {what} files ({", ".join(extensions)})'
                            ' in class folders')
  return samples


def parallel_map(function: Callable, items: Sequence,
                 num_threads: int = NUM_THREADS) -> Iterator:
  """`map(function, items)` in order, on threads, a bounded window ahead.

  Decoding (PIL, FFmpeg) and TF ops release the GIL, so threads overlap
  file reading with the model. At most 2 * num_threads results wait.
  """
  if num_threads <= 1:
    yield from map(function, items)
    return
  window = 2 * num_threads
  with concurrent.futures.ThreadPoolExecutor(num_threads) as executor:
    pending = collections.deque()
    for item in items:
      pending.append(executor.submit(function, item))
      if len(pending) >= window:
        yield pending.popleft().result()
    while pending:
      yield pending.popleft().result()


def image_batches(samples: Sequence[tuple[str, int]],
                  preprocess_fn: PreprocessFn, batch_size: int,
                  max_images: int | None = None,
                  num_threads: int = NUM_THREADS
                  ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
  """(float32 [B, S, S, 3], int64 [B]) batches of decoded, preprocessed files.

  Args:
    samples: (path, label) pairs, e.g. from `list_class_folders`.
    preprocess_fn: uint8 [H, W, 3] -> float32 [S, S, 3] in 0-255.
    batch_size: images per batch (the last one may be smaller).
    max_images: use only the first N samples.
    num_threads: decoding threads.
  """
  if batch_size <= 0:
    raise errors.InputError(f'batch_size must be positive, received: {batch_size}')
  if max_images is not None:
    samples = samples[:max_images]
  images = parallel_map(lambda s: preprocess_fn(decode_image_file(s[0])),
                        samples, num_threads)
  for start in range(0, len(samples), batch_size):
    chunk = samples[start:start + batch_size]
    batch = np.stack([next(images) for _ in chunk]).astype(np.float32)
    yield batch, np.asarray([l for _, l in chunk], np.int64)


def imagenet_a_samples(root: str,
                       label_map: label_maps.LabelMap | None = None
                       ) -> list[tuple[str, int]]:
  """(path, 1000-class label) of `<root>/<wnid>/*.jpg`.

  With the ImageNet label map every folder must be one of ImageNet-A's 200
  classes (otherwise the 200-way scoring could never be right).
  """
  label_map = label_map or label_maps.load_label_map('imagenet')
  samples = list_class_folders(root, label_map)
  if label_map.spec == 'imagenet':
    allowed = set(metrics.IMAGENET_A_INDICES)
    for path, label in samples:
      if label not in allowed:
        raise errors.InputError(f'{os.path.dirname(path)}: class {label} '
                         f'({label_map.name(label)}) is not one of the 200 '
                         'ImageNet-A classes')
  return samples


# ---------------------------------------------------------------------------
# ImageNet-C.
# ---------------------------------------------------------------------------
def corruption_dirs(root: str) -> list[str]:
  """Corruption names present under `root`, in the published order.

  Raises:
    ValueError naming the folder when a sub-folder is not a known corruption.
  """
  names = _subdirs(root, 'corruption root')
  if not names:
    raise errors.MissingFileError(
        f'{root}: no corruption folders (<corruption>/<severity>/...); '
        'write one with noisy-student-make-corrupted or noisy-student-tfds-to-tfrecord')
  for name in names:
    if name not in metrics.ALL_CORRUPTIONS:
      raise errors.InputError(f'{os.path.join(root, name)}: unknown corruption '
                       f'{name!r}; expected one of '
                       f'{metrics.ALL_CORRUPTIONS}')
  return [c for c in metrics.ALL_CORRUPTIONS if c in names]


def severity_dir(root: str, corruption: str, severity: int) -> str:
  """`<root>/<corruption>/<severity>`, checked to exist.

  Raises:
    ValueError naming `<root>/<corruption>` for an unknown corruption name;
    FileNotFoundError naming the missing folder.
  """
  corruption_path = os.path.join(root, corruption)
  if corruption not in metrics.ALL_CORRUPTIONS:
    raise errors.InputError(f'{corruption_path}: unknown corruption {corruption!r}; '
                     f'expected one of {metrics.ALL_CORRUPTIONS}')
  path = os.path.join(corruption_path, str(severity))
  if not tf.io.gfile.isdir(path):
    raise errors.MissingFileError(f'{path}: missing severity folder (corruption '
                            f'{corruption!r}, severity {severity})')
  return path


def imagenet_c_samples(root: str, corruption: str, severity: int,
                       label_map: label_maps.LabelMap | None = None
                       ) -> list[tuple[str, int]]:
  """(path, label) of `<root>/<corruption>/<severity>/<wnid>/*`."""
  return list_class_folders(severity_dir(root, corruption, severity),
                            label_map or label_maps.load_label_map('imagenet'))


# ---------------------------------------------------------------------------
# ImageNet-P.
# ---------------------------------------------------------------------------
def perturbation_dir(root: str, perturbation: str, difficulty: int = 1) -> str:
  """The folder of one perturbation at one difficulty, checked to exist.

  Noise perturbations at difficulty d > 1 are `<root>/<name>_<d>`; every other
  case is `<root>/<name>` (non-noise difficulties only change the frame step).
  """
  if perturbation not in metrics.ALL_PERTURBATIONS:
    raise errors.InputError(f'{os.path.join(root, perturbation)}: unknown '
                     f'perturbation {perturbation!r}; expected one of '
                     f'{metrics.ALL_PERTURBATIONS}')
  if difficulty not in metrics.DIFFICULTIES:
    raise errors.InputError(f'difficulty must be one of {metrics.DIFFICULTIES}, '
                     f'received: {difficulty}')
  name = perturbation
  if metrics.is_noise_perturbation(perturbation) and difficulty > 1:
    name = f'{perturbation}_{difficulty}'
  path = os.path.join(root, name)
  if not tf.io.gfile.isdir(path):
    raise errors.MissingFileError(f'{path}: missing perturbation folder '
                            f'({perturbation!r}, difficulty {difficulty})')
  return path


def perturbation_dirs(root: str) -> list[str]:
  """Perturbation names present under `root` (difficulty suffixes dropped)."""
  found = set()
  for name in _subdirs(root, 'perturbation root'):
    base, _, suffix = name.rpartition('_')
    if suffix.isdigit() and metrics.is_noise_perturbation(base):
      name = base
    if name not in metrics.ALL_PERTURBATIONS:
      raise errors.InputError(f'{os.path.join(root, name)}: unknown perturbation '
                       f'{name!r}; expected one of '
                       f'{metrics.ALL_PERTURBATIONS}')
    found.add(name)
  return [p for p in metrics.ALL_PERTURBATIONS if p in found]


def imagenet_p_samples(root: str, perturbation: str, difficulty: int = 1,
                       label_map: label_maps.LabelMap | None = None
                       ) -> list[tuple[str, int]]:
  """(video path, label) of one perturbation's `<wnid>/*.mp4` files."""
  return list_class_folders(
      perturbation_dir(root, perturbation, difficulty),
      label_map or label_maps.load_label_map('imagenet'),
      extensions=VIDEO_EXTENSIONS, what='video')


def video_frames(path: str, preprocess_fn: PreprocessFn) -> np.ndarray:
  """float32 [frames, S, S, 3]: the decoded, preprocessed frames of a video."""
  return np.stack([preprocess_fn(f) for f in decode_video(path)]).astype(
      np.float32)


# ---------------------------------------------------------------------------
# TFRecord corrupted copies.
# ---------------------------------------------------------------------------
def split_files(directory: str, split: str) -> list[str]:
  """Sorted shards `<directory>/<split>-NNNNN-of-NNNNN` (never a report).

  Raises:
    MissingFileError naming the pattern when no shard matches.
  """
  pattern = os.path.join(directory, f'{split}-*')
  files = sorted(f for f in tf.io.gfile.glob(pattern)
                 if layout.is_shard_name(f, split))
  if not files:
    raise errors.MissingFileError(f'{pattern}: no TFRecord shards match')
  return files


def shards_in(directory: str) -> list[str]:
  """Sorted TFRecord shards `<split>-NNNNN-of-NNNNN` of any split in `directory`.

  A folder written by `data.tfds_to_tfrecord` (TFDS ImageNet-A, or one
  `<corruption>/<severity>` folder of TFDS ImageNet-C) holds shards where the
  published trees hold class folders.
  """
  if not tf.io.gfile.isdir(directory):
    return []
  return sorted(os.path.join(directory, name)
                for name in tf.io.gfile.listdir(directory)
                if layout.is_shard_name(name, name.split('-')[0]))


def tfrecord_batches(files: Sequence[str], preprocess_fn: PreprocessFn,
                     batch_size: int, max_images: int | None = None
                     ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
  """(float32 [B, S, S, 3], int64 [B]) batches from labeled-schema TFRecords.

  Records are read in file order; images are decoded in TF (JPEG/PNG, 3
  channels) and preprocessed with `preprocess_fn` in numpy.
  """
  if batch_size <= 0:
    raise errors.InputError(f'batch_size must be positive, received: {batch_size}')

  def decode(serialized):
    parsed = records.parse_labeled(serialized)
    image = tf.io.decode_image(parsed['image_bytes'], channels=3,
                               dtype=tf.uint8, expand_animations=False)
    return image, parsed['label']

  dataset = tf.data.TFRecordDataset(list(files)).map(decode)
  if max_images is not None:
    dataset = dataset.take(max_images)
  images, labels = [], []
  try:
    for image, label in dataset.as_numpy_iterator():
      if label < 0:
        raise errors.InputError(f'{files}: a record has no {records.LABEL_KEY}')
      images.append(preprocess_fn(image))
      labels.append(label)
      if len(images) == batch_size:
        yield np.stack(images).astype(np.float32), np.asarray(labels, np.int64)
        images, labels = [], []
  except tf.errors.DataLossError as err:
    bad = records.find_bad_file(list(files))
    raise (bad or ValueError(f'{files}: corrupt TFRecord data: {err}')) from err
  if images:
    yield np.stack(images).astype(np.float32), np.asarray(labels, np.int64)
