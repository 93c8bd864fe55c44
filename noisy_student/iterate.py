r"""Iterative Noisy Student: teacher -> predict -> filter -> student, repeated.

  python -m noisy_student.iterate --work_dir=runs/svhn --task_name=svhn \
      --label_data_dir=data/svhn/proc --unlabel_data_dir=data/svhn/proc/unlabeled \
      --teacher_model_name=efficientnet-b0 \
      --student_model_names=efficientnet-b0,efficientnet-b1 \
      --teacher_train_steps=20000 --student_train_steps=20000 ...

Without --task_name, on a folder that describes itself (dataset_info.json),
each stage's batch, loop, progress cadence and EMA are sized to its labeled
images as main's training is (`sized_train`); the flags you pass keep their
values.

Rerunning the same command resumes: finished stages are skipped (see
noisy_student/drivers/rounds.py for the stages and the work-dir layout); a
rerun with changed settings stops with an error unless --force.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from absl import flags
from absl import logging
# First: the binaries' entry filters TensorFlow's start-up banner.
from noisy_student.runtime import entry
import keras

from noisy_student.cli import config_flags
from noisy_student.core import config as config_lib
from noisy_student.core import datasets
from noisy_student.core import defaults
from noisy_student.drivers import rounds as rounds_lib

FLAGS = flags.FLAGS
_TEACHER = defaults.ITERATE_TEACHER
_STUDENT = defaults.ITERATE_STUDENT

# RoundsConfig fields that are flags (the others are the dataset and recipes).
ROUNDS_FIELDS = ('work_dir', 'label_data_dir', 'unlabel_data_dir',
                 'unlabel_file_prefix', 'teacher_model_name',
                 'student_model_names', 'width_coefficient',
                 'depth_coefficient', 'image_size', 'min_threshold',
                 'num_image_per_class', 'upsample', 'predict_batch_size',
                 'seed', 'deterministic', 'teacher_init_path',
                 'student_init_path', 'export')
# TrainConfig fields with a --teacher_ and a --student_ flag; every noise
# field has both too.
ROLE_TRAIN_FIELDS = ('train_steps',)
# TrainConfig fields that only a student uses (unprefixed flags).
STUDENT_TRAIN_FIELDS = ('unlabel_ratio', 'teacher_softmax_temp')
# TrainConfig fields the job sets itself (no flag).
JOB_TRAIN_FIELDS = ('num_train_images', 'seed', 'save_checkpoints_steps',
                    'train_last_step_num', 'train_ratio', 'steps_per_eval')
SHARED_TRAIN_FIELDS = tuple(
    f.name for f in dataclasses.fields(config_lib.TrainConfig)
    if f.name not in ROLE_TRAIN_FIELDS + STUDENT_TRAIN_FIELDS
    + JOB_TRAIN_FIELDS)
ROLES = {'teacher': _TEACHER, 'student': _STUDENT}
# TrainConfig fields sized to a folder that describes itself (no
# --task_name), as main sizes them (`defaults.sized_to_data`); a stage
# evaluates once, at its end, so steps_per_eval is not among them, and
# save_checkpoints_steps follows iterations_per_loop.
SIZED_TRAIN_FIELDS = ('train_batch_size', 'train_steps', 'iterations_per_loop',
                      'log_every_steps', 'moving_average_decay')


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
  """Defines the binary's flags on `fv` (defaults: core/defaults.py ITERATE_*).

  All but --task_name, --num_label_classes and --force are generated from
  the config dataclasses (`cli/config_flags.py`).
  """
  flags.DEFINE_string('task_name', None,
                      'Built-in dataset (svhn, cifar10, imagenet, digits); '
                      'optional when --label_data_dir has a dataset_info.json.',
                      flag_values=fv)
  flags.DEFINE_integer('num_label_classes', None,
                       'Classes; default: the dataset\'s.', flag_values=fv)
  config_flags.define(config_lib.TrainConfig, fv, fields=('num_train_images',),
                      defaults={'num_train_images': None})
  config_flags.define(rounds_lib.RoundsConfig, fv, fields=ROUNDS_FIELDS)
  config_flags.define(config_lib.TrainConfig, fv, fields=SHARED_TRAIN_FIELDS,
                      base=_TEACHER.train)
  config_flags.define(config_lib.TrainConfig, fv, fields=STUDENT_TRAIN_FIELDS,
                      base=_STUDENT.train, help_prefix='Student: ')
  for role, recipe in ROLES.items():
    config_flags.define(config_lib.TrainConfig, fv, fields=ROLE_TRAIN_FIELDS,
                        prefix=f'{role}_', base=recipe.train,
                        help_prefix=f'{role.capitalize()}: ')
    config_flags.define(config_lib.NoiseConfig, fv, prefix=f'{role}_',
                        base=recipe.noise,
                        help_prefix=f'{role.capitalize()}: ')
  flags.DEFINE_bool('force', False, 'Redo finished stages whose settings '
                    'changed (and every stage after them).', flag_values=fv)


def _prefix(role: str, field: str) -> str:
  return f'{role}_' if field in ROLE_TRAIN_FIELDS else ''


def sized_train(fv: flags.FlagValues, role: str,
                num_train_images: int) -> dict:
  """The loop settings of `role`'s stages the user did not pass, sized to
  `num_train_images` labeled images (`defaults.sized_to_data` over
  iterate's recipe; a passed flag keeps its value and the rest are sized
  to it)."""
  given = {field: (getattr(fv, config_flags.flag_name(field,
                                                      _prefix(role, field)))
                   if config_flags.present(fv, field, _prefix(role, field))
                   else None)
           for field in ('train_batch_size', 'train_steps',
                         'iterations_per_loop')}
  sized = defaults.sized_to_data(num_train_images, base=ROLES[role].train,
                                 **given)
  return {field: sized[field] for field in SIZED_TRAIN_FIELDS
          if not config_flags.present(fv, field, _prefix(role, field))}


def recipe_from_flags(fv: flags.FlagValues, role: str,
                      num_train_images: Optional[int],
                      sized: bool = False) -> config_lib.Recipe:
  """The teacher's or the student's recipe; errors name `--<role>_*` flags.

  `sized`: the loop settings the user did not pass are sized to
  `num_train_images` (`sized_train`).
  """
  base = ROLES[role]
  per_role = ROLE_TRAIN_FIELDS + tuple(
      f.name for f in dataclasses.fields(config_lib.NoiseConfig))
  with config_flags.flag_names(f'{role}_', prefixed=per_role):
    changes = config_flags.values(config_lib.TrainConfig, fv,
                                  fields=SHARED_TRAIN_FIELDS)
    changes.update(config_flags.values(config_lib.TrainConfig, fv,
                                       fields=ROLE_TRAIN_FIELDS,
                                       prefix=f'{role}_'))
    if role == 'student':
      changes.update(config_flags.values(config_lib.TrainConfig, fv,
                                         fields=STUDENT_TRAIN_FIELDS))
    if sized and num_train_images:
      resized = sized_train(fv, role, num_train_images)
      changes.update(resized)
      if resized:
        logging.info('%s: %d labeled images: %s (sized to the data; pass the '
                     'flags to choose)', role, num_train_images, ', '.join(
                         f'--{config_flags.flag_name(k, _prefix(role, k))}='
                         f'{v:g}' for k, v in resized.items()))
    train = dataclasses.replace(
        base.train, save_checkpoints_steps=changes['iterations_per_loop'],
        **changes)
    if num_train_images is not None:
      dataclasses.replace(train,
                          num_train_images=num_train_images).check_schedule()
    noise = config_flags.build(config_lib.NoiseConfig, fv, prefix=f'{role}_',
                               base=base.noise)
  return config_lib.Recipe(train=train, noise=noise)


def config_from_flags(fv: flags.FlagValues = FLAGS) -> rounds_lib.RoundsConfig:
  """The whole job from the flags (checked before anything runs)."""
  with config_flags.flag_names():
    dataset = datasets.resolve(
        fv.task_name, fv.label_data_dir, num_classes=fv.num_label_classes,
        num_train_images=fv.num_train_images, image_size=fv.input_image_size)
  # A folder that describes itself: the stages are sized to its labeled
  # split, as main's training is (a built-in --task_name keeps the recipe).
  sized = fv.task_name is None
  teacher = recipe_from_flags(fv, 'teacher', dataset.num_train_images, sized)
  student = recipe_from_flags(fv, 'student', dataset.num_train_images, sized)
  return config_flags.build(
      rounds_lib.RoundsConfig, fv, fields=ROUNDS_FIELDS, dataset=dataset,
      teacher=teacher, student=student)


def main(argv):
  del argv
  config = config_from_flags(FLAGS)
  datasets.check_folder(config.label_data_dir)
  datasets.check_folder(config.unlabel_data_dir)
  datasets.check_unlabeled_classes(config.dataset, config.unlabel_data_dir)
  keras.utils.set_random_seed(FLAGS.seed)
  rows = rounds_lib.run(config, force=FLAGS.force)
  print(rounds_lib.summary_markdown(rows))
  logging.info('Summary written to %s/summary.{json,md,png}', FLAGS.work_dir)


def run():
  entry.run('iterate', main, define_flags,
            field_flag=config_flags.as_flag)


if __name__ == '__main__':
  run()
