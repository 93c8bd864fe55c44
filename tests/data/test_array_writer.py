"""Tests for data/array_writer.py: real shards on disk, read back by records."""

import json
import os

import numpy as np
import pytest
import skimage.data

from data import array_writer
from data import dataset_info
from data import records
from tests.data import readback


@pytest.fixture(scope='module')
def arrays():
  """12 real 32x32 crops of the coffee photo and labels 0..2."""
  photo = skimage.data.coffee()
  images = np.stack([photo[30 * i:30 * i + 32, 40 * i:40 * i + 32]
                     for i in range(12)])
  return images, np.arange(12) % 3


def _splits(arrays, shards=(2, 3)):
  images, labels = arrays
  order = np.array([5, 3, 11, 0, 7, 1, 9, 2])
  return [
      array_writer.ArraySplit('train', images, labels, order[:5], True,
                              shards[0]),
      array_writer.ArraySplit('extra', images, labels, order[5:], False,
                              shards[1],
                              subdir='unlabeled'),
  ]


CONFIG = {'dataset': 'toy', 'seed': 3}


def test_round_trip_and_info(tmp_path, arrays):
  out = str(tmp_path)
  info = array_writer.write_array_splits(out, _splits(arrays), CONFIG,
                                         num_classes=3)
  images, labels = arrays
  got, got_labels, _ = readback.read_split(out, 'train')
  np.testing.assert_array_equal(np.stack(got), images[[5, 3, 11, 0, 7]])
  assert got_labels == labels[[5, 3, 11, 0, 7]].tolist()
  got, got_labels, raw = readback.read_split(
      os.path.join(out, 'unlabeled'), 'extra', labeled=False)
  np.testing.assert_array_equal(np.stack(got), images[[1, 9, 2]])
  assert got_labels == labels[[1, 9, 2]].tolist()  # kept for diagnostics
  assert all(records.PROBABILITIES_KEY not in records.read_example(r)
             for r in raw)
  assert [len(readback.shard_files(out, 'train'))] == [2]
  on_disk = json.load(open(tmp_path / 'dataset_info.json'))
  assert on_disk['complete'] and on_disk['config'] == CONFIG
  assert on_disk['splits']['train']['num_examples'] == 5
  # Rows 5, 3, 11, 0, 7 have labels 2, 0, 2, 0, 1.
  assert on_disk['splits']['train']['label_counts'] == [2, 1, 2]
  assert on_disk['splits']['extra']['file_pattern'] == (
      'unlabeled/extra-*-of-00003')
  assert info['shards_written'] == 5 and info['shards_kept'] == 0


def test_rerun_keeps_shards_and_rewrites_missing_or_truncated(tmp_path,
                                                              arrays):
  out = str(tmp_path)
  array_writer.write_array_splits(out, _splits(arrays), CONFIG)
  files = readback.shard_files(out, 'train')
  mtimes = [os.path.getmtime(f) for f in files]
  info = array_writer.write_array_splits(out, _splits(arrays), CONFIG)
  assert info['shards_written'] == 0 and info['shards_kept'] == 5
  assert [os.path.getmtime(f) for f in files] == mtimes
  assert array_writer.complete_info(out, CONFIG) is not None
  # A lost shard and a cut-short one (as after a crash) are written again.
  before = readback.file_bytes(files)
  os.remove(files[0])
  with open(files[1], 'r+b') as f:
    f.truncate(os.path.getsize(files[1]) - 10)
  assert array_writer.complete_info(out, CONFIG) is None
  info = array_writer.write_array_splits(out, _splits(arrays), CONFIG)
  assert info['shards_written'] == 2 and info['shards_kept'] == 3
  assert readback.file_bytes(files) == before


def test_other_config_needs_overwrite_which_removes_stale_shards(tmp_path,
                                                                 arrays):
  out = str(tmp_path)
  array_writer.write_array_splits(out, _splits(arrays), CONFIG)
  other = dict(CONFIG, seed=4)
  with pytest.raises(dataset_info.DatasetInfoError,
                     match=r'dataset_info.json.*seed: existing 3, this run 4'):
    array_writer.write_array_splits(out, _splits(arrays), other)
  array_writer.write_array_splits(out, _splits(arrays, shards=(3, 3)), other,
                                  overwrite=True)
  assert [os.path.basename(f) for f in readback.shard_files(out, 'train')] == [
      'train-00000-of-00003', 'train-00001-of-00003', 'train-00002-of-00003']


def test_shards_without_info_are_not_trusted(tmp_path, arrays):
  out = str(tmp_path)
  array_writer.write_array_splits(out, _splits(arrays), CONFIG)
  os.remove(tmp_path / 'dataset_info.json')
  with pytest.raises(dataset_info.DatasetInfoError, match='no dataset_info'):
    array_writer.write_array_splits(out, _splits(arrays), CONFIG)


def test_bad_splits_are_rejected_with_the_split_name(tmp_path, arrays):
  images, labels = arrays
  with pytest.raises(ValueError, match="'train'.*6 shards for only 5"):
    array_writer.write_array_splits(str(tmp_path), [array_writer.ArraySplit(
        'train', images, labels, np.arange(5), True, 6)], CONFIG)
  with pytest.raises(ValueError, match="'dev'.*uint8"):
    array_writer.write_array_splits(str(tmp_path), [array_writer.ArraySplit(
        'dev', images.astype(np.float32), labels, None, True, 1)], CONFIG)
  with pytest.raises(ValueError, match="'dev'.*needs labels"):
    array_writer.write_array_splits(str(tmp_path), [array_writer.ArraySplit(
        'dev', images, None, None, True, 1)], CONFIG)
  assert not os.listdir(tmp_path)
