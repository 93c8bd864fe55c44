"""make_perturbed: ImageNet-P-layout .mp4 sequences of a small TFRecord set."""

import os

import numpy as np
import pytest

from data import label_maps
from data import make_perturbed
from data import perturbations as pt
from noisy_student.robust import readers
from tests import robustness_fixtures as fx


def test_encode_mp4_is_lossless(tmp_path):
  frames = pt.perturbation_sequence(fx.photo('rocket', (33, 31)), 'rotate')
  path = tmp_path / 'v.mp4'
  path.write_bytes(make_perturbed.encode_mp4(frames))
  assert np.array_equal(readers.decode_video(str(path)), frames)
  lossy = tmp_path / 'lossy.mp4'
  lossy.write_bytes(make_perturbed.encode_mp4(frames[:, :30, :32],
                                              codec='libx264'))
  assert readers.decode_video(str(lossy)).shape == (31, 30, 32, 3)
  with pytest.raises(ValueError, match='even'):
    make_perturbed.encode_mp4(frames, codec='libx264')


def test_make_perturbed_layout(tmp_path):
  images, labels = fx.digits(3)
  pattern = fx.write_labeled(str(tmp_path / 'clean'), images, labels)
  out = str(tmp_path / 'p')
  info = make_perturbed.make_perturbed(
      pattern, out, perturbations=['shot_noise', 'translate'],
      difficulties=[1, 2])
  assert info['folders'] == ['shot_noise', 'shot_noise_2', 'translate']
  assert info['videos_written'] == 9
  assert readers.perturbation_dirs(out) == ['shot_noise', 'translate']
  numeric = label_maps.load_label_map('numeric')
  samples = readers.imagenet_p_samples(out, 'shot_noise', 2, numeric)
  assert sorted(l for _, l in samples) == sorted(labels.tolist())
  path = os.path.join(out, 'translate', str(labels[1]), 'test_000001.mp4')
  expected = pt.perturbation_sequence(images[1], 'translate')
  assert np.array_equal(readers.decode_video(path), expected)
  noisy = readers.decode_video(
      os.path.join(out, 'shot_noise_2', str(labels[0]), 'test_000000.mp4'))
  assert noisy.shape == (31, 32, 32, 3)
  assert np.array_equal(noisy[0], images[0])            # frame 0 is clean
  mtime = os.path.getmtime(path)
  again = make_perturbed.make_perturbed(
      pattern, out, perturbations=['shot_noise', 'translate'],
      difficulties=[1, 2])
  assert again['videos_written'] == 0 and os.path.getmtime(path) == mtime
  with pytest.raises(ValueError, match='tilt'):
    make_perturbed.make_perturbed(pattern, out, perturbations=['tilt'])
