"""ImageNet-P-style perturbation sequences of one image (pure numpy / scipy).

Each function maps a clean uint8 [H, W, 3] image to a uint8 sequence
[frames, H, W, 3]. The parameters follow the published CIFAR-10-P / ImageNet-P
generators (hendrycks/robustness `create_p`) for 32x32 images; geometric
amounts in pixels scale with the image width / 32.

name            frames  frame i (x in [0, 1], i = 0 .. frames - 1)
gaussian_noise  31      0 clean; then clip(x + N(0, s)), s = .02/.04/.06
shot_noise      31      0 clean; then Poisson(x L) / L, L = 700/400/200
speckle_noise   31      0 clean; then clip(x + x N(0, s)), s = .05/.07/.1
brightness      31      HSV value + (i - 15) * 0.015
translate       16      horizontal shift by (i - 7) * W / 32 pixels
rotate          31      rotation by (i - 15) degrees about the centre
scale           31      zoom by (70 + 2 i) / 100 about the centre
shear           31      horizontal shear by (i - 15) degrees
gaussian_blur   31      Gaussian blur, sigma = (0.3 + 0.015 i) * W / 32
zoom_blur       31      mean of the zooms 1 + 0.004 k, k = 0 .. i

(Noise difficulty 1/2/3 picks s or L; the other perturbations
have one sequence and their difficulty is the evaluation's frame step.)
Geometric frames are bilinear with black fill outside the image.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage
from skimage import color as skcolor
from skimage import filters

from noisy_student.runtime import errors

NOISE_PERTURBATIONS = ('gaussian_noise', 'shot_noise', 'speckle_noise')
GEOMETRIC_PERTURBATIONS = ('translate', 'rotate', 'scale', 'shear')
PERTURBATION_NAMES = (NOISE_PERTURBATIONS + ('brightness',) +
                      GEOMETRIC_PERTURBATIONS + ('gaussian_blur', 'zoom_blur'))
NOISE_FRAMES = 31

_GAUSSIAN_SIGMA = (0.02, 0.04, 0.06)
_SHOT_LAMBDA = (700, 400, 200)
_SPECKLE_SIGMA = (0.05, 0.07, 0.1)


def _to_uint8(x: np.ndarray) -> np.ndarray:
  """Float [.., H, W, 3] in [0, 1] -> uint8 (rounded)."""
  return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def _check(image: np.ndarray) -> np.ndarray:
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(f'expected uint8 [H, W, 3], got {image.dtype} '
                     f'{image.shape}')
  return image


def _noise_sequence(image: np.ndarray, draw: Callable[[np.ndarray],
                                                       np.ndarray]):
  x = image.astype(np.float64) / 255.0
  frames = [image] + [_to_uint8(draw(x)) for _ in range(NOISE_FRAMES - 1)]
  return np.stack(frames)


def _warp(image: np.ndarray, matrix: np.ndarray,
          shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
  """Output pixel p samples the input at matrix @ (p - c) + c - shift.

  (row, col) coordinates, c = the image centre; bilinear, black outside.
  """
  height, width = image.shape[:2]
  centre = np.array([(height - 1) / 2.0, (width - 1) / 2.0])
  offset = centre - matrix @ centre - np.asarray(shift)
  channels = [ndimage.affine_transform(
      image[..., c].astype(np.float64), matrix, offset=offset, order=1,
      mode='constant', cval=0.0) for c in range(image.shape[-1])]
  return np.round(np.clip(np.stack(channels, -1), 0, 255)).astype(np.uint8)


def _zoom(image: np.ndarray, factor: float) -> np.ndarray:
  return _warp(image, np.eye(2) / factor)


def perturbation_sequence(image: np.ndarray, name: str, difficulty: int = 1,
                          rng: np.random.Generator | None = None
                          ) -> np.ndarray:
  """The perturbation sequence of one image, uint8 [frames, H, W, 3].

  Args:
    image: uint8 [H, W, 3].
    name: one of PERTURBATION_NAMES.
    difficulty: 1-3; only noise perturbations have per-difficulty sequences.
    rng: randomness of the noise perturbations (default: a fresh generator).

  Raises:
    ValueError: unknown name, bad difficulty or image.
  """
  image = _check(image)
  if name not in PERTURBATION_NAMES:
    raise errors.ConfigError(f'unknown perturbation {name!r}; expected one of '
                     f'{PERTURBATION_NAMES}')
  if difficulty not in (1, 2, 3):
    raise errors.ConfigError(f'difficulty must be 1, 2 or 3, received: {difficulty}')
  rng = rng or np.random.default_rng()
  d = difficulty - 1
  width = image.shape[1]
  unit = width / 32.0
  if name == 'gaussian_noise':
    return _noise_sequence(image, lambda x: x + rng.normal(
        scale=_GAUSSIAN_SIGMA[d], size=x.shape))
  if name == 'shot_noise':
    lam = _SHOT_LAMBDA[d]
    return _noise_sequence(image, lambda x: rng.poisson(x * lam) / lam)
  if name == 'speckle_noise':
    return _noise_sequence(image, lambda x: x + x * rng.normal(
        scale=_SPECKLE_SIGMA[d], size=x.shape))
  if name == 'brightness':
    hsv = skcolor.rgb2hsv(image.astype(np.float64) / 255.0)
    frames = []
    for i in range(31):
      shifted = hsv.copy()
      shifted[..., 2] = np.clip(shifted[..., 2] + (i - 15) * 0.015, 0, 1)
      frames.append(_to_uint8(skcolor.hsv2rgb(shifted)))
    return np.stack(frames)
  if name == 'translate':
    return np.stack([_warp(image, np.eye(2), (0.0, (i - 7) * unit))
                     for i in range(16)])
  if name == 'rotate':
    frames = []
    for i in range(31):
      theta = np.deg2rad(i - 15)
      rotation = np.array([[np.cos(theta), -np.sin(theta)],
                           [np.sin(theta), np.cos(theta)]])
      frames.append(_warp(image, rotation))
    return np.stack(frames)
  if name == 'scale':
    return np.stack([_zoom(image, (70 + 2 * i) / 100.0) for i in range(31)])
  if name == 'shear':
    return np.stack([_warp(image, np.array(
        [[1.0, 0.0], [np.tan(np.deg2rad(i - 15)), 1.0]])) for i in range(31)])
  if name == 'gaussian_blur':
    x = image.astype(np.float64) / 255.0
    return np.stack([_to_uint8(filters.gaussian(
        x, sigma=(0.3 + 0.015 * i) * unit, channel_axis=-1, truncate=7.0))
                     for i in range(31)])
  # zoom_blur: running mean of ever stronger zooms.
  total = image.astype(np.float64)
  frames = [image]
  for i in range(1, 31):
    total += _zoom(image, 1.0 + 0.004 * i)
    frames.append(np.round(total / (i + 1)).astype(np.uint8))
  return np.stack(frames)
