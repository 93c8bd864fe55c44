"""Label maps: ImageNet wnids, numeric folders, .txt and .json files."""

import json

import pytest

from data import label_maps
from tests.conftest import shared_path


def test_imagenet_wnids():
  wnids = label_maps.imagenet_wnids()
  assert len(wnids) == 1000 == len(set(wnids))
  assert list(wnids) == sorted(wnids)            # class order = sorted wnids
  assert wnids[0] == 'n01440764' and wnids[388] == 'n02510455'
  label_map = label_maps.load_label_map()
  assert label_map.label('n02510455') == 388 and label_map.name(1) == wnids[1]


def test_wnids_match_the_class_index_file():
  path = shared_path('images', 'imagenet_class_index.json')
  index = json.loads(path.read_text())
  assert label_maps.imagenet_wnids() == tuple(index[str(i)][0]
                                              for i in range(1000))
  assert label_maps.load_label_map(str(path)).names == (
      label_maps.imagenet_wnids())


def test_numeric_txt_and_json(tmp_path):
  numeric = label_maps.load_label_map('numeric')
  assert numeric.label('7') == 7 and numeric.name(3) == '3'
  with pytest.raises(ValueError, match='cat.*not an integer'):
    numeric.label('cat', '/data/cat')
  txt = tmp_path / 'classes.txt'
  txt.write_text('cat\ndog\n\nbird\n')
  names = label_maps.load_label_map(str(txt))
  assert names.label('bird') == 2 and names.name(1) == 'dog'
  with pytest.raises(ValueError, match=r'/data/fish.*not in the label map'):
    names.label('fish', '/data/fish')
  with pytest.raises(ValueError, match='outside'):
    names.name(3)
  keras_format = tmp_path / 'index.json'
  keras_format.write_text(json.dumps({'1': ['n2', 'b'], '0': ['n1', 'a']}))
  assert label_maps.load_label_map(str(keras_format)).names == ('n1', 'n2')
  plain = tmp_path / 'plain.json'
  plain.write_text(json.dumps({'dog': 1, 'cat': 0}))
  assert label_maps.load_label_map(str(plain)).names == ('cat', 'dog')


def test_bad_label_maps(tmp_path):
  with pytest.raises(FileNotFoundError, match='missing.txt'):
    label_maps.load_label_map(str(tmp_path / 'missing.txt'))
  gaps = tmp_path / 'gaps.json'
  gaps.write_text(json.dumps({'cat': 0, 'dog': 2}))
  with pytest.raises(ValueError, match='gaps.json.*without gaps'):
    label_maps.load_label_map(str(gaps))
  duplicates = tmp_path / 'dup.txt'
  duplicates.write_text('cat\ncat\n')
  with pytest.raises(ValueError, match='duplicate'):
    label_maps.load_label_map(str(duplicates))
