"""images -> shards on a small tree of real photos with two broken files."""

import json
import os
import shutil

import numpy as np
from PIL import Image
import pytest
import skimage.data

from data import image_codec
from data import image_folders
from data import image_shards
from noisy_student.runtime import errors
from data import records
from tests import conftest
from tests.data import photo_tree
from tests.data import readback


@pytest.fixture(scope='module')
def tree(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('tree'))
  return root, photo_tree.make_tree(root)


def _config(root, out, **changes):
  base = dict(input_dir=root, output_dir=str(out), num_shards=3,
              image_format='png')
  base.update(changes)
  return image_shards.ConvertConfig(**base)


@pytest.fixture(scope='module')
def one_worker(tree, tmp_path_factory):
  out = tmp_path_factory.mktemp('one')
  return str(out), image_shards.convert(_config(tree[0], out))


def test_good_images_written_bad_ones_reported_by_path(tree, one_worker):
  _, made = tree
  out, summary = one_worker
  files = made['files']
  assert summary['num_files'] == len(files) + 2
  assert summary['num_written'] == len(files)
  assert summary['num_skipped'] == 2
  assert [path for path, _ in summary['skipped']] == made['broken']
  assert 'truncated' in dict(summary['skipped'])[made['broken'][1]]
  assert summary['num_ignored_files'] == 1  # README.txt
  assert summary['num_reencoded'] == 3  # gray JPEG, GIF, BMP
  lines = open(os.path.join(out, 'train-skipped.txt')).read().splitlines()
  assert [line.split('\t')[0] for line in lines] == made['broken']
  on_disk = json.load(open(os.path.join(out, 'train-summary.json')))
  assert on_disk['complete'] and on_disk['num_skipped'] == 2
  assert open(os.path.join(out, 'labels.txt')).read().split() == [
      'n02123045', 'n03063599', 'n04266014']
  labels = [label for label, _ in files.values()]
  assert summary['classes']['class_counts'] == np.bincount(labels).tolist()


def test_records_hold_the_original_bytes_and_folder_labels(tree, one_worker):
  _, made = tree
  out, _ = one_worker
  images, labels, raw = readback.read_split(out, 'train')
  assert len(raw) == len(made['files'])
  by_bytes = {data: (path, label) for path, (label, data)
              in made['files'].items() if data is not None}
  reencoded = {path: label for path, (label, data) in made['files'].items()
               if data is None}
  found_reencoded = []
  for image, label, record in zip(images, labels, raw):
    stored = records.read_example(record)[records.IMAGE_KEY]
    if stored in by_bytes:
      path, expected_label = by_bytes.pop(stored)
      assert label == expected_label, path
      # TensorFlow's and Pillow's JPEG decoders differ by a few levels.
      pil = image_codec.decode(stored)
      assert image.shape == pil.shape
      assert np.abs(image.astype(int) - pil).mean() < 2.0
    else:
      assert image_codec.detect_format(stored) == 'png'  # --image_format
      matches = [p for p, lab in reencoded.items() if lab == label and
                 Image.open(p).size == (image.shape[1], image.shape[0])]
      assert len(matches) == 1
      original = np.asarray(Image.open(matches[0]).convert('RGB'))
      np.testing.assert_array_equal(image, original)  # PNG: lossless
      found_reencoded.append(matches[0])
  assert not by_bytes
  assert sorted(found_reencoded) == sorted(reencoded)


def test_two_workers_write_the_same_shards_as_one(tree, one_worker, tmp_path):
  out, summary = one_worker
  many = image_shards.convert(_config(tree[0], tmp_path, num_workers=2,
                                      min_images_per_worker=1))
  assert many['skipped'] == summary['skipped']
  assert many['shards'] == summary['shards']
  assert (readback.file_bytes(readback.shard_files(str(tmp_path), 'train')) ==
          readback.file_bytes(readback.shard_files(out, 'train')))


@pytest.mark.parametrize('asked, tasks, images, workers', [
    (8, 4, 30, 1),          # a small folder: written in this process
    (8, 4, 4000, 2),        # two workers' worth of images
    (8, 3, 100000, 3),      # at most one per shard to write
    (2, 64, 100000, 2),     # at most what was asked for
    (8, 0, 0, 1)])
def test_worker_processes_only_for_enough_images(asked, tasks, images,
                                                 workers):
  assert image_shards.worker_count(asked, tasks, images, 2000) == workers


def test_rerun_keeps_shards_and_resumes_after_a_lost_one(tree, tmp_path):
  root, made = tree
  image_shards.convert(_config(root, tmp_path))
  files = readback.shard_files(str(tmp_path), 'train')
  mtimes = [os.path.getmtime(f) for f in files]
  again = image_shards.convert(_config(root, tmp_path))
  assert again['shards_written'] == 0 and again['shards_kept'] == 3
  assert [os.path.getmtime(f) for f in files] == mtimes
  before = readback.file_bytes(files)
  os.remove(files[1])
  resumed = image_shards.convert(_config(root, tmp_path))
  assert resumed['shards_written'] == 1
  assert [p for p, _ in resumed['skipped']] == made['broken']
  assert readback.file_bytes(files) == before


def test_changed_inputs_need_overwrite(tree, tmp_path):
  root = str(tmp_path / 'in')
  shutil.copytree(tree[0], root)
  out = tmp_path / 'out'
  image_shards.convert(_config(root, out))
  photo_tree.save(os.path.join(root, 'n02123045', 'extra.png'),
                  skimage.data.chelsea()[:50, :50], 'PNG')
  with pytest.raises(image_shards.ConversionError,
                     match='train-summary.json was written for other inputs'):
    image_shards.convert(_config(root, out))
  summary = image_shards.convert(_config(root, out, num_shards=2,
                                         overwrite=True))
  assert summary['num_written'] == len(tree[1]['files']) + 1
  assert [os.path.basename(f) for f in readback.shard_files(str(out), 'train')
         ] == ['train-00000-of-00002', 'train-00001-of-00002']


def test_label_map_sets_the_class_order(tree, tmp_path):
  label_map = tmp_path / 'map.json'
  label_map.write_text(json.dumps({'0': ['n04266014', 'rocket'],
                                   '1': ['n02123045', 'cat'],
                                   '2': ['n03063599', 'cup'],
                                   '3': ['n99999999', 'unused']}))
  out = tmp_path / 'out'
  summary = image_shards.convert(_config(tree[0], out, label_map=str(label_map),
                                         split='validation'))
  assert summary['classes']['empty_classes'] == ['n99999999']
  assert not (out / 'labels.txt').exists()
  by_bytes = {data: label for label, data in tree[1]['files'].values()
              if data is not None}
  _, labels, raw = readback.read_split(str(out), 'validation')
  remap = {0: 1, 1: 2, 2: 0}  # sorted-folder class -> class of the map
  for label, record in zip(labels, raw):
    stored = records.read_example(record)[records.IMAGE_KEY]
    if stored in by_bytes:
      assert label == remap[by_bytes[stored]]


def test_later_splits_use_the_first_splits_labels_txt(tree, tmp_path):
  out = tmp_path / 'out'
  image_shards.convert(_config(tree[0], out))
  classes = (out / 'labels.txt').read_text().split()
  # A split with fewer class folders keeps the first split's class indices.
  fewer = tmp_path / 'fewer'
  photo_tree.save(str(fewer / classes[-1] / 'a.png'),
                  skimage.data.coffee()[:40, :40], 'PNG')
  image_shards.convert(_config(str(fewer), out, split='validation',
                               num_shards=1))
  _, labels, _ = readback.read_split(str(out), 'validation')
  assert list(labels) == [len(classes) - 1]
  # A class the first split did not have is refused by name.
  other = tmp_path / 'other'
  photo_tree.save(str(other / 'n00000001' / 'a.png'),
                  skimage.data.coffee()[:40, :40], 'PNG')
  with pytest.raises(image_folders.ImageTreeError,
                     match='labels.txt.*n00000001'):
    image_shards.convert(_config(str(other), out, split='test',
                                 num_shards=1))


def test_flat_or_unlabeled_trees_give_unlabeled_records(tree, tmp_path):
  flat = tmp_path / 'flat'
  flat.mkdir()
  for path in list(tree[1]['files'])[:3]:
    shutil.copy(path, flat / os.path.basename(path))
  summary = image_shards.convert(_config(str(flat), tmp_path / 'a',
                                         split='extra', num_shards=2))
  assert summary['num_written'] == 3 and 'classes' not in summary
  _, labels, raw = readback.read_split(str(tmp_path / 'a'), 'extra',
                                       labeled=False)
  assert labels == [None] * 3
  assert all(records.LABEL_KEY not in records.read_example(r) for r in raw)
  summary = image_shards.convert(_config(tree[0], tmp_path / 'b',
                                         unlabeled=True, split='extra'))
  assert summary['num_written'] == len(tree[1]['files'])
  assert summary['num_skipped'] == 2


def test_bad_settings_name_the_field(tree, tmp_path):
  # From Python the field; a binary (errors.naming) shows its flag.
  with pytest.raises(image_shards.ConversionError,
                     match='^num_shards=500 is more than the'):
    image_shards.convert(_config(tree[0], tmp_path, num_shards=500))
  with errors.naming(lambda field: f'--{field}'), pytest.raises(
      image_shards.ConversionError, match='^--num_shards=500 is more than'):
    image_shards.convert(_config(tree[0], tmp_path, num_shards=500))
  (tmp_path / 'empty').mkdir()
  with pytest.raises(image_shards.ConversionError, match='no image files'):
    image_shards.convert(_config(str(tmp_path / 'empty'), tmp_path / 'o'))
  with pytest.raises(image_shards.ConversionError, match='^num_workers'):
    image_shards.convert(_config(tree[0], tmp_path, num_workers=0))


def test_real_imagenet_photos_with_the_imagenet_label_map(tmp_path):
  images = conftest.shared_path('images')
  class_index = json.load(open(images / 'imagenet_class_index.json'))
  wnid = {int(k): v[0] for k, v in class_index.items()}
  photos = {'panda.jpg': 388, 'lukemelas_img2.jpg': 388, 'fish.jpg': 1,
            'car.jpg': 817, 'gun.jpg': 763, 'cat.jpg': 281}
  root = tmp_path / 'train'
  for name, index in photos.items():
    (root / wnid[index]).mkdir(parents=True, exist_ok=True)
    shutil.copy(images / name, root / wnid[index] / name)
  out = tmp_path / 'out'
  summary = image_shards.convert(_config(
      str(root), out, num_shards=2,
      label_map=str(images / 'imagenet_class_index.json')))
  assert summary['num_written'] == 6 and summary['num_skipped'] == 0
  assert summary['classes']['num_classes'] == 1000
  expected = {(images / name).read_bytes(): index
              for name, index in photos.items()}
  decoded, labels, raw = readback.read_split(str(out), 'train')
  for image, label, record in zip(decoded, labels, raw):
    stored = records.read_example(record)[records.IMAGE_KEY]
    assert expected.pop(stored) == label
    assert image.shape == image_codec.decode(stored).shape
  assert not expected


def test_without_shuffle_records_follow_the_sorted_paths(tree, tmp_path):
  summary = image_shards.convert(_config(tree[0], tmp_path, shuffle=False,
                                         num_shards=1))
  assert summary['config']['seed'] is None
  by_bytes = {data: path for path, (_, data) in tree[1]['files'].items()
              if data is not None}
  _, _, raw = readback.read_split(str(tmp_path), 'train')
  kept = [by_bytes[stored] for stored in
          (records.read_example(r)[records.IMAGE_KEY] for r in raw)
          if stored in by_bytes]
  assert len(kept) == len(by_bytes) and kept == sorted(kept)
