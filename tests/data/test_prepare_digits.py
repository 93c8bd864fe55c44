"""The bundled digits dataset: splits, determinism, idempotence, round trip."""

import os

import numpy as np
import tensorflow as tf

from data import prepare_digits
from data import records
from noisy_student import tasks


def _read(directory, prefix):
  files = sorted(f for f in os.listdir(directory) if f.startswith(prefix + '-'))
  out = []
  for name in files:
    for raw in tf.data.TFRecordDataset(os.path.join(directory, name)):
      fields = records.read_example(raw.numpy())
      image = tf.io.decode_image(fields[records.IMAGE_KEY]).numpy()
      out.append((image, int(fields[records.LABEL_KEY][0]) - 1))
  return files, out


def test_splits_are_exact_disjoint_and_cover_everything(tmp_path):
  out = str(tmp_path / 'digits')
  counts = prepare_digits.prepare_digits(out)
  task = tasks.get_task('digits')
  assert counts == {'test': 400, 'dev': 200, 'train': 300, 'extra': 897}
  assert counts['train'] == task.num_train_images
  assert {k: counts[k] for k in ('dev', 'test')} == dict(task.eval_split_sizes)
  seen = []
  for directory, prefix, shards in ((out, 'train', 4), (out, 'dev', 2),
                                    (out, 'test', 2),
                                    (os.path.join(out, 'unlabeled'), 'extra', 8)):
    files, items = _read(directory, prefix)
    assert len(files) == shards
    seen.extend(items)
  assert len(seen) == 1797
  images, labels = prepare_digits.digit_images()
  # Every written image is one of the 1,797 digits, each exactly once, with
  # its true label (PNG is lossless, so the round trip is exact).
  keys = {(im.tobytes(), int(l)) for im, l in zip(images, labels)}
  assert len(keys) == 1797
  assert {(im.tobytes(), l) for im, l in seen} == keys


def test_conversion_and_normalisation_constants():
  images, labels = prepare_digits.digit_images()
  assert images.shape == (1797, 32, 32, 3) and images.dtype == np.uint8
  assert np.array_equal(images[..., 0], images[..., 2])
  assert sorted(set(labels.tolist())) == list(range(10))
  task = tasks.get_task('digits')
  assert abs(images.mean() - task.mean_rgb[0]) < 0.5
  assert abs(images.std() - task.stddev_rgb[0]) < 0.5


def test_seeded_and_idempotent(tmp_path):
  a, b, c = (str(tmp_path / n) for n in 'abc')
  prepare_digits.prepare_digits(a, seed=0)
  prepare_digits.prepare_digits(b, seed=0)
  prepare_digits.prepare_digits(c, seed=1)
  read = lambda d: [(im.tobytes(), l) for im, l in _read(d, 'test')[1]]
  assert read(a) == read(b)
  assert read(a) != read(c)
  shard = os.path.join(a, 'train-00000-of-00004')
  mtime = os.path.getmtime(shard)
  prepare_digits.prepare_digits(a, seed=0)
  assert os.path.getmtime(shard) == mtime
