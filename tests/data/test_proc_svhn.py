"""proc_svhn on tiny .mat files in the real SVHN format-2 layout."""

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
import tensorflow as tf

from data import proc_svhn
from data import records
from tests import helpers
from tests.data import svhn_fixture


def _read(paths):
  out = []
  for path in paths:
    for raw in tf.data.TFRecordDataset(path):
      fields = records.read_example(raw.numpy())
      out.append((tf.io.decode_image(fields[records.IMAGE_KEY]).numpy(),
                  int(fields[records.LABEL_KEY][0])))
  return out


def _shards(directory, prefix):
  return sorted(os.path.join(directory, f) for f in os.listdir(directory)
                if f.startswith(prefix + '-'))


def test_splits_label_mapping_and_png_round_trip(tmp_path):
  raw = str(tmp_path / 'raw')
  source = svhn_fixture.write_svhn_mat_files(raw, 50, 20, 30)
  out = str(tmp_path / 'proc')
  counts = proc_svhn.prepare(raw, out, dev_size=10, train_shards=4,
                             eval_shards=2, extra_shards=3)
  assert counts == {'train': 40, 'dev': 10, 'test': 20, 'extra': 30}
  assert len(_shards(out, 'train')) == 4 and len(_shards(out, 'dev')) == 2
  assert len(_shards(os.path.join(out, 'unlabeled'), 'extra')) == 3

  # train + dev is a permutation of the .mat train split; labels map
  # 10 -> class 0 -> file label 1, and d -> class d -> file label d + 1.
  written = _read(_shards(out, 'train') + _shards(out, 'dev'))
  images, digits = source['train']
  expected = sorted((im.tobytes(), int(d) + 1) for im, d in zip(images, digits))
  assert sorted((im.tobytes(), l) for im, l in written) == expected
  zero = [l for im, l in written if l == 1]
  assert len(zero) == int(np.sum(digits == 0))
  # test keeps the file order.
  test = _read(_shards(out, 'test'))
  assert [l for _, l in test] == [int(d) + 1 for d in source['test'][1]]
  # The unlabeled set keeps the true label for diagnostics.
  extra = _read(_shards(os.path.join(out, 'unlabeled'), 'extra'))
  assert sorted(l for _, l in extra) == sorted(int(d) + 1 for d in source['extra'][1])


def test_seeded_split_and_jpeg_tolerance(tmp_path):
  raw = str(tmp_path / 'raw')
  svhn_fixture.write_svhn_mat_files(raw, 30, 10, 0)
  kwargs = dict(dev_size=5, train_shards=2, eval_shards=1, include_extra=False)
  proc_svhn.prepare(raw, str(tmp_path / 'a'), seed=0, **kwargs)
  proc_svhn.prepare(raw, str(tmp_path / 'b'), seed=0, **kwargs)
  proc_svhn.prepare(raw, str(tmp_path / 'c'), seed=3, **kwargs)
  dev = lambda d: [l for _, l in _read(_shards(str(tmp_path / d), 'dev'))]
  assert dev('a') == dev('b')
  png = _read(_shards(str(tmp_path / 'a'), 'test'))
  proc_svhn.prepare(raw, str(tmp_path / 'j'), image_format='jpeg', **kwargs)
  jpg = _read(_shards(str(tmp_path / 'j'), 'test'))
  diffs = [np.abs(a.astype(int) - b.astype(int)).mean()
           for (a, _), (b, _) in zip(png, jpg)]
  assert np.mean(diffs) < 2.5 and max(diffs) < 5.0  # JPEG quality 100


def test_bad_inputs_name_the_file(tmp_path):
  raw = tmp_path / 'raw'
  svhn_fixture.write_svhn_mat_files(str(raw), 10, 5, 0)
  os.remove(raw / 'extra_32x32.mat')
  with pytest.raises(proc_svhn.SvhnFormatError, match='extra_32x32.mat'):
    proc_svhn.prepare(str(raw), str(tmp_path / 'o'))  # missing extra file
  bad = raw / 'train_32x32.mat'
  scipy.io.savemat(bad, {'images': np.zeros((32, 32, 3, 2), np.uint8),
                         'y': np.ones((2, 1))})
  with pytest.raises(proc_svhn.SvhnFormatError, match='train_32x32.mat.*keys X and y'):
    proc_svhn.load_mat(str(bad))
  scipy.io.savemat(bad, {'X': np.zeros((28, 28, 3, 2), np.uint8),
                         'y': np.ones((2, 1))})
  with pytest.raises(proc_svhn.SvhnFormatError, match='train_32x32.mat.*shape'):
    proc_svhn.load_mat(str(bad))
  scipy.io.savemat(bad, {'X': np.zeros((32, 32, 3, 2), np.uint8),
                         'y': np.array([[0], [11]])})
  with pytest.raises(proc_svhn.SvhnFormatError, match='1..10'):
    proc_svhn.load_mat(str(bad))


def test_binary_reports_errors_and_is_idempotent(tmp_path):
  raw = str(tmp_path / 'raw')
  svhn_fixture.write_svhn_mat_files(raw, 20, 6, 6)
  out = str(tmp_path / 'proc')
  cmd = [sys.executable, '-m', 'data.proc_svhn', f'--raw_data_dir={raw}',
         f'--output_dir={out}', '--dev_size=4', '--train_shards=2',
         '--eval_shards=1', '--extra_shards=2']
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=helpers.REPO_ROOT)
  subprocess.run(cmd, check=True, capture_output=True, env=env,
                 cwd=helpers.REPO_ROOT)
  shard = os.path.join(out, 'train-00000-of-00002')
  mtime = os.path.getmtime(shard)
  subprocess.run(cmd, check=True, capture_output=True, env=env,
                 cwd=helpers.REPO_ROOT)
  assert os.path.getmtime(shard) == mtime
  os.remove(os.path.join(raw, 'test_32x32.mat'))
  result = subprocess.run(cmd, capture_output=True, text=True, env=env,
                          cwd=helpers.REPO_ROOT)
  assert result.returncode == 1 and 'test_32x32.mat' in result.stderr
