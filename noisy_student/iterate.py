r"""Iterative Noisy Student: teacher -> predict -> filter -> student, repeated.

  python -m noisy_student.iterate --work_dir=runs/svhn --task_name=svhn \
      --label_data_dir=data/svhn/proc --unlabel_data_dir=data/svhn/proc/unlabeled \
      --teacher_model_name=efficientnet-b0 \
      --student_model_names=efficientnet-b0,efficientnet-b1 \
      --teacher_train_steps=20000 --student_train_steps=20000 ...

Rerunning the same command resumes: finished stages are skipped (see
noisy_student/drivers/rounds.py for the stages and the work-dir layout); a
rerun with changed settings stops with an error unless --force.
"""

from __future__ import annotations

import dataclasses

from absl import flags
from absl import logging
import keras

from noisy_student.runtime import entry
from noisy_student.core import config as config_lib
from noisy_student.core import datasets
from noisy_student.core import defaults
from noisy_student.drivers import rounds as rounds_lib

FLAGS = flags.FLAGS
_TEACHER = defaults.ITERATE_TEACHER
_STUDENT = defaults.ITERATE_STUDENT
# TrainConfig fields set for both teacher and student by flags of that name.
_SHARED_TRAIN_FLAGS = ('train_batch_size', 'base_learning_rate', 'final_base_lr',
                       'weight_decay', 'moving_average_decay',
                       'iterations_per_loop', 'log_every_steps',
                       'mixed_precision')


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
  """Defines the binary's flags on `fv` (defaults: core/defaults.py ITERATE_*)."""
  flags.DEFINE_string('work_dir', None, 'Folder of every artifact of the job.',
                      flag_values=fv)
  flags.DEFINE_string('task_name', None,
                      'Built-in dataset (svhn, cifar10, imagenet, digits); '
                      'optional when --label_data_dir has a dataset_info.json.',
                      flag_values=fv)
  flags.DEFINE_integer('num_label_classes', None,
                       'Classes; default: the dataset\'s.', flag_values=fv)
  flags.DEFINE_integer('num_train_images', None, 'Labeled training images '
                       '(steps per epoch); default: the dataset\'s.',
                       flag_values=fv)
  flags.DEFINE_string('label_data_dir', None,
                      'Labeled shards (train-, dev-, test-).', flag_values=fv)
  flags.DEFINE_string('unlabel_data_dir', None, 'Unlabeled shards.', flag_values=fv)
  flags.DEFINE_string('unlabel_file_prefix', 'extra',
                      'Prefix of the unlabeled shards.', flag_values=fv)
  flags.DEFINE_string('teacher_model_name', 'efficientnet-b0',
                      'Round-0 teacher: efficientnet-b0..l2, keras:<a '
                      'keras.applications name> (e.g. keras:ResNet50) or a '
                      '.keras classifier file.', flag_values=fv)
  flags.DEFINE_list('student_model_names', ['efficientnet-b0'],
                    'One student per round (equal or larger models; the same '
                    'kinds as --teacher_model_name).', flag_values=fv)
  flags.DEFINE_float('width_coefficient', None, 'Width override for all models.',
                     flag_values=fv)
  flags.DEFINE_float('depth_coefficient', None, 'Depth override for all models.',
                     flag_values=fv)
  flags.DEFINE_integer('input_image_size', None, 'Default: the task\'s.', flag_values=fv)
  flags.DEFINE_integer('teacher_train_steps', _TEACHER.train.train_steps,
                       'Teacher training steps.', flag_values=fv)
  flags.DEFINE_integer('student_train_steps', _STUDENT.train.train_steps,
                       'Student training steps.', flag_values=fv)
  flags.DEFINE_integer('train_batch_size', _TEACHER.train.train_batch_size,
                       'Labeled batch per step.', flag_values=fv)
  flags.DEFINE_float('base_learning_rate', _TEACHER.train.base_learning_rate,
                     'LR at batch 256.', flag_values=fv)
  flags.DEFINE_float('final_base_lr', _TEACHER.train.final_base_lr,
                     'Final LR (original rule).', flag_values=fv)
  flags.DEFINE_float('weight_decay', _TEACHER.train.weight_decay,
                     'L2 weight decay.', flag_values=fv)
  flags.DEFINE_float('moving_average_decay', _TEACHER.train.moving_average_decay,
                     'EMA decay.', flag_values=fv)
  flags.DEFINE_float('teacher_dropout_rate', _TEACHER.noise.dropout_rate,
                     'Teacher dropout.', flag_values=fv)
  flags.DEFINE_float('teacher_stochastic_depth_rate',
                     _TEACHER.noise.stochastic_depth_rate,
                     'Teacher stochastic depth.', flag_values=fv)
  flags.DEFINE_string('teacher_augment_name', _TEACHER.noise.augment_name,
                      'Teacher augmentation (None, v1).', flag_values=fv)
  flags.DEFINE_float('student_dropout_rate', _STUDENT.noise.dropout_rate,
                     'Student dropout (noise).', flag_values=fv)
  flags.DEFINE_float('student_stochastic_depth_rate',
                     _STUDENT.noise.stochastic_depth_rate,
                     'Student stochastic depth (noise).', flag_values=fv)
  flags.DEFINE_string('student_augment_name', _STUDENT.noise.augment_name,
                      'Student augmentation (noise).', flag_values=fv)
  flags.DEFINE_integer('randaug_mag', _STUDENT.noise.randaug_magnitude,
                       'RandAugment magnitude.', flag_values=fv)
  flags.DEFINE_integer('randaug_layer', _STUDENT.noise.randaug_num_layers,
                       'RandAugment ops per image.', flag_values=fv)
  flags.DEFINE_float('unlabel_ratio', _STUDENT.train.unlabel_ratio,
                     'Unlabeled batch / labeled batch.', flag_values=fv)
  flags.DEFINE_float('teacher_softmax_temp', _STUDENT.train.teacher_softmax_temp,
                     '-1 hard labels, else temperature.', flag_values=fv)
  flags.DEFINE_float('min_threshold', defaults.ITERATE_MIN_THRESHOLD,
                     'Keep pseudo-labels with p >= this.', flag_values=fv)
  flags.DEFINE_integer('num_image_per_class', None,
                       'Balance every class to this many images; default: '
                       'unlabeled images / classes.', flag_values=fv)
  flags.DEFINE_bool('upsample', True, 'Duplicate images of scarce classes.',
                    flag_values=fv)
  flags.DEFINE_integer('iterations_per_loop', _TEACHER.train.iterations_per_loop,
                       'Steps per loop/log line.', flag_values=fv)
  flags.DEFINE_integer('log_every_steps', _TEACHER.train.log_every_steps,
                       'A progress line at least every this many steps and '
                       'about every 30 s.', flag_values=fv)
  flags.DEFINE_enum('mixed_precision', 'float32', list(config_lib.MIXED_PRECISION),
                    'Training precision.', flag_values=fv)
  flags.DEFINE_bool('deterministic_input', False, 'Fixed record order and '
                    'deterministic TF ops: a rerun with the same --seed on the '
                    'same machine repeats every number (docs/results.md).',
                    flag_values=fv)
  flags.DEFINE_integer('seed', 0, 'Seed of data order and augmentation.', flag_values=fv)
  flags.DEFINE_bool('force', False, 'Redo finished stages whose settings '
                    'changed (and every stage after them).', flag_values=fv)
  flags.mark_flags_as_required(['work_dir', 'label_data_dir', 'unlabel_data_dir'],
                               flag_values=fv)


def _recipe(base: config_lib.Recipe, fv: flags.FlagValues, *, steps: int,
            role: str, **train_changes) -> config_lib.Recipe:
  shared = {name: fv[name].value for name in _SHARED_TRAIN_FLAGS}
  train = dataclasses.replace(
      base.train, train_steps=steps,
      save_checkpoints_steps=fv.iterations_per_loop, **shared, **train_changes)
  noise = dataclasses.replace(
      base.noise, augment_name=config_lib.augment_name_from_flag(
          fv[f'{role}_augment_name'].value, f'{role}_augment_name'),
      randaug_magnitude=fv.randaug_mag, randaug_num_layers=fv.randaug_layer,
      dropout_rate=fv[f'{role}_dropout_rate'].value,
      stochastic_depth_rate=fv[f'{role}_stochastic_depth_rate'].value)
  return config_lib.Recipe(train=train, noise=noise)


def config_from_flags(fv: flags.FlagValues = FLAGS) -> rounds_lib.RoundsConfig:
  """The whole job from the flags (checked before anything runs)."""
  teacher = _recipe(_TEACHER, fv, steps=fv.teacher_train_steps, role='teacher')
  student = _recipe(_STUDENT, fv, steps=fv.student_train_steps, role='student',
                    unlabel_ratio=fv.unlabel_ratio,
                    teacher_softmax_temp=fv.teacher_softmax_temp)
  return entry.dataclass_from_flags(
      rounds_lib.RoundsConfig, fv, dataset=datasets.resolve(
          fv.task_name, fv.label_data_dir, num_classes=fv.num_label_classes,
          num_train_images=fv.num_train_images,
          image_size=fv.input_image_size),
      student_model_names=tuple(fv.student_model_names), teacher=teacher,
      student=student, image_size=fv.input_image_size,
      deterministic=fv.deterministic_input)


def main(argv):
  del argv
  config = config_from_flags(FLAGS)
  datasets.check_folder(config.label_data_dir)
  datasets.check_folder(config.unlabel_data_dir)
  keras.utils.set_random_seed(FLAGS.seed)
  rows = rounds_lib.run(config, force=FLAGS.force)
  print(rounds_lib.summary_markdown(rows))
  logging.info('Summary written to %s/summary.{json,md,png}', FLAGS.work_dir)


def run():
  entry.run('iterate', main, define_flags)


if __name__ == '__main__':
  run()
