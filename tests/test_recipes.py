"""The SVHN recipe scripts, end to end, on a tiny .mat fixture in the real layout.

Proves that the scripts' flags agree with the binaries: prepro -> teacher ->
student (teacher on the fly) -> predict -> filter (stats, selection) ->
offline student -> reassign, with reduced steps and a tiny EfficientNet.
"""

import json
import os
import subprocess

import pytest
import tensorflow as tf

from data import records
from tests import helpers
from tests.data import svhn_fixture

SCRIPTS = os.path.join(helpers.REPO_ROOT, 'local_scripts', 'svhn')


def _run(script, env, *args):
  result = subprocess.run(['bash', os.path.join(SCRIPTS, script), *args],
                          cwd=helpers.REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
  assert result.returncode == 0, (
      f'{script} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}')
  return result


@pytest.mark.slow
def test_svhn_scripts_end_to_end_on_mat_fixture(tmp_path):
  raw = tmp_path / 'raw'
  svhn_fixture.write_svhn_mat_files(str(raw), 60, 20, 40)
  root = tmp_path / 'svhn'
  env = dict(
      os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=helpers.REPO_ROOT,
      DATA_ROOT=str(root), RAW_DIR=str(raw), CKPT_ROOT=str(tmp_path / 'ckpt'),
      TRAIN_STEPS='4', ITERATIONS='2', NUM_SHARDS='4', NUM_IMAGE='3',
      MIN_THRESHOLD='0',  # a 4-step teacher is not confident
      PROC_SVHN_FLAGS='--dev_size=10 --train_shards=2 --eval_shards=2 '
                      '--extra_shards=4',
      EXTRA_FLAGS='--width_coefficient=0.1 --depth_coefficient=0.1 '
                  '--num_train_images=50 --eval_batch_size=8')
  _run('prepro.sh', env)
  proc = root / 'proc'
  assert sorted(os.listdir(proc / 'unlabeled')) == [
      f'extra-0000{i}-of-00004' for i in range(4)]

  _run('train_teacher.sh', env)
  teacher = tmp_path / 'ckpt' / 'teacher'
  assert tf.train.latest_checkpoint(str(teacher)).endswith('ckpt-4')
  results = json.loads((teacher / 'eval_results.json').read_text())['latest']
  assert results['dev']['num_images'] == 10 and results['test']['num_images'] == 20

  _run('run.sh', env)
  student = tmp_path / 'ckpt' / 'exp_1'
  assert tf.train.latest_checkpoint(str(student)).endswith('ckpt-4')
  flags_json = json.loads((student / 'FLAGS.json').read_text())
  assert flags_json['unlabel_ratio'] == 5 and flags_json['randaug_mag'] == 5

  _run('predict.sh', env)
  info = root / 'predict' / 'info'
  assert sum(json.loads((info / f).read_text())['image_num']
             for f in os.listdir(info)) == 40
  _run('filter_unlabel.sh', env, '1')
  _run('filter_unlabel.sh', env, '0')
  filtered = root / 'predict' / 'filter_data' / 'data'
  kept = sum(records.count_records(str(filtered / f))
             for f in os.listdir(filtered) if f.startswith('train-'))
  final = json.loads((root / 'predict' / 'filter_data' / 'stats' /
                      'final_stats.json').read_text())
  # Every class the teacher predicted ends with exactly NUM_IMAGE records.
  assert kept == final['num_written'] > 0
  assert set(final['per_class']) <= {0, 3} and 3 in final['per_class']

  env['STUDENT_DIR'] = str(tmp_path / 'ckpt' / 'offline')
  _run('svhn_offline.sh', env)
  assert tf.train.latest_checkpoint(env['STUDENT_DIR']).endswith('ckpt-4')
  _run('reassign.sh', env)
  reassigned = root / 'predict' / 'reassign'
  assert sum(records.count_records(str(reassigned / f))
             for f in os.listdir(reassigned) if f.startswith('train-')) == kept
