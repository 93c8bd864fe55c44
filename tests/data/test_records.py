"""Tests for data/records.py and data/writers.py on real files on disk."""

import os

import numpy as np
import pytest
import tensorflow as tf

from data import records
from data import writers


def _png(value: int) -> bytes:
  image = np.full((4, 4, 3), value, np.uint8)
  return tf.io.encode_png(image).numpy()


def test_labeled_roundtrip_is_one_based_in_file(tmp_path):
  path = str(tmp_path / 'train-00000-of-00001')
  writers.write_records(path, [records.serialize_labeled(_png(7), 0),
                               records.serialize_labeled(_png(9), 9)])
  raw = [r.numpy() for r in tf.data.TFRecordDataset(path)]
  assert records.read_example(raw[0])[records.LABEL_KEY].tolist() == [1]
  assert records.read_example(raw[1])[records.LABEL_KEY].tolist() == [10]
  parsed = [records.parse_labeled(r) for r in raw]
  assert [int(p['label']) for p in parsed] == [0, 9]
  image = tf.io.decode_png(parsed[1]['image_bytes'])
  assert int(image[0, 0, 0]) == 9


def test_label_outside_the_classes_names_file_and_record(tmp_path):
  path = str(tmp_path / 'train-00000-of-00001')
  writers.write_records(path, [records.serialize_labeled(_png(7), 0),
                               records.serialize_labeled(_png(9), 9)])
  raw = [r.numpy() for r in tf.data.TFRecordDataset(path)]
  parsed = records.parse_labeled(raw[1], 10, tf.constant(path),
                                 tf.constant(1, tf.int64))
  assert int(parsed['label']) == 9  # 10 classes: label 10 (1-based) fits
  with pytest.raises(tf.errors.InvalidArgumentError) as caught:
    records.parse_labeled(raw[1], 5, tf.constant(path),
                          tf.constant(1, tf.int64))
  assert records.graph_error_line(caught.value) == (
      f'{path}: record 1 has label 10 (1-based in the file), outside 1..5: '
      'the data and the class count (num_classes, dataset_info.json) '
      'disagree')


def test_pseudo_labeled_fields_and_length_check(tmp_path):
  probs = [0.1, 0.7, 0.2]
  record = records.serialize_pseudo_labeled(_png(1), probs)
  fields = records.read_example(record)
  assert fields[records.PSEUDO_LABEL_KEY].tolist() == [1]
  np.testing.assert_allclose(fields[records.PSEUDO_PROB_KEY], [0.7])
  parsed = records.parse_pseudo_labeled(tf.constant(record), 3)
  np.testing.assert_allclose(parsed['probabilities'].numpy(), probs, rtol=1e-6)
  with pytest.raises(tf.errors.InvalidArgumentError, match='shard-7'):
    records.parse_pseudo_labeled(tf.constant(record), 10,
                                 filename=tf.constant('shard-7'))
  # Not a probability vector: refused where training reads it.
  for bad in ([1.5, -0.5, 0.0], [0.2, 0.2, 0.2], [float('nan'), 0.5, 0.5]):
    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
      records.parse_pseudo_labeled(
          tf.constant(records.serialize_pseudo_labeled(_png(1), bad)), 3,
          filename=tf.constant('train-0-00003-of-00008'), index=tf.constant(4))
    line = records.graph_error_line(caught.value)
    assert line.startswith('train-0-00003-of-00008: record 4 has '
                           '`probabilities` that are not a probability '
                           'vector'), line


def test_count_records_and_truncation_names_file(tmp_path):
  path = str(tmp_path / 'extra-00000-of-00002')
  n = writers.write_records(path, [records.serialize_unlabeled(_png(i))
                                   for i in range(5)])
  assert n == 5 and records.count_records(path) == 5
  data = open(path, 'rb').read()
  bad = str(tmp_path / 'extra-00001-of-00002')
  with open(bad, 'wb') as f:
    f.write(data[:-7])
  with pytest.raises(records.RecordError, match='extra-00001-of-00002'):
    records.count_records(bad)
  err = records.find_bad_file([path, bad])
  assert err is not None and 'truncated' in str(err)
  assert records.find_bad_file([path]) is None


def test_write_sharded_is_atomic_and_idempotent(tmp_path):
  recs = [records.serialize_unlabeled(_png(i)) for i in range(10)]
  paths = writers.write_sharded(recs, str(tmp_path), 'train', 3)
  assert [os.path.basename(p) for p in paths] == [
      'train-00000-of-00003', 'train-00001-of-00003', 'train-00002-of-00003']
  assert sum(records.count_records(p) for p in paths) == 10
  mtimes = [os.path.getmtime(p) for p in paths]
  writers.write_sharded(recs, str(tmp_path), 'train', 3)
  assert [os.path.getmtime(p) for p in paths] == mtimes

  def failing():
    yield recs[0]
    raise RuntimeError('killed halfway')
  target = str(tmp_path / 'half')
  with pytest.raises(RuntimeError):
    writers.write_records(target, failing())
  assert not os.path.exists(target)
  assert not [f for f in os.listdir(tmp_path) if '.tmp-' in f]


def test_shard_bounds_cover_everything_evenly():
  bounds = writers.shard_bounds(10, 4)
  assert bounds[0][0] == 0 and bounds[-1][1] == 10
  sizes = [e - s for s, e in bounds]
  assert sum(sizes) == 10 and max(sizes) - min(sizes) <= 1


def test_a_writer_removes_the_temporaries_a_killed_run_left(tmp_path):
  path = str(tmp_path / 'train-00000-of-00001')
  stale = writers.temp_path(path)
  open(stale, 'wb').write(b'half a shard')
  buckets = writers.temp_path(path, suffix='.buckets')
  os.makedirs(buckets)
  other = writers.temp_path(str(tmp_path / 'train-00001-of-00002'))
  open(other, 'wb').write(b'another writer')
  writers.write_records(path, [b'a', b'b'])
  left = sorted(os.listdir(tmp_path))
  # The shard's temp file is gone; the bucket folder (another suffix, owned by
  # the filter's shuffler) and another path's temporary are not touched.
  assert os.path.basename(stale) not in left
  assert os.path.basename(buckets) in left and os.path.basename(other) in left
  assert writers.remove_stale_temps(path, '.buckets') == [buckets]
  assert records.count_records(path) == 2
