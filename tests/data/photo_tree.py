"""A small tree of real photos in ImageNet-style class folders, for tests."""

import os
import shutil

import numpy as np
from PIL import Image
import skimage.data

from tests import conftest


def save(path, array, fmt, **kwargs):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(array).save(path, format=fmt, **kwargs)


def make_tree(root: str) -> dict:
  """Class folders of real photos; returns {path: (label, kept bytes or None)}.

  Folders sort as n02123045 (cat), n03063599 (coffee), n04266014 (rocket).
  `None` marks files that must be re-encoded (gray JPEG, GIF, BMP) and the
  two broken files (truncated JPEG, random bytes named .jpg) are listed in
  the returned 'broken' entry.
  """
  chelsea, coffee = skimage.data.chelsea(), skimage.data.coffee()
  rocket = skimage.data.rocket()
  cat, cup, ship = (os.path.join(root, n) for n in
                    ('n02123045', 'n03063599', 'n04266014'))
  save(os.path.join(cat, 'chelsea.png'), chelsea, 'PNG')
  save(os.path.join(cup, 'coffee.jpg'), coffee, 'JPEG', quality=90)
  save(os.path.join(ship, 'rocket.jpg'), rocket, 'JPEG', quality=90)
  save(os.path.join(ship, 'camera_gray.jpg'), skimage.data.camera(), 'JPEG')
  save(os.path.join(cat, 'chelsea_small.gif'), chelsea[::4, ::4], 'GIF')
  save(os.path.join(cup, 'coffee_small.bmp'), coffee[::4, ::4], 'BMP')
  shared = conftest.SHARED_DIR / 'images'
  if (shared / 'cat.jpg').exists():  # a real kitten photo when available
    shutil.copy(shared / 'cat.jpg', os.path.join(cat, 'kitten.jpg'))
  with open(os.path.join(ship, 'rocket.jpg'), 'rb') as f:
    jpeg = f.read()
  broken = [os.path.join(ship, 'truncated.jpg'), os.path.join(cup, 'noise.jpg')]
  with open(broken[0], 'wb') as f:
    f.write(jpeg[:len(jpeg) // 3])
  with open(broken[1], 'wb') as f:
    f.write(np.random.default_rng(0).bytes(2000))
  with open(os.path.join(cup, 'README.txt'), 'w') as f:
    f.write('not an image')
  expected = {}
  for label, folder in enumerate((cat, cup, ship)):
    for name in sorted(os.listdir(folder)):
      path = os.path.join(folder, name)
      if path in broken or name.endswith('.txt'):
        continue
      with open(path, 'rb') as f:
        data = f.read()
      keep = name.endswith(('.jpg', '.png')) and 'gray' not in name
      expected[path] = (label, data if keep else None)
  return {'files': expected, 'broken': sorted(broken)}
