"""A user's own data and model, end to end through the binaries (README "Your own data").

Photo folders -> images_to_tfrecord -> main with no --task_name (iterate on
such folders: README's own-data block, tests/test_docs_run.py); a
keras.applications backbone as teacher and student; a dataset_info.json
that contradicts its shards; a folder that describes nothing.
"""

import hashlib
import json
import os
import re
import shutil
import sys

import numpy as np
from PIL import Image
import pytest
import skimage.data

from tests import helpers

PHOTOS = {'cat': skimage.data.chelsea, 'cup': skimage.data.coffee,
          'ship': skimage.data.rocket}


def _photo_crops(name: str, count: int, seed: int) -> list[np.ndarray]:
  """`count` random 64x64 crops of a real photo, resized to 32x32."""
  photo = PHOTOS[name]()
  rng = np.random.default_rng(seed)
  crops = []
  for _ in range(count):
    top = rng.integers(0, photo.shape[0] - 64)
    left = rng.integers(0, photo.shape[1] - 64)
    crop = Image.fromarray(photo[top:top + 64, left:left + 64])
    crops.append(np.asarray(crop.resize((32, 32), Image.BILINEAR)))
  return crops


def _write_tree(root, per_class: int, seed: int, flat: bool = False) -> str:
  for name in PHOTOS:
    for i, image in enumerate(_photo_crops(name, per_class, seed)):
      folder = root if flat else os.path.join(root, name)
      os.makedirs(folder, exist_ok=True)
      Image.fromarray(image).save(os.path.join(folder, f'{name}_{i}.png'))
  return str(root)


def _convert(input_dir, output_dir, split, num_shards, *extra):
  helpers.run([sys.executable, '-m', 'data.images_to_tfrecord',
               f'--input_dir={input_dir}', f'--output_dir={output_dir}',
               f'--split={split}', f'--num_shards={num_shards}',
               '--num_workers=1', *extra])


def _tiny(*extra):
  return ['--train_batch_size=8', '--width_coefficient=0.1',
          '--depth_coefficient=0.1', *extra]


@pytest.mark.slow
def test_photo_folders_train_without_task_flags(tmp_path):
  proc = tmp_path / 'proc'
  _convert(_write_tree(tmp_path / 'train', 10, 0), proc, 'train', 2)
  _convert(_write_tree(tmp_path / 'dev', 3, 1), proc, 'dev', 1)
  _convert(_write_tree(tmp_path / 'test', 3, 2), proc, 'test', 1)
  info = json.loads((proc / 'dataset_info.json').read_text())
  assert (info['num_classes'], info['image_size']) == (3, 32)
  assert info['class_names'] == sorted(PHOTOS)
  assert {s: v['num_examples'] for s, v in info['splits'].items()} == {
      'train': 30, 'dev': 9, 'test': 9}

  result = helpers.run([
      sys.executable, '-m', 'noisy_student.main', '--mode=train_and_eval',
      '--use_tpu=false', '--use_bfloat16=false', f'--label_data_dir={proc}',
      f'--model_dir={tmp_path / "model"}', '--train_steps=4',
      '--iterations_per_loop=2', '--steps_per_eval=4', '--eval_batch_size=16',
      *_tiny()])
  evaluated = json.loads(result.stdout[result.stdout.index('{'):])
  assert evaluated['test']['num_images'] == 9
  assert evaluated['dev']['num_images'] == 9

  # iterate on such folders (unlabeled ones too): README's own-data block,
  # run by tests/test_docs_run.py.


@pytest.mark.slow
def test_keras_backbone_teacher_and_student_through_iterate(digits_dir,
                                                            tmp_path):
  work = tmp_path / 'rounds'
  helpers.run([
      sys.executable, '-m', 'noisy_student.iterate', f'--work_dir={work}',
      f'--label_data_dir={digits_dir}',
      f'--unlabel_data_dir={os.path.join(digits_dir, "unlabeled")}',
      '--teacher_model_name=keras:MobileNetV3Small',
      '--student_model_names=keras:MobileNetV3Small',
      '--teacher_train_steps=3', '--student_train_steps=3',
      '--iterations_per_loop=3', '--train_batch_size=16', '--min_threshold=0',
      '--student_dropout_rate=0.3'])
  rows = json.loads((work / 'summary.json').read_text())
  assert [row['model'] for row in rows] == ['keras:MobileNetV3Small'] * 2
  config = json.loads((work / 'round_1' / 'student' /
                       'model_config.json').read_text())
  assert config['model_name'] == 'keras:MobileNetV3Small'
  assert config['dropout_rate'] == 0.3 and config['num_classes'] == 10


def _hashes(root) -> dict:
  out = {}
  for folder, _, files in os.walk(root):
    for name in files:
      with open(os.path.join(folder, name), 'rb') as f:
        out[os.path.join(folder, name)] = hashlib.sha256(f.read()).hexdigest()
  return out


@pytest.mark.parametrize('change, message', [
    (lambda info: info['splits']['train'].update(num_examples=301),
     'split train has 301 images but its 4 shards hold 300'),
    (lambda info: info.update(num_classes=5, class_names=None),
     'split .* has labels up to 9 but num_classes=5'),
])
def test_info_that_contradicts_its_shards_is_named_before_training(
    digits_dir, tmp_path, change, message):
  data = tmp_path / 'data'
  shutil.copytree(digits_dir, data)
  info = json.loads((data / 'dataset_info.json').read_text())
  change(info)
  (data / 'dataset_info.json').write_text(json.dumps(info))
  model_dir = tmp_path / 'model'
  before = _hashes(tmp_path)
  result = helpers.run([
      sys.executable, '-m', 'noisy_student.main', '--mode=train',
      '--use_tpu=false', f'--label_data_dir={data}', f'--model_dir={model_dir}',
      '--train_steps=2', *_tiny()], check=False)
  assert result.returncode == 2, result.stderr[-2000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith('main: error: ') and 'dataset_info.json' in last
  assert re.search(message, last), last
  assert _hashes(tmp_path) == before and not model_dir.exists()
