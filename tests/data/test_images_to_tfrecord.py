"""images_to_tfrecord on a tree of real photos with one broken file."""

import json
import os

import numpy as np
import pytest
import skimage.data
import tensorflow as tf
from PIL import Image

from data import image_codec
from data import images_to_tfrecord
from data import records
from tests.conftest import SHARED_DIR


def _photo_tree(root):
  """Two class folders of real photos (skimage + ../shared when present)."""
  cats, others = root / 'n02123045', root / 'n07920052'
  cats.mkdir(parents=True)
  others.mkdir(parents=True)
  Image.fromarray(skimage.data.chelsea()).save(cats / 'chelsea.png')
  Image.fromarray(skimage.data.chelsea()[::2, ::2]).save(cats / 'small.jpg', quality=90)
  Image.fromarray(skimage.data.coffee()).convert('L').save(others / 'gray.jpg')
  Image.fromarray(skimage.data.rocket()).save(others / 'rocket.gif')
  files = {'chelsea.png', 'small.jpg', 'gray.jpg', 'rocket.gif'}
  shared = SHARED_DIR / 'images'
  if shared.exists():
    for name in ('panda.jpg', 'fish.jpg', 'car.jpg'):
      (others / name).write_bytes((shared / name).read_bytes())
      files.add(name)
  data = (cats / 'small.jpg').read_bytes()
  (cats / 'broken.jpg').write_bytes(data[:len(data) // 3])
  (others / 'notes.txt').write_text('not an image')
  return files


def _read_all(out, split):
  items = []
  for name in sorted(os.listdir(out)):
    if name.startswith(split + '-0'):
      for raw in tf.data.TFRecordDataset(os.path.join(out, name)):
        items.append(records.read_example(raw.numpy()))
  return items


def test_labeled_tree_keeps_good_images_and_reports_broken(tmp_path):
  files = _photo_tree(tmp_path / 'in')
  out = str(tmp_path / 'out')
  summary = images_to_tfrecord.convert(str(tmp_path / 'in'), out,
                                       split='train', num_shards=3)
  assert summary['written'] == len(files) and summary['skipped'] == 1
  skipped = open(os.path.join(out, 'train-skipped.txt')).read()
  assert 'broken.jpg' in skipped
  assert open(os.path.join(out, 'labels.txt')).read().split() == [
      'n02123045', 'n07920052']
  items = _read_all(out, 'train')
  labels = sorted(int(x[records.LABEL_KEY][0]) for x in items)
  assert labels == [1, 1] + [2] * (len(files) - 2)  # 1-based in files
  for item in items:
    pixels = tf.io.decode_image(item[records.IMAGE_KEY], channels=3).numpy()
    assert pixels.ndim == 3 and pixels.shape[2] == 3
  # The PNG was stored byte for byte; the GIF was converted losslessly.
  chelsea = (tmp_path / 'in' / 'n02123045' / 'chelsea.png').read_bytes()
  assert chelsea in {x[records.IMAGE_KEY] for x in items}
  rocket = [x for x in items if image_codec.sniff_format(x[records.IMAGE_KEY]) == 'jpeg'
            and tf.io.decode_image(x[records.IMAGE_KEY]).shape[:2] == skimage.data.rocket().shape[:2]]
  assert rocket


def test_label_map_and_workers_agree(tmp_path):
  _photo_tree(tmp_path / 'in')
  label_map = tmp_path / 'index.json'
  label_map.write_text(json.dumps({'0': ['n07920052', 'espresso'],
                                   '1': ['n02123045', 'tabby']}))
  one = str(tmp_path / 'one')
  many = str(tmp_path / 'many')
  images_to_tfrecord.convert(str(tmp_path / 'in'), one, num_shards=3,
                             label_map_path=str(label_map), num_workers=1)
  images_to_tfrecord.convert(str(tmp_path / 'in'), many, num_shards=3,
                             label_map_path=str(label_map), num_workers=2)
  key = lambda x: (x[records.IMAGE_KEY], int(x[records.LABEL_KEY][0]))
  assert sorted(map(key, _read_all(one, 'train'))) == sorted(map(key, _read_all(many, 'train')))
  cat_label = {int(x[records.LABEL_KEY][0]) for x in _read_all(one, 'train')
               if x[records.IMAGE_KEY] == (tmp_path / 'in' / 'n02123045' / 'chelsea.png').read_bytes()}
  assert cat_label == {2}  # 'n02123045' is class 1 in the map -> file label 2
  bad_map = tmp_path / 'bad.txt'
  bad_map.write_text('n07920052\n')
  with pytest.raises(ValueError, match='n02123045'):
    images_to_tfrecord.convert(str(tmp_path / 'in'), str(tmp_path / 'x'),
                               label_map_path=str(bad_map))


def test_unlabeled_flat_folder_round_trip(tmp_path):
  folder = tmp_path / 'flat'
  folder.mkdir()
  arrays = [skimage.data.chelsea()[:64, :64], skimage.data.coffee()[:48, :40]]
  for i, array in enumerate(arrays):
    Image.fromarray(array).save(folder / f'{i}.png')
  out = str(tmp_path / 'unl')
  summary = images_to_tfrecord.convert(str(folder), out, split='extra',
                                       num_shards=4, unlabeled=True)
  assert summary['num_shards'] == 2  # never more shards than images
  items = _read_all(out, 'extra')
  assert all(records.LABEL_KEY not in x for x in items)
  decoded = sorted(tf.io.decode_image(x[records.IMAGE_KEY]).numpy().tobytes() for x in items)
  assert decoded == sorted(a.tobytes() for a in arrays)  # PNG: exact
