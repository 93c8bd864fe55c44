"""Class names travel with a model (model_config.json) and are compared where a
teacher is checked against its student."""

import dataclasses
import json
import os

import pytest

from noisy_student.core import config as config_lib
from noisy_student.core import datasets
from noisy_student.core import factory
from noisy_student.drivers import beam_inputs
from noisy_student.models import checkpoints
from noisy_student.models import loading
from noisy_student.models import teacher as teacher_lib
from noisy_student.runtime import errors
from tests import helpers

DIGIT_NAMES = tuple(str(c) for c in range(10))


def _teacher_dir(tmp_path, names) -> str:
  path = str(tmp_path / 'teacher')
  os.makedirs(path, exist_ok=True)
  checkpoints.write_model_config(path, helpers.tiny_model(class_names=names))
  return path


def test_class_names_round_trip_and_old_files_read_as_unknown(tmp_path):
  config = helpers.tiny_model(class_names=list(DIGIT_NAMES))
  assert config.class_names == DIGIT_NAMES  # stored as a tuple
  path = _teacher_dir(tmp_path, DIGIT_NAMES)
  saved = checkpoints.read_model_config(path)
  assert saved.class_names == DIGIT_NAMES
  old = json.load(open(checkpoints.model_config_path(path)))
  del old['class_names']  # written before models carried their names
  json.dump(old, open(checkpoints.model_config_path(path), 'w'))
  assert checkpoints.read_model_config(path).class_names is None
  # Names are not part of the architecture: an old model_dir is the same model.
  assert checkpoints.read_model_config(path) == config


@pytest.mark.parametrize('names, message', [
    (('a', 'b'), r'class_names: 2 names for num_classes=10'),
    (('',) * 10, 'class_names must be a list of non-empty strings'),
    ('0123456789', 'class_names must be a list of non-empty strings'),
])
def test_bad_class_names_are_refused(names, message):
  with pytest.raises(errors.ConfigError, match=message):
    helpers.tiny_model(class_names=names)


def test_the_factory_takes_the_datasets_names_for_its_own_class_count():
  data = dataclasses.replace(helpers.DIGITS, class_names=DIGIT_NAMES)
  assert factory.model_config(data, 'efficientnet-b0').class_names == (
      DIGIT_NAMES)
  assert factory.model_config(data, 'efficientnet-b0',
                              num_classes=12).class_names is None
  builtin = datasets.get_builtin('digits')  # records no names
  assert factory.model_config(builtin, 'efficientnet-b0').class_names is None


def test_a_teacher_of_other_class_names_is_refused_naming_the_first(tmp_path):
  other = DIGIT_NAMES[:7] + ('seven', '8', 'nine')
  path = _teacher_dir(tmp_path, other)
  student = helpers.tiny_model(class_names=DIGIT_NAMES)
  with pytest.raises(errors.ConfigError) as raised:
    teacher_lib.teacher_config(student, 'efficientnet-b0', path)
  assert str(raised.value) == (
      f'the teacher teacher_model_path={path} was trained on other classes '
      "than the student (label_data_dir): class 7 is 'seven' for the teacher "
      "but '7' for the student")
  with errors.naming(lambda field: f'--{field}'):  # as a binary names them
    with pytest.raises(errors.ConfigError,
                       match=f'--teacher_model_path={path} .* '
                       r'\(--label_data_dir\): class 7'):
      teacher_lib.teacher_config(student, 'efficientnet-b0', path)


@pytest.mark.parametrize('teacher_names, student_names', [
    (DIGIT_NAMES, DIGIT_NAMES), (None, DIGIT_NAMES), (DIGIT_NAMES, None),
    (None, None)])
def test_same_or_unknown_names_pass(tmp_path, teacher_names, student_names):
  path = _teacher_dir(tmp_path, teacher_names)
  student = helpers.tiny_model(class_names=student_names)
  teacher = teacher_lib.teacher_config(student, 'efficientnet-b0', path)
  assert teacher.model.class_names == teacher_names
  loading.check_job_models(student, teacher)


def test_check_job_models_compares_a_teachers_recorded_names(tmp_path):
  student = helpers.tiny_model(class_names=DIGIT_NAMES)
  teacher = config_lib.TeacherConfig(
      model=helpers.tiny_model(class_names=DIGIT_NAMES[::-1]),
      path=str(tmp_path / 'teacher'))
  with pytest.raises(errors.ConfigError,
                     match=r"teacher_model_path=.*teacher .*class 0 is '9' "
                     r"for the teacher but '0' for the student"):
    loading.check_job_models(student, teacher)


def test_stage_settings_ignore_class_names():
  """A work dir recorded before models carried names reruns unchanged."""
  old = {'model': {'num_classes': 10}, 'teacher': {'model': {'x': 1}}}
  new = {'model': {'num_classes': 10, 'class_names': list(DIGIT_NAMES)},
         'teacher': {'model': {'x': 1, 'class_names': None}}}
  assert (config_lib.settings_that_matter(old)
          == config_lib.settings_that_matter(new))


def test_beam_label_refuses_shards_described_with_other_names(tmp_path):
  path = _teacher_dir(tmp_path, DIGIT_NAMES)
  shards = tmp_path / 'unlabeled'
  shards.mkdir()
  shard = str(shards / 'extra-00000-of-00001')
  beam_inputs.check_teacher_classes(path, [shard])  # no description: no check
  info = {'format': 1, 'name': 'letters', 'num_classes': 10,
          'class_names': list('abcdefghij'),
          'splits': {'extra': {'num_examples': 1, 'num_shards': 1,
                               'labeled': False, 'directory': ''}}}
  json.dump(info, open(shards / 'dataset_info.json', 'w'))
  with pytest.raises(errors.ConfigError,
                     match=r"teacher=.*teacher .*unlabeled/dataset_info.json "
                     r"\(input_pattern\): class 0 is '0' for the teacher but "
                     r"'a' for "):
    beam_inputs.check_teacher_classes(path, [shard])
  info['class_names'] = list(DIGIT_NAMES)
  json.dump(info, open(shards / 'dataset_info.json', 'w'))
  beam_inputs.check_teacher_classes(path, [shard])
