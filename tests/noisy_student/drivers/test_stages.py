"""drivers/stages.py: the resumable stage store (state.json)."""

from __future__ import annotations

import json
import os

import pytest

from noisy_student.drivers import stages


def test_stage_state_reuses_only_stages_with_the_same_settings(tmp_path):
  from noisy_student.runtime import errors  # pylint: disable=g-import-not-at-top
  calls = []
  settings = {'train': {'train_steps': 2, 'seed': 0}, 'model': 'b0'}
  state = stages.StageState(str(tmp_path))
  assert state.run('round_0/teacher', lambda: calls.append(1) or 7,
                   settings) == 7
  again = stages.StageState(str(tmp_path))  # a rerun reads state.json
  assert again.run('round_0/teacher', lambda: calls.append(2) or 8,
                   settings) == 7
  assert calls == [1]
  changed = {'train': {'train_steps': 6, 'seed': 0}, 'model': 'b0'}
  with pytest.raises(errors.ConfigError,
                     match=r'round_0/teacher finished with other settings '
                     r'\(train.train_steps: 2 -> 6\); .*pass force'):
    again.run('round_0/teacher', lambda: 9, changed)
  forced = stages.StageState(str(tmp_path), force=True)
  assert forced.run('round_0/teacher', lambda: 9, changed) == 9
  with open(tmp_path / 'state.json') as f:
    assert json.load(f)['round_0/teacher']['settings'] == changed


def test_forced_redo_moves_earlier_outputs_aside_and_starts_from_nothing(
    tmp_path):
  """--force must not resume the old model's checkpoints in the same folder."""
  teacher, student = tmp_path / 'teacher', tmp_path / 'student'

  def train(folder, text):
    def fn():
      assert not folder.exists(), 'a redo must start from an empty folder'
      folder.mkdir()
      (folder / 'ckpt').write_text(text)
      return text
    return fn

  old = {'augment_name': 'v1'}
  state = stages.StageState(str(tmp_path), clock=lambda: 0.0)
  state.run('round_0/teacher', train(teacher, 't'), {}, outputs=[str(teacher)])
  state.run('round_1/student', train(student, 'old'), old,
            outputs=[str(student)])
  forced = stages.StageState(str(tmp_path), force=True, clock=lambda: 0.0)
  assert forced.run('round_0/teacher', train(teacher, 'x'), {},
                    outputs=[str(teacher)]) == 't'  # unchanged: skipped
  assert forced.run('round_1/student', train(student, 'new'),
                    {'augment_name': None}, outputs=[str(student)]) == 'new'
  assert (tmp_path / 'student.replaced-19700101-000000' / 'ckpt').read_text() == 'old'
  assert (student / 'ckpt').read_text() == 'new'


def test_a_skipped_stage_must_still_have_its_outputs(tmp_path):
  teacher, predict = tmp_path / 'teacher', tmp_path / 'predict'
  calls = []

  def stage(folder, name):
    def fn():
      calls.append(name)
      folder.mkdir()
      return name
    return fn

  def rerun():
    state = stages.StageState(str(tmp_path), clock=lambda: 0.0)
    state.run('round_0/teacher', stage(teacher, 'teacher'), {},
              outputs=[str(teacher)])
    state.run('round_1/predict', stage(predict, 'predict'), {},
              outputs=[str(predict)])

  rerun()
  teacher.rmdir()  # deleted, but the stage after it finished: not needed
  rerun()
  assert calls == ['teacher', 'predict']
  predict.rmdir()  # now nothing after the teacher keeps its outputs
  rerun()
  assert calls == ['teacher', 'predict', 'teacher', 'predict']
  (predict / 'x').write_text('kept')
  teacher.rmdir()
  rerun()  # the predictions exist: the missing teacher is not needed
  assert len(calls) == 4 and (predict / 'x').exists()


def test_an_interrupted_stage_rerun_with_other_settings_starts_over(tmp_path):
  student = tmp_path / 'student'

  def killed():
    student.mkdir()
    (student / 'ckpt-3').write_text('old settings')
    raise KeyboardInterrupt  # the run dies mid-stage

  state = stages.StageState(str(tmp_path), clock=lambda: 0.0)
  with pytest.raises(KeyboardInterrupt):
    state.run('round_1/student', killed, {'m': 5}, outputs=[str(student)])
  resumed = []
  again = stages.StageState(str(tmp_path), clock=lambda: 0.0)
  assert again.run('round_1/student',
                   lambda: resumed.append(os.listdir(student)) or 1,
                   {'m': 5}, outputs=[str(student)]) == 1
  assert resumed == [['ckpt-3']]  # same settings: resumes its checkpoint
  (tmp_path / 'state.json').write_text(json.dumps({'round_1/student': {
      'settings': {'m': 5}, 'outputs': [str(student)], 'finished': False}}))
  other = stages.StageState(str(tmp_path), clock=lambda: 0.0)
  other.run('round_1/student', lambda: resumed.append(student.exists()) or 2,
            {'m': 9}, outputs=[str(student)])
  assert resumed[-1] is False  # other settings: the old folder moved aside
  assert (tmp_path / 'student.replaced-19700101-000000' / 'ckpt-3').exists()


def test_a_redo_forgets_the_stages_after_it_in_job_order_not_name_order(
    tmp_path):
  """state.json's keys are sorted; 'export' and 'ablation/*' still come last."""
  names = ['round_0/teacher', 'round_1/predict', 'round_1/filter_stats',
           'round_1/filter', 'round_1/student', 'round_2/predict',
           'round_10/teacher', 'export', 'ablation/no_noise']
  state = stages.StageState(str(tmp_path))
  for name in names:
    state.run(name, lambda: 1, {'x': 1})
  forced = stages.StageState(str(tmp_path), force=True)
  forced.run('round_1/student', lambda: 2, {'x': 2})
  assert sorted(forced.done) == sorted(names[:4] + ['round_1/student'])
  forced.run('round_0/teacher', lambda: 2, {'x': 2})
  assert list(forced.done) == ['round_0/teacher']
  # An ablation arm depends on the rounds, not on the other arms.
  for name in ('ablation/full', 'ablation/no_noise', 'ablation/zeta'):
    forced.run(name, lambda: 1, {'x': 1})
  forced.run('ablation/full', lambda: 2, {'x': 2})
  assert sorted(forced.done) == ['ablation/full', 'ablation/no_noise',
                                 'ablation/zeta', 'round_0/teacher']


def test_randaug_settings_do_not_matter_to_a_stage_without_augmentation(
    tmp_path):
  from noisy_student.runtime import errors  # pylint: disable=g-import-not-at-top

  def settings(augment, magnitude):
    return {'data': {'augment_name': augment, 'unl_augment_name': None,
                     'randaug_magnitude': magnitude}}

  state = stages.StageState(str(tmp_path))
  state.run('round_0/teacher', lambda: 1, settings(None, 27))
  state.run('round_1/student', lambda: 2, settings('v1', 27))
  again = stages.StageState(str(tmp_path))
  assert again.run('round_0/teacher', lambda: 3, settings(None, 5)) == 1
  with pytest.raises(errors.ConfigError, match='data.randaug_magnitude: 27 -> 5'):
    again.run('round_1/student', lambda: 4, settings('v1', 5))


def test_a_forgotten_export_moves_its_keras_file_aside_too(tmp_path):
  """iterate --force --noexport: the old export/ and export.keras (the old
  student) are both moved aside, not only the folder."""
  export_dir, keras_file = tmp_path / 'export', tmp_path / 'export.keras'

  def export():
    export_dir.mkdir()
    keras_file.write_text('old student')
    return {}

  state = stages.StageState(str(tmp_path), clock=lambda: 0.0)
  state.run('round_1/student', lambda: 1, {'steps': 2})
  state.run('export', export, {}, outputs=[str(export_dir), str(keras_file)])
  forced = stages.StageState(str(tmp_path), force=True, clock=lambda: 0.0)
  forced.run('round_1/student', lambda: 2, {'steps': 3})
  assert not export_dir.exists() and not keras_file.exists()
  assert (tmp_path / 'export.keras.replaced-19700101-000000').read_text() == (
      'old student')


def test_two_processes_recording_other_stages_keep_each_others_entries(
    tmp_path):
  """ablate --jobs: the teacher's and the control's processes share state.json;
  each update re-reads it under its lock instead of writing a stale copy."""
  teacher = stages.StageState(str(tmp_path))
  control = stages.StageState(str(tmp_path))  # opened before the teacher ran
  teacher.run('round_0/teacher', lambda: {'test': 0.5}, {'steps': 1})
  control.run('ablation/control', lambda: {'test': 0.6}, {'steps': 2})
  with open(tmp_path / 'state.json') as f:
    done = json.load(f)
  assert done['round_0/teacher']['result'] == {'test': 0.5}
  assert done['ablation/control']['result'] == {'test': 0.6}
  # A third opened before both sees them as finished.
  assert stages.StageState(str(tmp_path)).finished('round_0/teacher')


def test_a_stage_whose_model_was_trained_again_since_is_not_reused(tmp_path):
  """`main --mode=train` into iterate's teacher folder after iterate finished:
  the rerun refuses (naming the folder) instead of keeping the old teacher's
  result and pseudo-labels; --force redoes it."""
  from noisy_student.runtime import errors  # pylint: disable=g-import-not-at-top
  teacher = tmp_path / 'round_0' / 'teacher'

  def train():
    teacher.mkdir(parents=True, exist_ok=True)
    (teacher / 'checkpoint').write_text('model_checkpoint_path: "ckpt-8"\n')
    return {'test': 0.5}

  def rerun(force=False):
    return stages.StageState(str(tmp_path), force=force,
                             clock=lambda: 0.0).run(
                                 'round_0/teacher', train, {'steps': 8},
                                 outputs=[str(teacher)])

  assert rerun() == {'test': 0.5}
  assert rerun() == {'test': 0.5}  # unchanged: skipped
  (teacher / 'checkpoint').write_text('model_checkpoint_path: "ckpt-20"\n')
  with pytest.raises(errors.ConfigError,
                     match=rf'stage round_0/teacher finished, but {teacher} '
                     r'was trained again since .*pass force'):
    rerun()
  assert rerun(force=True) == {'test': 0.5}
  assert (tmp_path / 'round_0' / 'teacher.replaced-19700101-000000').exists()


def test_a_moved_work_dir_resumes_its_finished_stages(tmp_path):
  """state.json holds the paths inside the work dir relative to it: the same
  job in the moved folder skips what finished (it used to be refused as
  'other settings' and --force retrained everything)."""
  calls = []

  def job(work):
    teacher = os.path.join(work, 'round_0', 'teacher')

    def train():
      calls.append(work)
      os.makedirs(teacher, exist_ok=True)
      with open(os.path.join(teacher, 'checkpoint'), 'w') as f:
        f.write('ckpt-8')
      return {'test': 0.5, 'model_dir': teacher}
    return stages.StageState(work).run(
        'round_0/teacher', train,
        {'model_dir': teacher, 'data': {'label_data_dir': '/data/digits'}},
        outputs=[teacher])

  first = str(tmp_path / 'first')
  assert job(first)['model_dir'] == os.path.join(first, 'round_0', 'teacher')
  with open(os.path.join(first, 'state.json')) as f:
    text = f.read()
  assert first not in text and '<work_dir>/round_0/teacher' in text
  assert '/data/digits' in text  # outside the work dir: kept as it is
  moved = str(tmp_path / 'moved')
  os.rename(first, moved)
  assert job(moved) == {'test': 0.5,
                        'model_dir': os.path.join(moved, 'round_0', 'teacher')}
  assert calls == [first]


def test_a_deleted_model_folder_whose_later_stages_kept_theirs_is_not_retrained(
    tmp_path):
  """Deleting the teacher once its student finished (to save disk) is not
  "trained again": the rerun skips it, as before checkpoints were recorded."""
  teacher, student = tmp_path / 'teacher', tmp_path / 'student'

  def train(folder):
    def fn():
      folder.mkdir(exist_ok=True)
      (folder / 'checkpoint').write_text(f'{folder.name} ckpt-8')
      return folder.name
    return fn

  def rerun():
    state = stages.StageState(str(tmp_path))
    return [state.run('round_0/teacher', train(teacher), {},
                      outputs=[str(teacher)]),
            state.run('round_1/student', train(student), {},
                      outputs=[str(student)])]

  assert rerun() == ['teacher', 'student']
  for name in os.listdir(teacher):
    os.remove(teacher / name)
  teacher.rmdir()
  assert rerun() == ['teacher', 'student']
  assert not teacher.exists()


def test_a_redo_forgets_only_the_stages_built_on_what_is_redone(tmp_path):
  """ablate --jobs: the control (built on no round stage) keeps its result
  when the teacher is redone, while the student arms (built on round 1's
  pseudo-labels) are forgotten; a redone student forgets no arm."""
  def record(state, name, needs=None, settings=None):
    folder = tmp_path / name.replace('/', '_')
    def fn():
      folder.mkdir(exist_ok=True)
      return name
    return state.run(name, fn, settings or {}, outputs=[str(folder)],
                     needs=needs)

  state = stages.StageState(str(tmp_path), clock=lambda: 0.0)
  record(state, 'round_0/teacher', settings={'steps': 1})
  record(state, 'round_1/filter')
  record(state, 'round_1/student', settings={'steps': 1})
  record(state, 'ablation/control', needs=())
  record(state, 'ablation/no_noise', needs=('round_1/filter',))
  record(state, 'tune/legacy')  # no needs recorded: built on every stage

  forced = stages.StageState(str(tmp_path), force=True, clock=lambda: 0.0)
  record(forced, 'round_1/student', settings={'steps': 2})
  assert {'ablation/control', 'ablation/no_noise'} <= set(forced.done)
  assert 'tune/legacy' not in forced.done
  record(forced, 'round_0/teacher', settings={'steps': 2})
  assert 'ablation/control' in forced.done
  assert 'ablation/no_noise' not in forced.done
  assert 'round_1/filter' not in forced.done


def test_settings_recorded_under_a_renamed_fields_old_name_are_kept(tmp_path):
  """PredictConfig's batch_size / num_samples became predict_batch_size /
  num_samples_per_shard: a predict stage an earlier version recorded is still
  the same stage (a rerun skips it); a real change is still refused."""
  from noisy_student.runtime import errors  # pylint: disable=g-import-not-at-top
  calls = []
  old = {'predict_ckpt_path': 'p', 'batch_size': 64, 'num_samples': 0}
  stages.StageState(str(tmp_path)).run(
      'round_1/predict', lambda: calls.append('old') or {'n': 1}, old)
  new = {'predict_ckpt_path': 'p', 'predict_batch_size': 64,
         'num_samples_per_shard': 0}
  again = stages.StageState(str(tmp_path)).run(
      'round_1/predict', lambda: calls.append('new') or {'n': 2}, new)
  assert calls == ['old'] and again == {'n': 1}
  with pytest.raises(errors.ConfigError, match='predict_batch_size: 64 -> 32'):
    stages.StageState(str(tmp_path)).run(
        'round_1/predict', lambda: {'n': 3}, dict(new, predict_batch_size=32))
