"""The SVHN .mat fixture writes the real format-2 layout."""

import numpy as np
import scipy.io

from tests import conftest
from tests.data import svhn_fixture


def _check_layout(path, images, mat_labels, dtype):
  contents = scipy.io.loadmat(path)
  assert contents['__header__'].startswith(b'MATLAB 5.0 MAT-file')
  x, y = contents['X'], contents['y']
  assert x.dtype == np.uint8 and x.shape == (32, 32, 3, len(images))
  assert y.dtype == dtype and y.shape == (len(images), 1)
  np.testing.assert_array_equal(np.transpose(x, (3, 0, 1, 2)), images)
  np.testing.assert_array_equal(y[:, 0], mat_labels)


def test_fixture_writes_mat_files_in_the_real_layout(tmp_path):
  out = svhn_fixture.write_svhn_mat_files(str(tmp_path), 40, 12, 0, seed=1)
  assert set(out) == {'real_images', 'train', 'test'}
  assert not (tmp_path / 'extra_32x32.mat').exists()
  for split in ('train', 'test'):
    data = out[split]
    _check_layout(data['path'], data['images'], data['mat_labels'], np.uint8)
    assert set(np.unique(data['mat_labels'])) <= set(range(1, 11))
    np.testing.assert_array_equal(data['mat_labels'] % 10, data['digits'])
  # Real SVHN crops when the shared copy exists.
  crops = svhn_fixture.real_crops()
  if crops is not None:
    assert out['real_images']
    first = out['train']['images'][0]
    assert (crops == first).all(axis=(1, 2, 3)).any()


def test_fixture_falls_back_to_synthetic_digits(tmp_path, monkeypatch):
  monkeypatch.setattr(conftest, 'SHARED_DIR', tmp_path / 'absent')
  out = svhn_fixture.write_svhn_mat_files(str(tmp_path), 5, 3, 4,
                                          label_dtype=np.float64)
  assert not out['real_images']
  data = out['extra']
  _check_layout(data['path'], data['images'], data['mat_labels'], np.float64)
  # Two colours per image: a digit drawn on a plain background.
  assert all(len(np.unique(img.reshape(-1, 3), axis=0)) >= 2
             for img in data['images'])
