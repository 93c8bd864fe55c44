"""local_scripts/cifar10_4k: the split of the real tarball and a tiny run.

Reads `../shared/data/cifar10_jpeg/cifar10_jpeg.tar.gz` (skips without it),
a few images per class: the experiment itself is not run here.
"""

import json
import os
import sys

import numpy as np
import pytest

from noisy_student.core import defaults
from tests import conftest
from tests import helpers

SCRIPTS = os.path.join(helpers.REPO_ROOT, 'local_scripts', 'cifar10_4k')
sys.path.insert(0, SCRIPTS)
import prepare_split  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.fixture(scope='module')
def tarball():
  return str(conftest.shared_path('data', 'cifar10_jpeg',
                                  'cifar10_jpeg.tar.gz'))


def _files(root, part):
  return sorted(os.path.relpath(os.path.join(d, f), root / part)
                for d, _, names in os.walk(root / part) for f in names)


def test_split_is_seeded_per_class_and_drops_the_unlabeled_labels(
    tarball, tmp_path):
  out = tmp_path / 'images'
  argv = [f'--tarball={tarball}', f'--output_dir={out}', '--max_per_class=9',
          '--labeled_per_class=4', '--dev_per_class=2', '--split_seed=3']
  assert prepare_split.main(argv) == 0
  train, dev = _files(out, 'train'), _files(out, 'dev')
  unlabeled, test = _files(out, 'unlabeled'), _files(out, 'test')
  assert (len(train), len(dev), len(unlabeled), len(test)) == (40, 20, 30, 90)
  assert sorted(os.listdir(out / 'train')) == sorted(prepare_split.CLASSES)
  assert all('/' not in f and f.startswith('u') for f in unlabeled)
  with open(out / 'split.json') as f:
    record = json.load(f)
  sources = record['sources']
  # Disjoint: every training image is in exactly one of the three parts.
  used = [sources[f'{p}/{f}'] for p, files in (('train', train), ('dev', dev),
                                               ('unlabeled', unlabeled))
          for f in files]
  assert len(set(used)) == len(used) == 90
  assert all(s.startswith('train/') for s in used)
  # The bytes are the tarball's JPEGs, unchanged.
  first = sources[f'unlabeled/{unlabeled[0]}']
  images = prepare_split.read_tarball(tarball, max_per_class=9)
  part, name, number = first.split('/')
  assert (out / 'unlabeled' / unlabeled[0]).read_bytes() == images[
      (part, name, int(number[:-4]))]
  # The split seed decides the split; a rerun with the same settings does
  # nothing, one with other settings is refused.
  assert prepare_split.main(argv) == 0
  with pytest.raises(SystemExit, match='made with'):
    prepare_split.main(argv[:-1] + ['--split_seed=4'])
  other = tmp_path / 'other'
  prepare_split.main([a.replace(str(out), str(other)) for a in argv[:-1]]
                     + ['--split_seed=4'])
  assert _files(other, 'train') != train
  # A folder the script did not write is never used or replaced.
  mine = tmp_path / 'mine'
  mine.mkdir()
  (mine / 'keep.txt').write_text('x')
  with pytest.raises(SystemExit, match='was not written by this script'):
    prepare_split.main([a.replace(str(out), str(mine)) for a in argv])
  assert os.listdir(mine) == ['keep.txt']


def test_split_plan_is_pure_and_balanced():
  images = {('train', c, n): b'' for c in prepare_split.CLASSES
            for n in range(20)}
  images.update({('test', c, n): b'' for c in prepare_split.CLASSES
                 for n in range(3)})
  plan = prepare_split.plan(images, 5, 2, split_seed=0)
  assert plan == prepare_split.plan(images, 5, 2, split_seed=0)
  for c in prepare_split.CLASSES:
    assert sum(k.startswith(f'train/{c}/') for k in plan) == 5
    assert sum(k.startswith(f'dev/{c}/') for k in plan) == 2
  assert sum(k.startswith('unlabeled/') for k in plan) == 130
  with pytest.raises(SystemExit, match='labeled_per_class'):
    prepare_split.plan(images, 19, 2, split_seed=0)


def test_preset_is_registered_with_the_four_arms_budget():
  preset = defaults.PRESETS['cifar10_4k']
  assert preset.teacher.noise.augment_name is None  # the teacher is clean
  assert preset.student.noise.augment_name == 'v1'
  assert preset.student.train.unlabel_ratio > 0


@pytest.mark.slow
def test_run_sh_end_to_end_on_a_few_images_per_class(tarball, tmp_path):
  # The user's path: tarball -> JPEG folders -> images_to_tfrecord -> ablate.
  env = {**os.environ, 'TARBALL': tarball, 'DATA_ROOT': str(tmp_path / 'data'),
         'WORK_DIR': str(tmp_path / 'runs'), 'SEEDS': '2',
         'MAX_PER_CLASS': '8', 'LABELED_PER_CLASS': '4', 'DEV_PER_CLASS': '1',
         'EXTRA_FLAGS': '--teacher_steps=8 --student_steps=8 '
                        '--width_coefficient=0.1 --depth_coefficient=0.1 '
                        '--min_threshold=0'}
  helpers.run(['bash', os.path.join(SCRIPTS, 'run.sh')], env=env, timeout=900)
  with open(tmp_path / 'data' / 'proc' / 'dataset_info.json') as f:
    info = json.load(f)
  assert info['class_names'] == list(prepare_split.CLASSES)
  assert {s: info['splits'][s]['num_examples'] for s in ('train', 'dev', 'test')
          } == {'train': 40, 'dev': 10, 'test': 80}
  with open(tmp_path / 'runs' / 'ablation.json') as f:
    table = json.load(f)
  assert [r['arm'] for r in table['rows']] == ['teacher', 'control', 'full',
                                               'no_noise']
  assert table['settings']['dataset'] == 'cifar10_4k'
  for arm in ('teacher', 'control', 'full', 'no_noise'):
    with np.load(tmp_path / 'runs' / 'predictions' / 'seed_2' /
                 f'{arm}-test.npz') as p:
      assert len(p['label']) == 80
  assert table['runs']['2']['seconds'] > 0 and table['runs']['2']['machine']
  # The teacher's pseudo-labels traced to the unlabeled images' true classes.
  import pseudo_label_accuracy  # pylint: disable=g-import-not-at-top
  seed_dir = tmp_path / 'runs' / 'seed_2'
  assert pseudo_label_accuracy.main([f'--data_root={tmp_path / "data"}',
                                     f'--seed_dir={seed_dir}']) == 0
  with open(seed_dir / 'pseudo_label_accuracy.json') as f:
    accuracy = json.load(f)
  assert accuracy['unlabeled_images']['count'] == 30  # 3 per class
  with open(seed_dir / 'round_1' / 'filter' / 'stats' / 'final_stats.json') as f:
    kept = json.load(f)['num_written']
  assert accuracy['kept_records']['count'] == kept > 0
  assert 0 < accuracy['kept_distinct_images']['count'] <= 30
  for part in ('unlabeled_images', 'kept_records'):
    assert 0.0 <= accuracy[part]['accuracy'] <= 1.0


def test_tuning_candidates_parse_into_recipes():
  import tune  # pylint: disable=g-import-not-at-top
  preset = defaults.PRESETS['cifar10_4k']
  candidate = tune.parse_candidate('r3_m9_t0.8_s1500_lr0.096')
  assert candidate == {'unlabel_ratio': 3.0, 'randaug_magnitude': 9,
                       'min_threshold': 0.8, 'steps': 1500, 'rate': 0.096}
  recipe = tune.student_recipe(preset.student, candidate, 1500)
  assert (recipe.train.train_steps, recipe.train.unlabel_ratio,
          recipe.noise.randaug_magnitude) == (1500, 3.0, 9)
  assert recipe.train.base_learning_rate == 0.096
  # The final rate keeps its ratio to the base rate.
  assert (recipe.train.final_base_lr / recipe.train.base_learning_rate ==
          pytest.approx(preset.student.train.final_base_lr /
                        preset.student.train.base_learning_rate))
  teacher, name = tune.teacher_recipe(preset.teacher, '8000@0.096')
  assert name == 'teacher_8000_lr0.096' and teacher.train.train_steps == 8000
  assert tune.teacher_recipe(preset.teacher, '2000')[1] == 'teacher_2000'
  with pytest.raises(SystemExit, match='r<ratio>'):
    tune.parse_candidate('m5')
