"""Perturbation sequences of a real photo: frame counts, identity frames."""

import numpy as np
import pytest

from data import perturbations as pt
from tests import robustness_fixtures as fx

FRAMES = {'translate': 16}
# Frame holding the unperturbed image (shift / angle / zoom / shear 0).
IDENTITY_FRAME = {'translate': 7, 'rotate': 15, 'scale': 15, 'shear': 15,
                  'gaussian_noise': 0, 'shot_noise': 0, 'speckle_noise': 0,
                  'zoom_blur': 0}


@pytest.fixture(scope='module')
def image():
  return fx.photo('coffee', (32, 32))


@pytest.mark.parametrize('name', pt.PERTURBATION_NAMES)
def test_sequences(image, name):
  frames = pt.perturbation_sequence(image, name, 1, np.random.default_rng(0))
  assert frames.dtype == np.uint8
  assert frames.shape == (FRAMES.get(name, 31), 32, 32, 3)
  if name in IDENTITY_FRAME:
    assert np.array_equal(frames[IDENTITY_FRAME[name]], image)
  # Consecutive frames differ, but only a little (a smooth sequence).
  steps = [np.abs(a.astype(float) - b).mean()
           for a, b in zip(frames[:-1], frames[1:])]
  assert max(steps) < 40 and np.mean(steps) > 0.05, steps


def test_brightness_middle_frame_is_clean(image):
  frames = pt.perturbation_sequence(image, 'brightness')
  assert np.abs(frames[15].astype(int) - image).max() <= 1   # HSV round trip
  assert frames[0].mean() < image.mean() < frames[30].mean()


def test_geometry():
  image = np.zeros((32, 32, 3), np.uint8)
  image[10:14, 4:8] = 255
  shifted = pt.perturbation_sequence(image, 'translate')
  # Frame i shifts right by i - 7 pixels.
  assert np.array_equal(shifted[9][10:14, 6:10], image[10:14, 4:8])
  assert np.array_equal(shifted[0][10:14, 0:1], image[10:14, 7:8])
  rotated = pt.perturbation_sequence(image, 'rotate')
  assert not np.array_equal(rotated[0], image)
  assert np.array_equal(rotated[15], image)


def test_noise_difficulty_and_seed(image):
  def spread(difficulty, seed=0):
    frames = pt.perturbation_sequence(image, 'gaussian_noise', difficulty,
                                      np.random.default_rng(seed))
    return np.abs(frames[1:].astype(float) - image).mean(), frames

  easy, first = spread(1)
  hard, _ = spread(3)
  assert 2 < easy < hard
  assert np.array_equal(first, spread(1)[1])
  assert not np.array_equal(first, spread(1, seed=1)[1])


def test_errors(image):
  with pytest.raises(ValueError, match='wobble'):
    pt.perturbation_sequence(image, 'wobble')
  with pytest.raises(ValueError, match='difficulty'):
    pt.perturbation_sequence(image, 'rotate', 4)
  with pytest.raises(ValueError, match='uint8'):
    pt.perturbation_sequence(image.astype(float), 'rotate')
