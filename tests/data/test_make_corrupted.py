"""make_corrupted: corrupted TFRecord / ImageNet-C-layout copies of photos."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from data import corruptions as cr
from data import make_corrupted
from data import records
from noisy_student.robust import readers
from tests import robustness_fixtures as fx

LABELS = [3, 1, 4, 1]


@pytest.fixture(scope='module')
def source(tmp_path_factory):
  directory = tmp_path_factory.mktemp('clean')
  images = fx.photos((48, 40))
  return fx.write_labeled(str(directory), images, LABELS, num_shards=2), images


def _read(path):
  """(uint8 images, 0-based labels) of a labeled TFRecord file."""
  images, labels = [], []
  for serialized in tf.data.TFRecordDataset(path).as_numpy_iterator():
    example = records.read_example(serialized)
    images.append(cr.decode(example[records.IMAGE_KEY]))
    labels.append(int(example[records.LABEL_KEY][0]) - 1)
  return images, labels


def test_tfrecord_output(source, tmp_path):
  pattern, clean = source
  out = str(tmp_path / 'c')
  info = make_corrupted.make_corrupted(
      pattern, out, corruptions=['gaussian_noise', 'defocus_blur', 'contrast'],
      severities=[1, 3, 5], num_shards=2)
  assert info['num_images'] == 4 and len(info['computed']) == 9
  assert info['corruptions'] == ['gaussian_noise', 'defocus_blur', 'contrast']
  with open(os.path.join(out, 'corrupted_info.json')) as f:
    assert json.load(f)['source_file_pattern'] == pattern
  for corruption in ('gaussian_noise', 'defocus_blur', 'contrast'):
    diffs = []
    for severity in (1, 3, 5):
      files = sorted(tf.io.gfile.glob(f'{out}/{corruption}/{severity}/test-*'))
      assert [os.path.basename(f) for f in files] == [
          'test-00000-of-00002', 'test-00001-of-00002']
      images, labels = [], []
      for f in files:
        i, l = _read(f)
        images += i
        labels += l
      assert labels == LABELS
      assert all(i.shape == c.shape for i, c in zip(images, clean))
      diffs.append(np.mean([np.abs(i.astype(float) - c).mean()
                            for i, c in zip(images, clean)]))
    assert diffs[0] > 1.0                       # differs from the clean image
    assert diffs[0] < diffs[1] < diffs[2], (corruption, diffs)
  # The graph-side parser of the input pipelines reads the shards too.
  parsed = next(iter(tf.data.TFRecordDataset(
      f'{out}/contrast/5/test-00000-of-00002').map(records.parse_labeled)))
  assert int(parsed['label']) == 3


def test_seeded_and_idempotent(source, tmp_path):
  pattern, _ = source
  kwargs = dict(corruptions=['shot_noise', 'glass_blur'], severities=[2])
  make_corrupted.make_corrupted(pattern, str(tmp_path / 'a'), **kwargs)
  path = str(tmp_path / 'a' / 'shot_noise' / '2' / 'test-00000-of-00001')
  first = open(path, 'rb').read()
  mtime = os.path.getmtime(path)
  again = make_corrupted.make_corrupted(pattern, str(tmp_path / 'a'), **kwargs)
  assert again['computed'] == [] and os.path.getmtime(path) == mtime
  # Another output with the same seed: identical bytes; another seed: not.
  make_corrupted.make_corrupted(pattern, str(tmp_path / 'b'), **kwargs)
  assert open(str(tmp_path / 'b' / 'shot_noise' / '2' /
                  'test-00000-of-00001'), 'rb').read() == first
  make_corrupted.make_corrupted(pattern, str(tmp_path / 'c'), seed=1,
                                **kwargs)
  assert open(str(tmp_path / 'c' / 'shot_noise' / '2' /
                  'test-00000-of-00001'), 'rb').read() != first
  # Adding a corruption keeps the old ones and extends the info.
  info = make_corrupted.make_corrupted(pattern, str(tmp_path / 'a'),
                                       corruptions=['fog'], severities=[2])
  assert info['computed'] == ['fog/2']
  assert info['corruptions'] == ['shot_noise', 'glass_blur', 'fog']
  with pytest.raises(ValueError, match='corrupted_info.json.*seed'):
    make_corrupted.make_corrupted(pattern, str(tmp_path / 'a'), seed=5,
                                  **kwargs)


def test_records_serialize_deterministically():
  """Byte-identical reruns need a fixed feature order in every process."""
  image = records._bytes_feature(b'png bytes')
  label = records._int64_feature([4])
  forward = records._example({records.IMAGE_KEY: image,
                              records.LABEL_KEY: label})
  backward = records._example({records.LABEL_KEY: label,
                               records.IMAGE_KEY: image})
  assert forward == backward
  assert forward.index(b'image/class/label') < forward.index(b'image/encoded')


def test_folder_output_reads_as_imagenet_c(source, tmp_path):
  pattern, _ = source
  out = str(tmp_path / 'folder')
  make_corrupted.make_corrupted(pattern, out, output_format='folder',
                                corruptions=['pixelate'], severities=[4],
                                max_images=3)
  assert sorted(os.listdir(os.path.join(out, 'pixelate', '4'))) == [
      '1', '3', '4']
  assert readers.corruption_dirs(out) == ['pixelate']
  samples = readers.imagenet_c_samples(
      out, 'pixelate', 4, readers.label_maps.load_label_map('numeric'))
  assert sorted(l for _, l in samples) == [1, 3, 4]
  assert os.path.basename(samples[0][0]) == 'test_000001.png'


def test_errors_name_the_input(tmp_path):
  with pytest.raises(FileNotFoundError, match='nothing-'):
    make_corrupted.make_corrupted(str(tmp_path / 'nothing-*'),
                                  str(tmp_path / 'o'))
  pattern = fx.write_labeled(str(tmp_path / 'small'),
                             [np.zeros((16, 40, 3), np.uint8)], [0])
  with pytest.raises(ValueError, match=r'test-00000-of-00001 record 0.*16x40'):
    make_corrupted.make_corrupted(pattern, str(tmp_path / 'o'),
                                  corruptions=['fog'], severities=[1])
  with pytest.raises(ValueError, match='rain'):
    make_corrupted.make_corrupted(pattern, str(tmp_path / 'o'),
                                  corruptions=['rain'])


def test_two_workers_give_the_same_bytes(source, tmp_path):
  pattern, _ = source
  kwargs = dict(corruptions=['impulse_noise', 'snow'], severities=[3])
  make_corrupted.make_corrupted(pattern, str(tmp_path / 'one'), **kwargs)
  make_corrupted.make_corrupted(pattern, str(tmp_path / 'two'), num_workers=2,
                                **kwargs)
  for corruption in ('impulse_noise', 'snow'):
    one, two = (open(str(tmp_path / d / corruption / '3' /
                         'test-00000-of-00001'), 'rb').read()
                for d in ('one', 'two'))
    assert one == two
