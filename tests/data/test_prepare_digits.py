"""The embedded digits dataset: exact splits, exact pixels, determinism."""

import os
import subprocess
import sys
import time

import numpy as np
from PIL import Image
import pytest
from sklearn import datasets

from data import dataset_info
from data import prepare_digits
from noisy_student.core import datasets as ns_datasets
from tests import conftest
from tests.data import readback

SHARDS = {'train': 4, 'dev': 2, 'test': 2, 'extra': 8}


def _read_all(out):
  """{split: (uint8 [n, 32, 32, 3], labels)} read back from the shards."""
  result = {}
  for split in ('train', 'dev', 'test'):
    images, labels, _ = readback.read_split(out, split)
    result[split] = (np.stack(images), labels)
  images, labels, _ = readback.read_split(os.path.join(out, 'unlabeled'),
                                          'extra', labeled=False)
  result['extra'] = (np.stack(images), labels)
  return result


@pytest.fixture(scope='module')
def written(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('digits'))
  start = time.perf_counter()
  info = prepare_digits.prepare_digits(out)
  seconds = time.perf_counter() - start
  return out, info, seconds


def test_conversion_is_exactly_the_documented_one():
  images, labels = prepare_digits.digit_images()
  digits = datasets.load_digits()
  assert images.shape == (1797, 32, 32, 3) and images.dtype == np.uint8
  np.testing.assert_array_equal(labels, digits.target)
  for i in (0, 1, 500, 1796):
    gray8 = np.array([[int(round(v * 255 / 16)) for v in row]
                      for row in digits.images[i]], np.uint8)
    gray32 = np.asarray(Image.fromarray(gray8, mode='L').resize(
        (32, 32), Image.BILINEAR))
    for channel in range(3):
      np.testing.assert_array_equal(images[i, ..., channel], gray32)


def test_pixel_statistics_match_the_task_table():
  images, _ = prepare_digits.digit_images()
  assert abs(images.mean() - ns_datasets.DIGITS_MEAN_RGB[0]) < 0.5
  assert abs(images.std() - ns_datasets.DIGITS_STDDEV_RGB[0]) < 0.5


def test_split_counts_shards_and_task_table(written):
  out, info, _ = written
  digits = ns_datasets.get_builtin('digits')
  counts = {name: s['num_examples'] for name, s in info['splits'].items()}
  assert counts == {'test': 400, 'dev': 200, 'train': 300, 'extra': 897}
  assert counts['train'] == digits.num_train_images
  assert {k: counts[k] for k in digits.eval_split_sizes} == dict(
      digits.eval_split_sizes)
  for split, shards in SHARDS.items():
    directory = os.path.join(out, 'unlabeled') if split == 'extra' else out
    files = readback.shard_files(directory, split)
    assert [os.path.basename(f) for f in files] == [
        f'{split}-{i:05d}-of-{shards:05d}' for i in range(shards)]
    assert shards >= 2


def test_splits_are_disjoint_cover_everything_and_round_trip_exactly(written):
  out, _, _ = written
  images, labels = prepare_digits.digit_images()
  indices = prepare_digits.split_indices(0)
  assert sorted(np.concatenate(list(indices.values())).tolist()) == list(
      range(1797))
  read = _read_all(out)
  for split, rows in indices.items():
    np.testing.assert_array_equal(read[split][0], images[rows])
    assert read[split][1] == labels[rows].tolist()  # extra: diagnostic labels
  # Independently of the indices: the files hold the 1,797 images once each.
  on_disk = np.concatenate([read[s][0] for s in read]).reshape(1797, -1)
  expected = images.reshape(1797, -1)
  assert sorted(map(bytes, on_disk)) == sorted(map(bytes, expected))


def test_idempotent(written):
  # (Its speed is a benchmark's job, never a test's: no wall-clock asserts.)
  out, _, _ = written
  files = readback.shard_files(out, 'train')
  mtimes = [os.path.getmtime(f) for f in files]
  info = prepare_digits.prepare_digits(out)
  assert info['shards_written'] == 0 and info['shards_kept'] == 16
  assert [os.path.getmtime(f) for f in files] == mtimes


def test_same_seed_same_bytes_other_seed_other_order(written, tmp_path):
  out, _, _ = written
  again = str(tmp_path / 'again')
  prepare_digits.prepare_digits(again, seed=0)
  for split in ('train', 'dev', 'test'):
    assert (readback.file_bytes(readback.shard_files(out, split)) ==
            readback.file_bytes(readback.shard_files(again, split)))
  other = str(tmp_path / 'seed1')
  prepare_digits.prepare_digits(other, seed=1)
  train0 = readback.read_split(out, 'train')[0]
  train1 = readback.read_split(other, 'train')[0]
  assert len(train1) == 300 and not np.array_equal(train0, train1)
  with pytest.raises(dataset_info.DatasetInfoError,
                     match='seed: existing 1, this run 0'):
    prepare_digits.prepare_digits(other, seed=0)


def test_binary(tmp_path):
  out = tmp_path / 'digits'
  run = subprocess.run([sys.executable, '-m', 'data.prepare_digits',
                        f'--output_dir={out}', '--seed=2'],
                       capture_output=True, text=True,
                       cwd=conftest.REPO_ROOT, check=False)
  assert run.returncode == 0, run.stderr
  assert '"train": 300' in run.stdout
  assert dataset_info.read(str(out))['config']['seed'] == 2
