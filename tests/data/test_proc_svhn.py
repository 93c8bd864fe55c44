"""proc_svhn on small .mat files in the real SVHN format-2 layout."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import scipy.io

from data import dataset_info
from data import proc_svhn
from data import records
from tests import conftest
from tests.data import readback
from tests.data import svhn_fixture


def _config(raw, out, **changes):
  base = dict(output_dir=str(out), raw_data_dir=str(raw), dev_size=10,
              train_shards=4, eval_shards=2, extra_shards=3)
  base.update(changes)
  return proc_svhn.SvhnConfig(**base)


@pytest.fixture(scope='module')
def raw(tmp_path_factory):
  """50 train, 20 test, 30 extra images; returns (folder, fixture dict)."""
  directory = tmp_path_factory.mktemp('raw')
  return str(directory), svhn_fixture.write_svhn_mat_files(
      str(directory), 50, 20, 30, seed=0)


@pytest.fixture(scope='module')
def prepared(raw, tmp_path_factory):
  out = tmp_path_factory.mktemp('proc')
  info = proc_svhn.prepare_svhn(_config(raw[0], out))
  return str(out), info


def test_mat_labels_map_10_to_class_0():
  np.testing.assert_array_equal(
      proc_svhn.mat_labels_to_classes(np.array([[10], [1], [9], [10]],
                                               np.uint8), 'f.mat'),
      [0, 1, 9, 0])
  np.testing.assert_array_equal(
      proc_svhn.mat_labels_to_classes(np.array([10.0, 3.0]), 'f.mat'), [0, 3])
  for bad in ([0, 1], [11], [2.5]):
    with pytest.raises(proc_svhn.SvhnDataError, match='f.mat.*1..10'):
      proc_svhn.mat_labels_to_classes(np.array(bad), 'f.mat')


def test_shuffle_is_the_originals_global_numpy_sequence():
  state = np.random.get_state()
  try:
    np.random.seed(0)  # what the original main() did, then train, then extra
    train, extra = np.arange(50), np.arange(30)
    np.random.shuffle(train)
    np.random.shuffle(extra)
  finally:
    np.random.set_state(state)
  ours = proc_svhn.shuffled_orders(50, 30, seed=0)
  np.testing.assert_array_equal(ours[0], train)
  np.testing.assert_array_equal(ours[1], extra)


def test_split_sizes_layout_and_info(prepared):
  out, info = prepared
  counts = {name: s['num_examples'] for name, s in info['splits'].items()}
  assert counts == {'train': 40, 'dev': 10, 'test': 20, 'extra': 30}
  names = sorted(os.listdir(out))
  assert names == ['dataset_info.json', 'dev-00000-of-00002',
                   'dev-00001-of-00002', 'test-00000-of-00002',
                   'test-00001-of-00002', 'train-00000-of-00004',
                   'train-00001-of-00004', 'train-00002-of-00004',
                   'train-00003-of-00004', 'unlabeled']
  assert sorted(os.listdir(os.path.join(out, 'unlabeled'))) == [
      f'extra-0000{i}-of-00003' for i in range(3)]
  on_disk = json.load(open(os.path.join(out, 'dataset_info.json')))
  assert on_disk['config']['seed'] == 0
  assert on_disk['config']['image_format'] == 'png'
  assert on_disk['config']['sources']['extra']['file'] == 'extra_32x32.mat'
  assert on_disk['splits']['dev']['num_examples'] == 10


def test_round_trip_is_exact_with_the_documented_order_and_labels(raw,
                                                                  prepared):
  source = raw[1]
  out, _ = prepared
  train_order, extra_order = proc_svhn.shuffled_orders(50, 30, seed=0)
  expected = {
      'dev': ('train', train_order[:10]),
      'train': ('train', train_order[10:]),
      'test': ('test', np.arange(20)),
  }
  for split, (name, rows) in expected.items():
    images, labels, raw_records = readback.read_split(out, split)
    np.testing.assert_array_equal(np.stack(images),
                                  source[name]['images'][rows])
    assert labels == source[name]['digits'][rows].tolist()
    # In the file: .mat label 10 (digit 0) -> 1, digit d -> d + 1.
    file_labels = [int(records.read_example(r)[records.LABEL_KEY][0])
                   for r in raw_records]
    mat = source[name]['mat_labels'][rows]
    assert file_labels == np.where(mat == 10, 1, mat + 1).tolist()
  images, labels, _ = readback.read_split(os.path.join(out, 'unlabeled'),
                                          'extra', labeled=False)
  np.testing.assert_array_equal(np.stack(images),
                                source['extra']['images'][extra_order])
  assert labels == source['extra']['digits'][extra_order].tolist()


def test_same_seed_same_bytes_other_seed_other_dev_split(raw, prepared,
                                                         tmp_path):
  out, _ = prepared
  again = tmp_path / 'again'
  proc_svhn.prepare_svhn(_config(raw[0], again))
  for split in ('train', 'dev', 'test'):
    assert (readback.file_bytes(readback.shard_files(out, split)) ==
            readback.file_bytes(readback.shard_files(str(again), split)))
  other = tmp_path / 'seed1'
  proc_svhn.prepare_svhn(_config(raw[0], other, seed=1,
                                 include_extra=False))
  dev0 = readback.read_split(out, 'dev')[0]
  dev1 = readback.read_split(str(other), 'dev')[0]
  assert not np.array_equal(np.stack(dev0), np.stack(dev1))
  assert not (other / 'unlabeled').exists()


def test_rerun_is_idempotent_and_other_settings_need_overwrite(raw, tmp_path):
  out = tmp_path / 'proc'
  proc_svhn.prepare_svhn(_config(raw[0], out, include_extra=False))
  files = readback.shard_files(str(out), 'train')
  mtimes = [os.path.getmtime(f) for f in files]
  info = proc_svhn.prepare_svhn(_config(raw[0], out, include_extra=False))
  assert info['shards_written'] == 0 and info['shards_kept'] == 8
  assert [os.path.getmtime(f) for f in files] == mtimes
  with pytest.raises(dataset_info.DatasetInfoError, match='dev_size'):
    proc_svhn.prepare_svhn(_config(raw[0], out, include_extra=False,
                                   dev_size=5))
  info = proc_svhn.prepare_svhn(_config(raw[0], out, include_extra=False,
                                        dev_size=5, overwrite=True))
  assert info['splits']['train']['num_examples'] == 45


def test_jpeg_output_is_within_tolerance(raw, tmp_path):
  out = tmp_path / 'jpeg'
  proc_svhn.prepare_svhn(_config(raw[0], out, image_format='jpeg',
                                 include_extra=False))
  images, labels, _ = readback.read_split(str(out), 'test')
  source = raw[1]['test']
  diff = np.abs(np.stack(images).astype(int) - source['images']).mean()
  assert 0 < diff < 3.0  # q100, 4:2:0 chroma, as the original
  assert labels == source['digits'].tolist()


def test_float_labels_as_in_resaved_files(tmp_path):
  raw = tmp_path / 'raw'
  data = svhn_fixture.write_svhn_mat_files(str(raw), 12, 4, 0,
                                           label_dtype=np.float64)
  info = proc_svhn.prepare_svhn(_config(raw, tmp_path / 'out', dev_size=2,
                                        train_shards=2, eval_shards=1,
                                        include_extra=False))
  assert info['splits']['test']['label_counts'] == np.bincount(
      data['test']['digits'], minlength=10).tolist()


def _bad_raw(tmp_path, name, contents=None):
  raw = tmp_path / 'raw'
  svhn_fixture.write_svhn_mat_files(str(raw), 12, 4, 0)
  path = raw / name
  if contents is None:
    os.remove(path)
  else:
    scipy.io.savemat(str(path), contents)
  return raw, str(path)


@pytest.mark.parametrize('name,contents,message', [
    ('test_32x32.mat', None, 'file not found'),
    ('train_32x32.mat', {'images': np.zeros((32, 32, 3, 2), np.uint8),
                         'y': np.ones((2, 1), np.uint8)},
     r"no variable 'X' \(found \['images', 'y'\]\)"),
    ('train_32x32.mat', {'X': np.zeros((28, 28, 3, 2), np.uint8),
                         'y': np.ones((2, 1), np.uint8)},
     r'X has shape \(28, 28, 3, 2\)'),
    ('test_32x32.mat', {'X': np.zeros((32, 32, 3, 2), np.float32),
                        'y': np.ones((2, 1), np.uint8)},
     'X has dtype float32'),
    ('test_32x32.mat', {'X': np.zeros((32, 32, 3, 3), np.uint8),
                        'y': np.ones((2, 1), np.uint8)},
     r'y has shape \(2, 1\), expected \(3, 1\)'),
    ('test_32x32.mat', {'X': np.zeros((32, 32, 3, 2), np.uint8),
                        'y': np.array([[3], [0]], np.uint8)},
     r'labels must be integers in 1..10.*y\[1\] = 0'),
])
def test_bad_sources_name_the_file(tmp_path, name, contents, message):
  raw, path = _bad_raw(tmp_path, name, contents)
  with pytest.raises(proc_svhn.SvhnDataError, match=message) as err:
    proc_svhn.prepare_svhn(_config(raw, tmp_path / 'out', dev_size=2,
                                   train_shards=1, eval_shards=1,
                                   include_extra=False))
  assert path in str(err.value)


def test_cut_short_real_svhn_file_names_the_file(tmp_path):
  prefix = conftest.shared_path('data', 'svhn',
                                'train_32x32.mat.prefix-2686976B')
  raw, _ = _bad_raw(tmp_path, 'test_32x32.mat')
  shutil.copy(prefix, raw / 'train_32x32.mat')
  with pytest.raises(proc_svhn.SvhnDataError,
                     match='train_32x32.mat: cannot read it as a MATLAB'):
    proc_svhn.load_mat(str(raw / 'train_32x32.mat'))


def test_too_many_shards_or_dev_images_name_the_flag(raw, tmp_path):
  with pytest.raises(proc_svhn.SvhnDataError, match='--eval_shards=64 is more '
                     'than the 10 dev images'):
    proc_svhn.prepare_svhn(_config(raw[0], tmp_path, eval_shards=64))
  with pytest.raises(proc_svhn.SvhnDataError, match='--dev_size=50'):
    proc_svhn.prepare_svhn(_config(raw[0], tmp_path, dev_size=50))
  assert not list(tmp_path.iterdir())


def test_tfds_source_writes_the_splits_offline(tmp_path):
  tfds = pytest.importorskip('tensorflow_datasets')
  with tfds.testing.mock_data(num_examples=30):  # svhn_cropped, no network
    info = proc_svhn.prepare_svhn(proc_svhn.SvhnConfig(
        output_dir=str(tmp_path), dev_size=10, train_shards=2, eval_shards=1,
        extra_shards=1, include_extra=False))
  counts = {name: s['num_examples'] for name, s in info['splits'].items()}
  assert counts == {'train': 20, 'dev': 10, 'test': 30}
  assert info['source_paths']['train'] == 'tfds:svhn_cropped/train'
  assert (info['num_classes'], info['image_size'], info['flip']) == (10, 32, False)
  assert len(readback.read_split(str(tmp_path), 'train')[0]) == 20


def test_binary_writes_shards_and_reports_errors(raw, tmp_path):
  out = tmp_path / 'cli'
  command = [sys.executable, '-m', 'data.proc_svhn',
             f'--raw_data_dir={raw[0]}', f'--output_dir={out}',
             '--dev_size=10', '--train_shards=2', '--eval_shards=2',
             '--extra_shards=2', '--image_format=jpeg']
  run = subprocess.run(command, capture_output=True, text=True,
                       cwd=conftest.REPO_ROOT, check=False)
  assert run.returncode == 0, run.stderr
  report = json.loads(run.stdout.strip().splitlines()[-1])
  assert report['counts'] == {'train': 40, 'dev': 10, 'test': 20, 'extra': 30}
  assert 'train: 40 images in' in run.stderr  # the progress line
  assert len(readback.shard_files(str(out / 'unlabeled'), 'extra')) == 2
  run = subprocess.run(command[:4] + [f'--output_dir={tmp_path / "x"}',
                                      '--dev_size=999'],
                       capture_output=True, text=True, cwd=conftest.REPO_ROOT,
                       check=False)
  assert run.returncode == 2
  assert 'proc_svhn: error: --dev_size=999 leaves no training images' in (
      run.stderr)
