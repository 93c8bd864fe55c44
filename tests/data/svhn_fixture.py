"""Tiny SVHN format-2 `.mat` files in the real layout, for tests and recipes.

The images are real SVHN crops from ../shared/data/svhn when that folder is
present (they carry no labels, so labels are assigned here), else synthetic
digit-like images; either way the files have the real keys, shapes and dtypes:
`X` uint8 (32, 32, 3, N), `y` uint8 (N, 1) with digit 0 stored as 10.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.io

from tests.conftest import SHARED_DIR

SVHN_NPZ = SHARED_DIR / 'data' / 'svhn' / 'svhn_train_first1083_unlabeled.npz'


def _images(count: int, rng: np.random.Generator) -> np.ndarray:
  if SVHN_NPZ.exists():
    pool = np.load(SVHN_NPZ)['x']
    return pool[rng.integers(0, len(pool), count)]
  base = rng.integers(60, 200, (count, 1, 1, 3))
  noise = rng.integers(-25, 25, (count, 32, 32, 3))
  images = np.clip(base + noise, 0, 255).astype(np.uint8)
  images[:, 8:24, 13:19] = 255 - images[:, 8:24, 13:19]  # a bright stroke
  return images


def write_svhn_mat_files(directory: str, num_train: int, num_test: int,
                         num_extra: int, seed: int = 0) -> dict:
  """Writes train/test/extra_32x32.mat; returns {split: (images, digits)}."""
  rng = np.random.default_rng(seed)
  os.makedirs(directory, exist_ok=True)
  out = {}
  for split, count in (('train', num_train), ('test', num_test),
                       ('extra', num_extra)):
    images = _images(count, rng)
    digits = rng.integers(0, 10, count)
    y = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(-1, 1)
    scipy.io.savemat(os.path.join(directory, f'{split}_32x32.mat'),
                     {'X': np.ascontiguousarray(np.transpose(images, (1, 2, 3, 0))),
                      'y': y})
    out[split] = (images, digits)
  return out
