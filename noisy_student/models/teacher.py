"""The on-the-fly teacher of a student: its architecture and weights.

A student trained on raw unlabeled images needs a teacher that labels each
batch as it trains (main's `--teacher_model_name` / `--teacher_model_path`,
the Python API's `ns.experiment(teacher_model_name=..., teacher_model_path=...)`).
`teacher_config` decides which network that teacher is; the loader
(`loading.py`) reads its weights when training starts.
"""

from __future__ import annotations

import dataclasses

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
  student's classes.

  Raises:
    ConfigError: no path, a folder that holds another model, or another class
      count (named as the caller's fields: `errors.field_name`).
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
  return config_lib.TeacherConfig(model=teacher, path=model_path)
