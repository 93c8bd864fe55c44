"""Tests for data/image_folders.py: label maps and folder listings."""

import json
import os

import pytest

from data import image_folders
from noisy_student.runtime import errors
from tests import conftest


def _touch(path, data=b'x'):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(data)


def _labels(root, label_map: str) -> tuple[list[int], list[str]]:
  listing = image_folders.list_labeled(str(root),
                                       image_folders.load_label_map(label_map))
  return [label for _, label in listing.items], listing.class_names


def test_label_maps_of_every_kind(tmp_path):
  root = tmp_path / 'in'
  _touch(root / 'n02510455' / 'a.jpg')
  _touch(root / 'n01443537' / 'b.jpg')
  labels, names = _labels(root, 'imagenet')
  assert labels == [1, 388] and len(names) == 1000
  listing = image_folders.list_labeled(
      str(root), image_folders.load_label_map('imagenet'))
  assert len(listing.empty_classes) == 998
  text = tmp_path / 'classes.txt'
  text.write_text('n02510455\nn01443537\n')
  assert _labels(root, str(text))[0] == [1, 0]
  numeric = tmp_path / 'numeric'
  _touch(numeric / '7' / 'x.png')
  _touch(numeric / '2' / 'y.png')
  assert _labels(numeric, 'numeric') == ([2, 7], [str(i) for i in range(8)])
  with pytest.raises(image_folders.ImageTreeError,
                     match="not in the label map 'numeric': n01443537"):
    _labels(root, 'numeric')


def test_imagenet_class_index_json_file(tmp_path):
  path = conftest.shared_path('images', 'imagenet_class_index.json')
  _touch(tmp_path / 'n02510455' / 'panda.jpg')
  listing = image_folders.list_labeled(
      str(tmp_path), image_folders.load_label_map(str(path)))
  assert listing.items[0][1] == 388


def test_bad_label_map_names_the_field(tmp_path):
  # From Python the field; a binary (errors.naming) shows its flag.
  with pytest.raises(image_folders.ImageTreeError,
                     match='^label_map=.*missing.json.*no such file'):
    image_folders.load_label_map(str(tmp_path / 'missing.json'))
  with errors.naming(lambda field: f'--{field}'), pytest.raises(
      image_folders.ImageTreeError, match='^--label_map=.*missing.json'):
    image_folders.load_label_map(str(tmp_path / 'missing.json'))
  bad = tmp_path / 'gaps.json'
  bad.write_text(json.dumps({'0': ['a', 'x'], '2': ['b', 'y']}))
  with pytest.raises(image_folders.ImageTreeError,
                     match='label_map=.*gaps.json.*without gaps'):
    image_folders.load_label_map(str(bad))


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
  classes = tmp_path / 'classes.txt'
  classes.write_text('b\nc\na\n')
  with_map = image_folders.list_labeled(
      str(root), image_folders.load_label_map(str(classes)))
  assert [label for _, label in with_map.items] == [2, 0, 0]
  assert with_map.empty_classes == ['c']


def test_list_labeled_errors_name_the_folder(tmp_path):
  root = tmp_path / 'in'
  _touch(root / 'a' / 'y.jpg')
  _touch(root / 'zebra' / 'y.jpg')
  only_a = tmp_path / 'only_a.txt'
  only_a.write_text('a\n')
  with pytest.raises(image_folders.ImageTreeError,
                     match='not in the label map .*only_a.txt.*: zebra'):
    image_folders.list_labeled(str(root),
                               image_folders.load_label_map(str(only_a)))
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


def test_fifos_and_undecodable_names_are_reported_not_read(tmp_path):
  """A FIFO named x.png would block a reader forever; a name that is not
  UTF-8 cannot be written to a report: both are listed as other files."""
  _touch(tmp_path / 'cat' / 'a.png')
  os.mkfifo(tmp_path / 'cat' / 'x.png')
  bad = os.fsdecode(b'b\xff.png')
  _touch(os.path.join(str(tmp_path / 'cat'), bad))
  listing = image_folders.list_labeled(str(tmp_path))
  assert [os.path.basename(p) for p, _ in listing.items] == ['a.png']
  assert sorted(os.path.basename(p) for p in listing.ignored_files) == [
      'b\\xff.png', 'x.png']
  json.dumps(listing.ignored_files)  # reportable as text
  os.makedirs(os.path.join(str(tmp_path), os.fsdecode(b'd\xfeg')))
  with pytest.raises(image_folders.ImageTreeError,
                     match=r"class folder 'd\\\\xfeg' has a name that is not "
                     'UTF-8'):
    image_folders.list_labeled(str(tmp_path))
