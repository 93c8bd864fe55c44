"""docs/python_api.md's example, executed as written, in a fresh process."""

import pathlib
import re
import sys

import pytest

from tests import helpers

DOC = pathlib.Path(helpers.REPO_ROOT, 'docs/python_api.md')


def _first_python_block() -> str:
  blocks = re.findall(r'```python\n(.*?)```', DOC.read_text(), re.S)
  assert blocks, f'{DOC}: no python example'
  return blocks[0]


@pytest.mark.slow
def test_the_documented_example_runs(tmp_path):
  script = tmp_path / 'example.py'
  script.write_text(_first_python_block())
  result = helpers.run([sys.executable, str(script)], timeout=1200,
                       cwd=str(tmp_path))
  printed = result.stdout
  # Well above chance (10 classes): the example teaches something.
  teacher = float(re.search(r'^teacher (0\.\d+)', printed, re.M).group(1))
  student = float(re.search(r'^student (0\.\d+)', printed, re.M).group(1))
  assert teacher >= 0.5 and student >= 0.5, printed
  assert 'pseudo-labeled images:' in printed
  # Progress lines reach stderr without any logging set-up (a notebook's case).
  assert re.search(r'^step \d+/300 ', result.stderr, re.M), result.stderr[-2000:]
  assert (tmp_path / 'runs' / 'student' / 'model_config.json').exists()


@pytest.mark.parametrize('call, message', [
    (lambda ns, d, t: ns.experiment(str(t / 'm'), d, image_size=0),
     'image_size must be positive, received: 0'),
    (lambda ns, d, t: ns.experiment(str(t / 'm'), d, width_coefficient=0),
     r'width_coefficient must be in \(0, inf\)'),
    (lambda ns, d, t: ns.experiment(str(t / 'm'), d, train_steps=-5),
     r'train_steps must be in \[1, inf\)'),
    (lambda ns, d, t: ns.dataset(d, num_classes=0),
     r'num_classes must be in \[1, inf\), received: 0'),
    (lambda ns, d, t: ns.filter_pseudo_labels(
        f'{d}/unlabeled', str(t / 'p'), str(t / 'f'), min_threshold=2),
     r'min_threshold must be in \[0, 1\], received: 2'),
    (lambda ns, d, t: ns.experiment(str(t / 'm'), d, train_steps=2.5),
     'train_steps must be a whole number, received: 2.5'),
    (lambda ns, d, t: ns.experiment(str(t / 'm'), d, train_batch_size='8'),
     "train_batch_size must be a whole number, received: '8'"),
    (lambda ns, d, t: ns.dataset(d, image_size=0),
     r'image_size must be in \[1, inf\), received: 0'),
    (lambda ns, d, t: ns.dataset(d, image_size=32.0),
     'image_size must be a whole number, received: 32.0'),
    (lambda ns, d, t: ns.train(str(t / 'm')),
     r'config must be an ExperimentConfig \(ns.experiment\(...\) makes one\), '
     "received: str '"),
    (lambda ns, d, t: ns.evaluate(None),
     'config must be an ExperimentConfig'),
    (lambda ns, d, t: ns.run_rounds({'work_dir': str(t)}),
     'config must be a RoundsConfig'),
    (lambda ns, d, t: ns.dataset(str(t / 'nowhere')),
     r'has no dataset_info.json .*no task_name was given: pass task_name'),
], ids=['image_size_0', 'width_0', 'steps_-5', 'num_classes_0',
        'min_threshold_2', 'steps_2.5', 'batch_str', 'dataset_size_0',
        'dataset_size_float', 'train_str', 'evaluate_none', 'rounds_dict',
        'dataset_no_info'])
def test_bad_api_arguments_raise_one_error_class_before_writing(
    call, message, digits_dir, tmp_path):
  """`except NoisyStudentError` catches every bad value, named as the argument."""
  import noisy_student as ns  # pylint: disable=g-import-not-at-top
  from noisy_student.runtime import errors  # pylint: disable=g-import-not-at-top
  with pytest.raises(errors.NoisyStudentError, match=message):
    call(ns, digits_dir, tmp_path)
  assert list(tmp_path.iterdir()) == []


def test_dataset_takes_the_image_size_it_is_given(digits_dir):
  import noisy_student as ns  # pylint: disable=g-import-not-at-top
  assert ns.dataset(digits_dir).image_size == 32
  assert ns.dataset(digits_dir, image_size=48).image_size == 48


@pytest.mark.slow
def test_a_student_trains_with_a_teacher_on_the_fly(digits_dir, tmp_path):
  """ns.experiment(teacher_model_name=, teacher_model_path=): the teacher
  labels raw unlabeled shards while the student trains (main's on-the-fly
  teacher, from Python)."""
  import noisy_student as ns  # pylint: disable=g-import-not-at-top
  from noisy_student.runtime import errors  # pylint: disable=g-import-not-at-top
  tiny = dict(width_coefficient=0.1, depth_coefficient=0.1,
              train_batch_size=8, iterations_per_loop=2,
              save_checkpoints_steps=2, final_base_lr=None)
  teacher = ns.experiment(str(tmp_path / 'teacher'), digits_dir,
                          recipe=ns.defaults.DEMO_TEACHER, train_steps=2,
                          **tiny)
  ns.train(teacher)
  student = ns.experiment(
      str(tmp_path / 'student'), digits_dir, recipe=ns.defaults.DEMO_STUDENT,
      unlabel_data_dir=f'{digits_dir}/unlabeled', train_steps=2,
      teacher_model_name='efficientnet-b0',
      teacher_model_path=str(tmp_path / 'teacher'), **tiny)
  assert student.teacher.path == str(tmp_path / 'teacher')
  # The teacher is what its folder says it was trained as (tiny), not a
  # full-width B0.
  assert student.teacher.model.width_coefficient == 0.1
  assert not student.data.pseudo_labels_stored
  assert ns.train(student)['global_step'] == 2

  with pytest.raises(errors.ConfigError,
                     match='teacher_model_name=efficientnet-b1 but .*holds '
                     'efficientnet-b0'):
    ns.experiment(str(tmp_path / 'other'), digits_dir,
                  unlabel_data_dir=f'{digits_dir}/unlabeled',
                  teacher_model_name='efficientnet-b1',
                  teacher_model_path=str(tmp_path / 'teacher'))
  with pytest.raises(errors.ConfigError,
                     match='teacher_model_path needs teacher_model_name'):
    ns.experiment(str(tmp_path / 'other'), digits_dir,
                  teacher_model_path=str(tmp_path / 'teacher'))
  assert not (tmp_path / 'other').exists()
