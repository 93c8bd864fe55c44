"""Tiny SVHN format-2 `.mat` files in the real layout, for tests.

The real files (http://ufldl.stanford.edu/housenumbers/) are MATLAB 5 files
with `X`: uint8 (32, 32, 3, N) and `y`: uint8 (N, 1) holding 1..10, where 10
means the digit 0. The images come from the real SVHN crops in
`shared/data/svhn/svhn_train_first1083_unlabeled.npz` when that file is there
(it has no labels, so the labels here are seeded random digits, not the true
ones), and are drawn synthetically (a digit on a coloured background)
otherwise, so the fixture also works in a fresh clone.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image
from PIL import ImageDraw
import scipy.io

from tests import conftest

REAL_CROPS = os.path.join('data', 'svhn', 'svhn_train_first1083_unlabeled.npz')
SPLITS = ('train', 'test', 'extra')


def real_crops() -> np.ndarray | None:
  """uint8 [1083, 32, 32, 3] real SVHN crops, or None when not available."""
  path = conftest.SHARED_DIR / REAL_CROPS
  if not path.exists():
    return None
  with np.load(path) as data:
    return data['x']


def synthetic_digit(digit: int, rng: np.random.Generator) -> np.ndarray:
  """uint8 [32, 32, 3]: `digit` drawn in one colour on another."""
  background = rng.integers(0, 256, 3)
  foreground = (background + 128 + rng.integers(-40, 40, 3)) % 256
  image = Image.new('RGB', (32, 32), tuple(int(v) for v in background))
  draw = ImageDraw.Draw(image)
  offset = rng.integers(-3, 4, 2)
  draw.text((12 + int(offset[0]), 9 + int(offset[1])), str(digit),
            fill=tuple(int(v) for v in foreground))
  return np.asarray(image, dtype=np.uint8)


def write_svhn_mat_files(directory: str, num_train: int, num_test: int,
                         num_extra: int, seed: int = 0,
                         label_dtype=np.uint8) -> dict:
  """Writes train/test/extra_32x32.mat (a split of size 0 is not written).

  Args:
    directory: destination folder (created if needed).
    num_train, num_test, num_extra: number of images per file.
    seed: seeds the labels, the choice of real crops and synthetic images.
    label_dtype: dtype of `y` (uint8 in the real files; float64 also occurs
      in re-saved copies).

  Returns:
    {split: {'path': str, 'images': uint8 [N, 32, 32, 3], 'digits': int64 [N]
    in 0..9, 'mat_labels': [N] in 1..10}} and 'real_images': bool.
  """
  os.makedirs(directory, exist_ok=True)
  rng = np.random.default_rng(seed)
  crops = real_crops()
  counts = {'train': num_train, 'test': num_test, 'extra': num_extra}
  total = sum(counts.values())
  digits = rng.integers(0, 10, total)
  if crops is not None:
    rows = rng.choice(len(crops), total, replace=total > len(crops))
    images = crops[rows]
  else:
    images = np.stack([synthetic_digit(int(d), rng) for d in digits]
                      ) if total else np.zeros((0, 32, 32, 3), np.uint8)
  out = {'real_images': crops is not None}
  start = 0
  for split in SPLITS:
    n = counts[split]
    if n == 0:
      continue
    split_images = images[start:start + n]
    split_digits = digits[start:start + n].astype(np.int64)
    mat_labels = np.where(split_digits == 0, 10, split_digits)
    path = os.path.join(directory, f'{split}_32x32.mat')
    scipy.io.savemat(path, {
        'X': np.ascontiguousarray(np.transpose(split_images, (1, 2, 3, 0))),
        'y': mat_labels.astype(label_dtype).reshape(n, 1),
    }, format='5', do_compression=True)
    out[split] = {'path': path, 'images': split_images,
                  'digits': split_digits, 'mat_labels': mat_labels}
    start += n
  return out
