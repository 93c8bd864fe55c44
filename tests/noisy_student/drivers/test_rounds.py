"""The iterative driver: all stages on digits, killed mid-run and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests import helpers


def _command(data_dir: str, work_dir: str) -> list[str]:
  return [
      sys.executable, '-m', 'noisy_student.iterate', f'--work_dir={work_dir}',
      '--task_name=digits', f'--label_data_dir={data_dir}',
      f'--unlabel_data_dir={data_dir}/unlabeled', '--width_coefficient=0.1',
      '--depth_coefficient=0.1', '--teacher_train_steps=20',
      '--student_train_steps=20', '--train_batch_size=16',
      '--iterations_per_loop=10', '--moving_average_decay=0',
      '--min_threshold=0', '--num_image_per_class=20', '--unlabel_ratio=2',
      '--student_randaug_mag=5', '--student_model_names=efficientnet-b0,efficientnet-b0']


def _finished(work_dir: str) -> list[str]:
  """The stages state.json records as finished (not only started)."""
  return [name for name, entry in _state(work_dir).items()
          if entry.get('finished', True)]


def _state(work_dir: str) -> dict:
  path = os.path.join(work_dir, 'state.json')
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)


@pytest.mark.slow
def test_killed_driver_resumes_without_redoing_finished_stages(tmp_path):
  data_dir = helpers.digits_data(str(tmp_path / 'data'))
  work_dir = str(tmp_path / 'work')
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  first = subprocess.Popen(_command(data_dir, work_dir), cwd=helpers.REPO_ROOT,
                           env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
  deadline = time.time() + 600
  while 'round_1/filter' not in _finished(work_dir):
    assert first.poll() is None, 'the driver ended before it was killed'
    assert time.time() < deadline
    time.sleep(0.2)
  first.send_signal(signal.SIGKILL)
  first.wait()
  finished = _finished(work_dir)
  assert 'round_2/student' not in finished
  teacher_index = os.path.join(work_dir, 'round_0', 'teacher', 'checkpoint')
  predictions = os.path.join(work_dir, 'round_1', 'predict', 'predict_label')
  kept = {p: os.path.getmtime(p) for p in
          [teacher_index] + [os.path.join(predictions, n)
                             for n in os.listdir(predictions)]}

  second = subprocess.run(_command(data_dir, work_dir), cwd=helpers.REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
  assert second.returncode == 0, second.stderr[-4000:]
  for stage in finished:
    assert f'[{stage}] finished earlier; skipping' in second.stderr
  assert '[round_2/student] starting' in second.stderr
  assert {p: os.path.getmtime(p) for p in kept} == kept
  state = _state(work_dir)
  assert sorted(s for s in state if s.startswith('round_2')) == [
      'round_2/filter', 'round_2/filter_stats', 'round_2/predict',
      'round_2/student']
  with open(os.path.join(work_dir, 'summary.json')) as f:
    rows = json.load(f)
  assert [(r['round'], r['role']) for r in rows] == [
      (0, 'teacher'), (1, 'student'), (2, 'student')]
  assert all(0 <= r['test'] <= 1 and 0 <= r['dev'] <= 1 for r in rows)
  assert os.path.getsize(os.path.join(work_dir, 'summary.png')) > 1000
  with open(os.path.join(work_dir, 'round_2', 'filter', 'stats',
                         'final_stats.json')) as f:
    final = json.load(f)
  assert final['histogram_spread'] == 0
  assert '| round | role | model |' in second.stdout


def test_empty_filter_output_stops_before_the_student(tmp_path):
  from noisy_student.pseudo import filter_passes  # pylint: disable=g-import-not-at-top
  stats_dir = tmp_path / 'filter' / 'stats'
  stats_dir.mkdir(parents=True)
  final = stats_dir / 'final_stats.json'
  final.write_text(json.dumps({'num_written': 0, 'num_prediction_records': 897}))
  with pytest.raises(ValueError) as error:
    filter_passes.check_filter_output(str(tmp_path / 'filter'), 0.3)
  message = str(error.value)
  assert str(final) in message and '897' in message
  assert 'min_threshold=0.3' in message
  final.write_text(json.dumps({'num_written': 120, 'num_prediction_records': 897}))
  assert filter_passes.check_filter_output(str(tmp_path / 'filter'), 0.3) == 120


def _student_weights(work_dir: str) -> dict:
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  prefix = tf.train.latest_checkpoint(
      os.path.join(work_dir, 'round_1', 'student'))
  return {name: np.asarray(tf.train.load_variable(prefix, name))
          for name, _ in tf.train.list_variables(prefix) if 'model/' in name}


@pytest.mark.slow
def test_deterministic_rerun_repeats_every_weight(digits_dir, tmp_path):
  # --deterministic_input (the demo's default): fixed record order and
  # deterministic ops, so the same seed on the same machine repeats the run
  # bit for bit (docs/results.md says what is not reproducible).
  runs = []
  for name in ('a', 'b'):
    work_dir = str(tmp_path / name)
    command = _command(digits_dir, work_dir)
    command[-1] = '--student_model_names=efficientnet-b0'
    helpers.run(command + ['--deterministic_input', '--seed=3'])
    with open(os.path.join(work_dir, 'summary.json')) as f:
      runs.append((json.load(f), _student_weights(work_dir)))
  (summary_a, weights_a), (summary_b, weights_b) = runs
  def numbers(summary):  # paths name the work dir, which differs
    return [{k: v for k, v in row.items() if k not in ('model_dir', 'exported')}
            for row in summary]
  assert numbers(summary_a) == numbers(summary_b)
  assert summary_a[-1]['exported']['keras'] == os.path.join(
      str(tmp_path / 'a'), 'export.keras')
  assert weights_a and set(weights_a) == set(weights_b)
  for name, value in weights_a.items():
    assert (value == weights_b[name]).all(), name


def test_the_summary_never_points_to_a_deleted_model(tmp_path):
  """A teacher folder deleted once its student finished is skipped on a rerun
  (its outputs are no longer needed); the summary says it is gone."""
  from noisy_student.drivers import rounds as rounds_lib  # pylint: disable=g-import-not-at-top
  student = tmp_path / 'round_1' / 'student'
  student.mkdir(parents=True)
  rows = [{'round': 0, 'role': 'teacher', 'model': 'efficientnet-b0',
           'model_dir': str(tmp_path / 'round_0' / 'teacher'), 'test': 0.5},
          {'round': 1, 'role': 'student', 'model': 'efficientnet-b0',
           'model_dir': str(student), 'test': 0.6}]
  rounds_lib.write_summary(str(tmp_path), rows)
  with open(tmp_path / 'summary.json') as f:
    summary = json.load(f)
  assert summary[0]['model_dir'] is None
  assert summary[0]['model_dir_removed'] == rows[0]['model_dir']
  assert summary[1]['model_dir'] == str(student)
  text = (tmp_path / 'summary.md').read_text()
  assert "Round 0's model was deleted after the rounds" in text
  assert '| 0 | teacher | efficientnet-b0 | 50.00% |' in text


def _iterate_config(*args):
  from absl import flags  # pylint: disable=g-import-not-at-top
  from noisy_student import iterate  # pylint: disable=g-import-not-at-top
  fv = flags.FlagValues()
  iterate.define_flags(fv)
  fv(['iterate', *args])
  return iterate.config_from_flags(fv)


def test_iterate_sizes_its_stages_to_a_folder_that_describes_itself(
    digits_dir, tmp_path):
  """No --task_name: every stage's batch, loop (checkpoints, progress) and
  EMA are sized to the folder's 300 labeled images, as main sizes them
  (core/defaults.py sized_to_data); a flag the user passes keeps its
  meaning and the rest is sized to it; a built-in task keeps the recipe."""
  from noisy_student.core import defaults  # pylint: disable=g-import-not-at-top
  from noisy_student.drivers import rounds as rounds_lib  # pylint: disable=g-import-not-at-top
  base = (f'--work_dir={tmp_path / "w"}', f'--label_data_dir={digits_dir}',
          f'--unlabel_data_dir={digits_dir}/unlabeled')
  # README's own-data command at 20 steps a stage.
  config = _iterate_config(*base, '--teacher_train_steps=20',
                           '--student_train_steps=20')
  for recipe in (config.teacher, config.student):
    train = recipe.train
    assert train.train_batch_size == 32       # 300 images hold 9 batches
    assert train.train_steps == 20
    assert train.iterations_per_loop == 10 == train.save_checkpoints_steps
    assert train.log_every_steps == 10
    assert train.moving_average_decay == 0.99
  # The stage configs the rounds train carry them.
  stage = rounds_lib.stage_config(config, str(tmp_path / 'w' / 't'),
                                  config.teacher_model_name, config.teacher)
  assert (stage.train.train_batch_size, stage.train.iterations_per_loop,
          stage.train.num_train_images) == (32, 10, 300)

  # Unpassed steps: 350 epochs of the folder, as main.
  sized = _iterate_config(*base).student.train
  assert sized.train_steps == 3281
  assert sized.iterations_per_loop == 100       # iterate's recipe at most
  assert sized.moving_average_decay == pytest.approx(1 - 10 / 3281)

  given = _iterate_config(*base, '--train_batch_size=64',
                          '--iterations_per_loop=7',
                          '--moving_average_decay=0.9',
                          '--teacher_train_steps=20')
  assert given.teacher.train.train_steps == 20
  assert given.student.train.train_steps == int(350 * 300 / 64)
  for recipe in (given.teacher, given.student):
    train = recipe.train
    assert train.train_batch_size == 64
    assert train.iterations_per_loop == 7 == train.save_checkpoints_steps
    assert train.log_every_steps == 7
    assert train.moving_average_decay == 0.9

  # A built-in task: iterate's recipe, as before.
  task = _iterate_config(*base, '--task_name=digits')
  assert task.teacher.train == defaults.ITERATE_TEACHER.train
  assert task.student.train == defaults.ITERATE_STUDENT.train
