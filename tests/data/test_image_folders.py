"""Tests for data/image_folders.py: label maps and folder listings."""

import json
import os

import pytest

from data import image_folders
from tests import conftest


def _touch(path, data=b'x'):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(data)


def test_imagenet_class_index_json():
  path = conftest.shared_path('images', 'imagenet_class_index.json')
  names = image_folders.read_label_map(str(path))
  assert len(names) == 1000
  assert names[0] == 'n01440764' and names[388] == 'n02510455'


@pytest.mark.parametrize('text,expected', [
    (json.dumps({'1': ['n2', 'b'], '0': ['n1', 'a']}), ['n1', 'n2']),
    (json.dumps({'0': 'cats', '1': 'dogs'}), ['cats', 'dogs']),
    (json.dumps(['cats', 'dogs']), ['cats', 'dogs']),
    ('cats\n\ndogs\n', ['cats', 'dogs']),
    ('golden retriever\nn01440764 tench, Tinca tinca\n',
     ['golden retriever', 'n01440764']),
])
def test_label_map_formats(tmp_path, text, expected):
  path = tmp_path / 'map'
  path.write_text(text)
  assert image_folders.read_label_map(str(path)) == expected


@pytest.mark.parametrize('text,message', [
    (json.dumps({'0': 'a', '2': 'b'}), 'without gaps'),
    (json.dumps({'zero': 'a'}), 'class indices'),
    (json.dumps({'0': 5}), 'class 0 must map to a folder name'),
    ('a\nb\na\n', "'a' is listed twice"),
    ('{"0": ', 'invalid JSON'),
    ('\n\n', 'no classes'),
])
def test_bad_label_maps_name_the_file(tmp_path, text, message):
  path = tmp_path / 'labels.map'
  path.write_text(text)
  with pytest.raises(image_folders.ImageTreeError,
                     match=f'label_map=.*labels.map.*{message}'):
    image_folders.read_label_map(str(path))
  with pytest.raises(image_folders.ImageTreeError, match='not found'):
    image_folders.read_label_map(str(tmp_path / 'missing.json'))


def test_list_labeled_sorted_classes_ignored_and_hidden_files(tmp_path):
  root = tmp_path / 'in'
  _touch(root / 'b' / 'x1.JPEG')
  _touch(root / 'b' / 'sub' / 'x2.png')
  _touch(root / 'a' / 'y.jpg')
  _touch(root / 'a' / 'notes.txt')
  _touch(root / 'a' / '.hidden.jpg')
  _touch(root / '.cache' / 'z.jpg')
  listing = image_folders.list_labeled(str(root))
  assert listing.class_names == ['a', 'b']
  assert [(os.path.relpath(p, root), label) for p, label in listing.items] == [
      ('a/y.jpg', 0), ('b/sub/x2.png', 1), ('b/x1.JPEG', 1)]
  assert [os.path.basename(p) for p in listing.ignored_files] == ['notes.txt']
  with_map = image_folders.list_labeled(str(root), ['b', 'c', 'a'])
  assert [label for _, label in with_map.items] == [2, 0, 0]
  assert with_map.empty_classes == ['c']


def test_list_labeled_errors_name_the_folder(tmp_path):
  root = tmp_path / 'in'
  _touch(root / 'a' / 'y.jpg')
  _touch(root / 'zebra' / 'y.jpg')
  with pytest.raises(image_folders.ImageTreeError,
                     match='not in the label map: zebra'):
    image_folders.list_labeled(str(root), ['a'])
  _touch(root / 'loose.jpg')
  with pytest.raises(image_folders.ImageTreeError, match='loose.jpg'):
    image_folders.list_labeled(str(root))
  with pytest.raises(image_folders.ImageTreeError, match='no class folders'):
    image_folders.list_labeled(str(root / 'a'))
  with pytest.raises(image_folders.ImageTreeError, match='not a folder'):
    image_folders.list_unlabeled(str(root / 'absent'))


def test_list_unlabeled_walks_the_whole_tree(tmp_path):
  _touch(tmp_path / 'p.jpg')
  _touch(tmp_path / 'deep' / 'er' / 'q.gif')
  listing = image_folders.list_unlabeled(str(tmp_path))
  assert [(os.path.relpath(p, tmp_path), label)
          for p, label in listing.items] == [('deep/er/q.gif', None),
                                             ('p.jpg', None)]
