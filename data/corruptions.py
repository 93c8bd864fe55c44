"""Seeded ImageNet-C corruptions of one image, and the worker that batches them.

No TensorFlow here, so `data.make_corrupted`'s worker processes start fast.
The corruptions are the maintained `imagecorruptions` fork
(`imagecorruptions-imaug`): `corrupt(uint8 [H, W, 3], severity 1-5, name)`,
images at least 32x32.
"""

from __future__ import annotations

import io
from typing import Sequence
import warnings

import numpy as np
from PIL import Image

from noisy_student.runtime import errors

# The 15 ImageNet-C benchmark corruptions in the published order (also the
# order of imagecorruptions' `get_corruption_names('common')`), then the 4
# extra ("validation") ones, reported separately.
BENCHMARK_CORRUPTIONS = (
    'gaussian_noise', 'shot_noise', 'impulse_noise', 'defocus_blur',
    'glass_blur', 'motion_blur', 'zoom_blur', 'snow', 'frost', 'fog',
    'brightness', 'contrast', 'elastic_transform', 'pixelate',
    'jpeg_compression')
EXTRA_CORRUPTIONS = ('speckle_noise', 'gaussian_blur', 'spatter', 'saturate')
CORRUPTION_NAMES = BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS
SEVERITIES = (1, 2, 3, 4, 5)
MIN_SIZE = 32
# Corruptions whose randomness comes from their own `seed` argument rather
# than numpy's global generator.
_SEED_ARGUMENT = ('impulse_noise', 'glass_blur')


def check_corruptions(names: Sequence[str], severities: Sequence[int]) -> None:
  """ValueError naming the first unknown corruption or bad severity."""
  for name in names:
    if name not in CORRUPTION_NAMES:
      raise errors.ConfigError(f'unknown corruption {name!r}; expected names from '
                       f'{CORRUPTION_NAMES}')
  for severity in severities:
    if severity not in SEVERITIES:
      raise errors.ConfigError(f'severity must be in 1..5, received: {severity}')


def image_seed(seed: int, corruption: str, severity: int, index: int) -> int:
  """A 32-bit seed per (run seed, corruption, severity, image index)."""
  sequence = np.random.SeedSequence(
      [int(seed), CORRUPTION_NAMES.index(corruption), int(severity),
       int(index)])
  return int(sequence.generate_state(1)[0])


def corrupt_image(image: np.ndarray, corruption: str, severity: int,
                  seed: int) -> np.ndarray:
  """uint8 [H, W, 3] -> the corrupted uint8 [H, W, 3], reproducible by `seed`.

  Raises:
    ValueError for non-RGB uint8 input or an image smaller than 32x32.
  """
  from imagecorruptions import corrupt  # pylint: disable=g-import-not-at-top

  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(f'expected uint8 [H, W, 3], got {image.dtype} '
                     f'{image.shape}')
  if min(image.shape[:2]) < MIN_SIZE:
    raise ValueError(f'image is {image.shape[0]}x{image.shape[1]}; the '
                     f'corruptions need at least {MIN_SIZE}x{MIN_SIZE}')
  np.random.seed(seed)
  kwargs = {'seed': seed} if corruption in _SEED_ARGUMENT else {}
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always', RuntimeWarning)
    out = corrupt(image, severity=int(severity), corruption_name=corruption,
                  **kwargs)
  if any('invalid value' in str(w.message) for w in caught):
    # A NaN reached the uint8 cast. spatter at severities 1-3 divides its
    # droplet mask by its maximum, which is 0 when no droplet passes the
    # threshold (frequent on small images): the image has no spatter, so it
    # is returned unchanged instead of imagecorruptions' black image.
    if corruption == 'spatter':
      return image.copy()
    raise ValueError(f'{corruption} severity {severity} produced NaN pixels '
                     f'(seed {seed})')
  return np.asarray(out, np.uint8).reshape(image.shape)


def decode(encoded: bytes) -> np.ndarray:
  """JPEG/PNG bytes -> uint8 [H, W, 3]."""
  return np.asarray(Image.open(io.BytesIO(encoded)).convert('RGB'), np.uint8)


def encode(image: np.ndarray, image_format: str = 'png') -> bytes:
  """uint8 [H, W, 3] -> PNG (lossless) or JPEG (quality 95) bytes."""
  buffer = io.BytesIO()
  if image_format == 'png':
    Image.fromarray(image).save(buffer, format='PNG')
  elif image_format == 'jpeg':
    Image.fromarray(image).save(buffer, format='JPEG', quality=95)
  else:
    raise errors.ConfigError(f'image_format must be png or jpeg, received: '
                     f'{image_format!r}')
  return buffer.getvalue()


def limit_threads() -> None:
  """One thread per worker process for OpenCV and BLAS.

  The worker processes are the parallelism; nested thread pools would only
  compete for the same cores (measured: 2 workers no faster than 1 without).
  """
  try:
    import cv2  # pylint: disable=g-import-not-at-top
    cv2.setNumThreads(1)
  except ImportError:
    pass
  try:
    import threadpoolctl  # pylint: disable=g-import-not-at-top
    threadpoolctl.threadpool_limits(1)
  except ImportError:
    pass


def corrupt_encoded(encoded_images: Sequence[bytes], indices: Sequence[int],
                    sources: Sequence[str], corruption: str, severity: int,
                    seed: int, image_format: str) -> list[bytes]:
  """Decodes, corrupts and re-encodes a chunk of images (a worker's task).

  Args:
    encoded_images: the source images, JPEG/PNG bytes.
    indices: each image's index in the whole set (it picks the seed).
    sources: a description of each image's origin for errors (file, record).
    corruption, severity, seed, image_format: as in `make_corrupted`.

  Raises:
    ValueError naming the source record of an image that cannot be corrupted.
  """
  out = []
  for encoded, index, source in zip(encoded_images, indices, sources):
    try:
      image = decode(encoded)
      corrupted = corrupt_image(image, corruption, severity,
                                image_seed(seed, corruption, severity, index))
    except (ValueError, OSError) as err:
      raise errors.NoisyStudentError(f'{source}: {err}') from err
    out.append(encode(corrupted, image_format))
  return out
