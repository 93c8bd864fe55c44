"""Seeded imagecorruptions on real photos: reproducible, grow with severity."""

import numpy as np
import pytest

from data import corruptions as cr
from tests import robustness_fixtures as fx


@pytest.fixture(scope='module')
def image():
  return fx.photo('chelsea', (64, 48))


def test_names_match_imagecorruptions():
  from imagecorruptions import get_corruption_names
  assert cr.CORRUPTION_NAMES == tuple(get_corruption_names('all'))


@pytest.mark.parametrize('name', [
    'gaussian_noise', 'shot_noise', 'impulse_noise', 'defocus_blur',
    'motion_blur', 'contrast', 'brightness', 'pixelate', 'jpeg_compression',
    'gaussian_blur'])
def test_difference_grows_with_severity(image, name):
  diffs = [np.abs(cr.corrupt_image(image, name, s, seed=1).astype(float) -
                  image).mean() for s in cr.SEVERITIES]
  assert diffs[0] > 1.0, diffs                          # it changed the image
  assert all(b > a for a, b in zip(diffs, diffs[1:])), diffs


@pytest.mark.parametrize('name', cr.CORRUPTION_NAMES)
def test_every_corruption_is_seeded(image, name):
  first = cr.corrupt_image(image, name, 3, seed=7)
  assert first.shape == image.shape and first.dtype == np.uint8
  assert not np.array_equal(first, image)
  assert np.array_equal(first, cr.corrupt_image(image, name, 3, seed=7))


def test_random_corruptions_depend_on_the_seed(image):
  for name in ('gaussian_noise', 'impulse_noise', 'glass_blur', 'snow'):
    assert not np.array_equal(cr.corrupt_image(image, name, 2, seed=1),
                              cr.corrupt_image(image, name, 2, seed=2)), name
  assert cr.image_seed(0, 'fog', 1, 5) != cr.image_seed(0, 'fog', 1, 6)
  assert cr.image_seed(0, 'fog', 1, 5) == cr.image_seed(0, 'fog', 1, 5)


def test_spatter_without_droplets_leaves_the_image(image):
  """imagecorruptions divides by a zero droplet mask on small dark images."""
  digit, _ = fx.digits(1)
  seen_unchanged = False
  for seed in range(40):
    out = cr.corrupt_image(digit[0], 'spatter', 1, seed)
    assert out.max() > 0                      # never the all-black NaN image
    seen_unchanged |= np.array_equal(out, digit[0])
  assert seen_unchanged


def test_bad_inputs(image):
  with pytest.raises(ValueError, match='31x40'):
    cr.corrupt_image(np.zeros((31, 40, 3), np.uint8), 'fog', 1, 0)
  with pytest.raises(ValueError, match='uint8'):
    cr.corrupt_image(image.astype(np.float32), 'fog', 1, 0)
  with pytest.raises(ValueError, match='rain'):
    cr.check_corruptions(['fog', 'rain'], [1])
  with pytest.raises(ValueError, match='severity'):
    cr.check_corruptions(['fog'], [0])
  with pytest.raises(ValueError, match='record 3'):
    cr.corrupt_encoded([fx.encode_png(np.zeros((8, 8, 3), np.uint8))], [0],
                       ['file.tfrecord record 3'], 'fog', 1, 0, 'png')


def test_encode_decode(image):
  assert np.array_equal(cr.decode(cr.encode(image, 'png')), image)
  assert np.abs(cr.decode(cr.encode(image, 'jpeg')).astype(int) -
                image).mean() < 5
  with pytest.raises(ValueError, match='gif'):
    cr.encode(image, 'gif')
