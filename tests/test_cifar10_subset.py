"""local_scripts/cifar10_subset: the split, the recipe it passes, a tiny run."""

import json
import os
import re
import shlex
import subprocess
import sys

from absl import flags
import numpy as np
import pytest

from noisy_student import iterate
from noisy_student.core import defaults
from tests import helpers

SCRIPTS = os.path.join(helpers.REPO_ROOT, 'local_scripts', 'cifar10_subset')
sys.path.insert(0, SCRIPTS)
import prepare_subset  # pylint: disable=g-import-not-at-top,wrong-import-position


def _iterate_argv(script: str, data_root: str) -> list[str]:
  """run.sh's iterate command line, its variables set to their defaults."""
  with open(script) as f:
    text = f.read()
  values = dict(re.findall(r'^(\w+)="\$\{\w+:-([^}]*)\}"', text, re.M))
  values['DATA_ROOT'] = data_root
  command = text[text.index('-m noisy_student.iterate') +
                 len('-m noisy_student.iterate'):].replace('\\\n', ' ')
  argv = shlex.split(command)
  return [re.sub(r'\$(\w+)', lambda m: values[m.group(1)], a) for a in argv]


def test_run_sh_passes_the_preset_of_core_defaults(tmp_path):
  # The script and `ablate --preset=cifar10_subset` must train the same recipe.
  helpers.digits_data(str(tmp_path / 'proc'))
  argv = _iterate_argv(os.path.join(SCRIPTS, 'run.sh'), str(tmp_path))
  assert '--min_threshold=0.5' in argv and '--seed=0' in argv
  fv = flags.FlagValues()
  iterate.define_flags(fv)
  fv(['iterate', *argv])
  config = iterate.config_from_flags(fv)
  preset = defaults.PRESETS['cifar10_subset']
  assert config.teacher == preset.teacher
  assert config.student == preset.student
  assert config.deterministic  # as ablate's default: the stages are shared
  assert (config.width_coefficient, config.depth_coefficient,
          config.min_threshold) == (preset.width_coefficient,
                                    preset.depth_coefficient,
                                    preset.min_threshold)


def test_split_is_per_class_disjoint_and_seeded():
  labels = np.repeat(np.arange(10), 130)
  split = prepare_subset.split_indices(labels, 100, 20, seed=3)
  assert [len(split[k]) for k in ('train', 'dev', 'unlabeled')] == [1000, 200,
                                                                    100]
  for part in split.values():
    assert np.bincount(labels[part], minlength=10).std() == 0
  everything = np.concatenate(list(split.values()))
  assert len(np.unique(everything)) == len(labels)
  again = prepare_subset.split_indices(labels, 100, 20, seed=3)
  other = prepare_subset.split_indices(labels, 100, 20, seed=4)
  assert all(np.array_equal(split[k], again[k]) for k in split)
  assert not np.array_equal(split['train'], other['train'])


def test_prepare_subset_writes_class_folders(tmp_path):
  rng = np.random.default_rng(0)
  npz = tmp_path / 'tiny.npz'
  np.savez(npz, x_train=rng.integers(0, 256, (40, 32, 32, 3), np.uint8),
           y_train=np.repeat(np.arange(10), 4)[:, None],
           x_test=rng.integers(0, 256, (10, 32, 32, 3), np.uint8),
           y_test=np.arange(10))
  out = tmp_path / 'images'
  helpers.run([sys.executable, os.path.join(SCRIPTS, 'prepare_subset.py'),
               f'--npz={npz}', f'--output_dir={out}', '--per_class_train=2',
               '--per_class_dev=1'])
  count = lambda d: sum(len(f) for _, _, f in os.walk(out / d))
  assert (count('train'), count('dev'), count('unlabeled'),
          count('test')) == (20, 10, 10, 10)
  assert sorted(os.listdir(out / 'train')) == sorted(prepare_subset.CLASSES)
  assert not any(name.endswith('.tmp.png')
                 for _, _, files in os.walk(out) for name in files)


def test_run_sh_refuses_to_start_without_npz(tmp_path):
  result = subprocess.run(['bash', os.path.join(SCRIPTS, 'run.sh')],
                          capture_output=True, text=True, check=False,
                          env={**os.environ, 'DATA_ROOT': str(tmp_path)},
                          timeout=60)
  assert result.returncode != 0
  assert 'NPZ' in result.stderr
  assert not os.listdir(tmp_path)


@pytest.mark.slow
def test_run_sh_end_to_end_on_a_tiny_npz(tmp_path):
  # The user's path: arrays -> PNG folders -> images_to_tfrecord -> iterate.
  rng = np.random.default_rng(0)
  npz = tmp_path / 'tiny.npz'
  np.savez(npz, x_train=rng.integers(0, 256, (60, 32, 32, 3), np.uint8),
           y_train=np.repeat(np.arange(10), 6),
           x_test=rng.integers(0, 256, (20, 32, 32, 3), np.uint8),
           y_test=np.tile(np.arange(10), 2))
  env = {**os.environ, 'NPZ': str(npz), 'DATA_ROOT': str(tmp_path / 'data'),
         'WORK_DIR': str(tmp_path / 'runs'), 'TEACHER_STEPS': '6',
         'STUDENT_STEPS': '6',
         'PER_CLASS_TRAIN': '3', 'PER_CLASS_DEV': '1', 'SEED': '1',
         'MIN_THRESHOLD': '0'}
  helpers.run(['bash', os.path.join(SCRIPTS, 'run.sh')], env=env, timeout=900)
  with open(tmp_path / 'data' / 'proc' / 'dataset_info.json') as f:
    info = json.load(f)
  assert info['num_classes'] == 10
  assert {s: info['splits'][s]['num_examples'] for s in ('train', 'dev', 'test')
          } == {'train': 30, 'dev': 10, 'test': 20}
  with open(tmp_path / 'runs' / 'seed_1' / 'summary.json') as f:
    summary = json.load(f)
  rows = summary['rows'] if isinstance(summary, dict) else summary
  assert len(rows) == 2
  assert all(0.0 <= float(row['test']) <= 1.0 for row in rows)
