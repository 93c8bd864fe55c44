"""The SVHN recipe scripts, end to end, on a tiny .mat fixture in the real layout.

Proves that the scripts' flags agree with the binaries: prepro -> teacher ->
student (teacher on the fly) -> predict -> filter (stats, selection) ->
offline student -> reassign, with reduced steps and a tiny EfficientNet.
"""

import json
import os

import pytest
import tensorflow as tf

from data import records
from tests import helpers
from tests import launcher
from tests import test_docs
from tests import test_docs_run
from tests.data import svhn_fixture

SCRIPTS_ROOT = os.path.join(helpers.REPO_ROOT, 'local_scripts')


@pytest.mark.slow
def test_readme_svhn_block_runs_every_script_on_mat_fixture(tmp_path):
  """README.md's "Reproducing SVHN" block, as written, from a folder that
  holds the checkout's local_scripts and data/svhn/raw/*.mat; the scale
  comes from the scripts' own variables (steps, shards, a tiny network)."""
  work = tmp_path / 'work'
  work.mkdir()
  (work / 'local_scripts').symlink_to(SCRIPTS_ROOT)
  svhn_fixture.write_svhn_mat_files(str(work / 'data' / 'svhn' / 'raw'),
                                    60, 20, 40)
  env = dict(
      os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=helpers.REPO_ROOT,
      TRAIN_STEPS='4', ITERATIONS='2', NUM_SHARDS='4', NUM_IMAGE='3',
      MIN_THRESHOLD='0',  # a 4-step teacher is not confident
      PROC_SVHN_FLAGS='--dev_size=10 --train_shards=2 --eval_shards=2 '
                      '--extra_shards=4',
      EXTRA_FLAGS='--width_coefficient=0.1 --depth_coefficient=0.1 '
                  '--num_train_images=50 --eval_batch_size=8')
  [block] = [b for b in test_docs.BLOCKS if b.doc.name == 'README.md'
             and b.marker and 'run by tests/test_recipes.py' in b.marker]
  test_docs_run.run_bash(block.text, work, launcher.shim_env(env), str(block))

  root = work / 'data' / 'svhn'
  proc = root / 'proc'
  assert sorted(os.listdir(proc / 'unlabeled')) == [
      f'extra-0000{i}-of-00004' for i in range(4)]
  teacher = work / 'ckpt' / 'svhn' / 'teacher'
  assert tf.train.latest_checkpoint(str(teacher)).endswith('ckpt-4')
  results = json.loads((teacher / 'eval_results.json').read_text())['latest']
  assert results['dev']['num_images'] == 10 and results['test']['num_images'] == 20

  student = work / 'ckpt' / 'svhn' / 'exp_1'
  assert tf.train.latest_checkpoint(str(student)).endswith('ckpt-4')
  flags_json = json.loads((student / 'FLAGS.json').read_text())
  assert flags_json['unlabel_ratio'] == 5 and flags_json['randaug_mag'] == 5

  info = root / 'predict' / 'info'
  assert sum(json.loads((info / f).read_text())['image_num']
             for f in os.listdir(info)) == 40
  filtered = root / 'predict' / 'filter_data' / 'data'
  kept = sum(records.count_records(str(filtered / f))
             for f in os.listdir(filtered) if f.startswith('train-'))
  final = json.loads((root / 'predict' / 'filter_data' / 'stats' /
                      'final_stats.json').read_text())
  # Every class the teacher predicted ends with exactly NUM_IMAGE records.
  assert kept == final['num_written'] > 0
  assert set(final['per_class']) <= {0, 3} and 3 in final['per_class']

  offline = work / 'ckpt' / 'svhn' / 'offline'
  assert tf.train.latest_checkpoint(str(offline)).endswith('ckpt-4')
  reassigned = root / 'predict' / 'reassign'
  assert sum(records.count_records(str(reassigned / f))
             for f in os.listdir(reassigned) if f.startswith('train-')) == kept