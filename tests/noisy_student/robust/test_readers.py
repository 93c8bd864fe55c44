"""ImageNet-A/-C/-P readers on small trees in the published layouts."""

import os

import numpy as np
import pytest

from data import label_maps
from noisy_student.robust import readers as rd
from tests import robustness_fixtures as fx
from tests.conftest import shared_path

WNIDS = label_maps.imagenet_wnids()
REVOLVER, STINGRAY, GOLDFINCH = 763, 6, 11   # all three in ImageNet-A


# ---------------------------------------------------------------------------
# Preprocessing.
# ---------------------------------------------------------------------------
def test_resize_preprocess():
  image = fx.photo('chelsea', (60, 40))
  out = rd.resize_preprocess(32)(image)
  assert out.shape == (32, 32, 3) and out.dtype == np.float32
  assert 40 < out.mean() < 200
  same = rd.resize_preprocess(32)(fx.photo('coffee', (32, 32)))
  assert np.array_equal(same, fx.photo('coffee', (32, 32)).astype(np.float32))
  with pytest.raises(ValueError, match='RGB'):
    rd.resize_preprocess(32)(np.zeros((8, 8), np.uint8))


# ---------------------------------------------------------------------------
# ImageNet-A.
# ---------------------------------------------------------------------------
def test_imagenet_a_reader(tmp_path):
  root = tmp_path / 'imagenet-a'
  fx.save_image(str(root / WNIDS[STINGRAY] / 'a.jpg'), fx.photo('chelsea'))
  fx.save_image(str(root / WNIDS[STINGRAY] / 'b.jpg'), fx.photo('rocket'))
  fx.save_image(str(root / WNIDS[GOLDFINCH] / 'c.jpg'), fx.photo('coffee'))
  (root / WNIDS[GOLDFINCH] / 'notes.txt').write_text('not an image')
  samples = rd.imagenet_a_samples(str(root))
  assert [(os.path.basename(p), l) for p, l in samples] == [
      ('a.jpg', STINGRAY), ('b.jpg', STINGRAY), ('c.jpg', GOLDFINCH)]
  batches = list(rd.image_batches(samples, rd.resize_preprocess(24), 2))
  assert [b[0].shape for b in batches] == [(2, 24, 24, 3), (1, 24, 24, 3)]
  assert np.concatenate([b[1] for b in batches]).tolist() == [6, 6, 11]
  assert len(list(rd.image_batches(samples, rd.resize_preprocess(8), 2,
                                   max_images=1))) == 1


def test_imagenet_a_reader_with_a_real_photo(tmp_path):
  gun = shared_path('images', 'gun.jpg')
  root = tmp_path / 'imagenet-a'
  os.makedirs(root / WNIDS[REVOLVER])
  os.symlink(gun, root / WNIDS[REVOLVER] / 'gun.jpg')
  (samples,) = rd.imagenet_a_samples(str(root))
  assert samples[1] == REVOLVER
  image = rd.decode_image_file(samples[0])
  assert image.shape == (928, 1592, 3) and image.dtype == np.uint8


def test_imagenet_a_reader_errors(tmp_path):
  root = tmp_path / 'a'
  fx.save_image(str(root / WNIDS[388] / 'panda.jpg'), fx.photo('chelsea'))
  with pytest.raises(ValueError, match=f'{WNIDS[388]}.*not one of the 200'):
    rd.imagenet_a_samples(str(root))
  fx.save_image(str(root / 'n99999999' / 'x.jpg'), fx.photo('chelsea'))
  with pytest.raises(ValueError, match='n99999999.*not in the label map'):
    rd.imagenet_a_samples(str(root))
  with pytest.raises(FileNotFoundError, match='missing'):
    rd.imagenet_a_samples(str(tmp_path / 'missing'))
  broken = tmp_path / 'b' / WNIDS[STINGRAY] / 'broken.jpg'
  os.makedirs(broken.parent)
  broken.write_bytes(b'not a jpeg')
  (sample,) = rd.imagenet_a_samples(str(tmp_path / 'b'))
  with pytest.raises(ValueError, match='broken.jpg'):
    list(rd.image_batches([sample], rd.resize_preprocess(8), 1))


# ---------------------------------------------------------------------------
# ImageNet-C.
# ---------------------------------------------------------------------------
def _imagenet_c_tree(root, corruptions=('fog', 'gaussian_noise'),
                     severities=range(1, 6)):
  for c in corruptions:
    for s in severities:
      for name, label in (('chelsea', STINGRAY), ('coffee', GOLDFINCH)):
        fx.save_image(str(root / c / str(s) / WNIDS[label] /
                          f'{name}.JPEG'), fx.photo(name, (40, 36)))
  return str(root)


def test_imagenet_c_reader(tmp_path):
  root = _imagenet_c_tree(tmp_path / 'c')
  assert rd.corruption_dirs(root) == ['gaussian_noise', 'fog']  # published
  samples = rd.imagenet_c_samples(root, 'fog', 3)
  assert [l for _, l in samples] == [STINGRAY, GOLDFINCH]
  assert all(f'{os.sep}fog{os.sep}3{os.sep}' in p for p, _ in samples)
  images, labels = next(rd.image_batches(samples, rd.resize_preprocess(16),
                                         8))
  assert images.shape == (2, 16, 16, 3) and labels.tolist() == [6, 11]


def test_imagenet_c_reader_errors(tmp_path):
  root = _imagenet_c_tree(tmp_path / 'c', ('fog',), (1, 2))
  with pytest.raises(FileNotFoundError) as missing:
    rd.imagenet_c_samples(root, 'fog', 3)
  assert os.path.join(root, 'fog', '3') in str(missing.value)
  with pytest.raises(ValueError) as unknown:
    rd.imagenet_c_samples(root, 'foggy', 1)
  assert os.path.join(root, 'foggy') in str(unknown.value)
  os.makedirs(os.path.join(root, 'rain_drops', '1'))
  with pytest.raises(ValueError) as unknown_dir:
    rd.corruption_dirs(root)
  assert os.path.join(root, 'rain_drops') in str(unknown_dir.value)


# ---------------------------------------------------------------------------
# ImageNet-P.
# ---------------------------------------------------------------------------
def _frames(n=6, size=32):
  base = fx.photo('chelsea', (size, size))
  return np.stack([np.roll(base, i, axis=1) for i in range(n)])


def test_decode_video_round_trip(tmp_path):
  frames = _frames()
  path = fx.write_video(tmp_path / 'v.mp4', frames)
  decoded = rd.decode_video(path)
  assert decoded.shape == frames.shape and decoded.dtype == np.uint8
  # H.264 yuv420p is lossy: close, not equal.
  assert np.abs(decoded.astype(int) - frames).mean() < 12
  lossless = fx.write_video(tmp_path / 'l.mp4', frames, 'libx264rgb')
  assert np.array_equal(rd.decode_video(lossless), frames)
  out = rd.video_frames(path, rd.resize_preprocess(16))
  assert out.shape == (6, 16, 16, 3) and out.dtype == np.float32


def test_imagenet_p_reader(tmp_path):
  root = tmp_path / 'p'
  for folder in ('translate', 'gaussian_noise', 'gaussian_noise_2'):
    fx.write_video(root / folder / WNIDS[STINGRAY] / 'x.mp4', _frames())
    fx.write_video(root / folder / WNIDS[GOLDFINCH] / 'y.mp4', _frames())
  assert rd.perturbation_dirs(str(root)) == ['gaussian_noise', 'translate']
  assert rd.perturbation_dir(str(root), 'gaussian_noise', 2).endswith(
      'gaussian_noise_2')
  assert rd.perturbation_dir(str(root), 'translate', 3).endswith(
      f'{os.sep}translate')
  samples = rd.imagenet_p_samples(str(root), 'gaussian_noise', 2)
  assert [l for _, l in samples] == [STINGRAY, GOLDFINCH]
  assert all('gaussian_noise_2' in p for p, _ in samples)
  with pytest.raises(FileNotFoundError) as missing:
    rd.imagenet_p_samples(str(root), 'gaussian_noise', 3)
  assert os.path.join(str(root), 'gaussian_noise_3') in str(missing.value)
  with pytest.raises(ValueError, match='wobble'):
    rd.perturbation_dir(str(root), 'wobble')


def test_unreadable_video_names_the_path(tmp_path):
  bad = tmp_path / 'p' / 'translate' / WNIDS[STINGRAY] / 'bad.mp4'
  os.makedirs(bad.parent)
  bad.write_bytes(b'\x00\x01 definitely not an mp4')
  (sample,) = rd.imagenet_p_samples(str(tmp_path / 'p'), 'translate')
  with pytest.raises(ValueError) as err:
    rd.video_frames(sample[0], rd.resize_preprocess(8))
  assert str(bad) in str(err.value)
  with pytest.raises(ValueError, match='nothing.mp4'):
    rd.decode_video(str(tmp_path / 'nothing.mp4'))


# ---------------------------------------------------------------------------
# TFRecords.
# ---------------------------------------------------------------------------
def test_tfrecord_batches(tmp_path):
  images = fx.photos((36, 33))
  pattern = fx.write_labeled(str(tmp_path), images, [3, 1, 4, 1],
                             num_shards=2)
  files = rd.split_files(str(tmp_path), 'test')
  assert len(files) == 2
  batches = list(rd.tfrecord_batches(files, rd.resize_preprocess(36), 3))
  assert [b[0].shape[0] for b in batches] == [3, 1]
  assert np.concatenate([b[1] for b in batches]).tolist() == [3, 1, 4, 1]
  assert batches[0][0].shape[1:] == (36, 36, 3)
  assert len(list(rd.tfrecord_batches(files, rd.resize_preprocess(8), 3,
                                      max_images=2))) == 1
  with pytest.raises(FileNotFoundError, match='dev-'):
    rd.split_files(str(tmp_path), 'dev')
  assert pattern.endswith('test-*')
