"""The on-the-fly teacher of a student: its architecture and weights.

A student trained on raw unlabeled images needs a teacher that labels each
batch as it trains (main's `--teacher_model_name` / `--teacher_model_path`,
the Python API's `ns.experiment(teacher_model_name=..., teacher_model_path=...)`).
`teacher_config` decides which network that teacher is; the loader
(`loading.py`) reads its weights when training starts.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

from noisy_student.core import config as config_lib
from noisy_student.core import factory
from noisy_student.core import model_refs
from noisy_student.models import checkpoints
from noisy_student.runtime import errors


def teacher_config(student: config_lib.ModelConfig, model_name: str,
                   model_path: str) -> config_lib.TeacherConfig:
  """The teacher `model_name` whose weights are at `model_path`.

  Its architecture takes the student's data settings
  (`factory.teacher_model_config`), unless `model_path` is a model folder
  whose `model_config.json` says what it was trained as: that config wins, at
  its inference size, and must name `model_name`. The teacher must predict the
  student's classes: their count, and their names when both models know them
  (`check_class_names`).

  Raises:
    ConfigError: no path, a folder that holds another model, another class
      count or other class names (named as the caller's fields:
      `errors.field_name`).
  """
  name_field = errors.field_name('teacher_model_name')
  path_field = errors.field_name('teacher_model_path')
  if not model_path:
    raise errors.ConfigError(f'{name_field} needs {path_field}')
  teacher = factory.teacher_model_config(student, model_name)
  if model_refs.name_kind(model_path) != model_refs.KERAS_FILE:
    saved = checkpoints.read_model_config(model_path)
    if saved is not None:
      if saved.model_name != model_name:
        raise errors.ConfigError(
            f'{name_field}={model_name} but '
            f'{checkpoints.model_config_path(model_path)} holds '
            f'{saved.model_name}')
      teacher = dataclasses.replace(
          saved, image_size=factory.inference_image_size(saved))
  if teacher.num_classes != student.num_classes:
    raise errors.ConfigError(
        f'the teacher {model_path} has {teacher.num_classes} classes but the '
        f'student {student.num_classes} ({errors.field_name("num_classes")})')
  check_class_names(model_path, teacher.class_names, student.class_names)
  return config_lib.TeacherConfig(model=teacher, path=model_path)


def check_class_names(teacher_path: str,
                      teacher_names: Optional[Sequence[str]],
                      student_names: Optional[Sequence[str]], *,
                      teacher_field: str = 'teacher_model_path',
                      student_field: str = 'label_data_dir',
                      student: str = 'the student') -> None:
  """Refuses a teacher trained on other class names than `student`'s.

  A model carries its names in `model_config.json` (`ModelConfig.class_names`,
  from its training data's dataset_info.json); either side unknown (None)
  is no check: the class count is all that can be compared then.

  Raises:
    ConfigError naming the teacher, both fields and the first class whose
    names differ (its index, the teacher's name and `student`'s).
  """
  if not teacher_names or not student_names:
    return
  difference = config_lib.class_difference(teacher_names, student_names)
  if difference is None:
    return
  index, theirs, ours = difference
  raise errors.ConfigError(
      f'the teacher {errors.field_name(teacher_field)}={teacher_path} was '
      f'trained on other classes than {student} '
      f'({errors.field_name(student_field)}): class {index} is {theirs!r} '
      f'for the teacher but {ours!r} for {student}')
