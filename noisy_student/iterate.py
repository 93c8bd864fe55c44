r"""Iterative Noisy Student: teacher -> predict -> filter -> student, repeated.

  python -m noisy_student.iterate --work_dir=runs/svhn --task_name=svhn \
      --label_data_dir=data/svhn/proc --unlabel_data_dir=data/svhn/proc/unlabeled \
      --teacher_model_name=efficientnet-b0 \
      --student_model_names=efficientnet-b0,efficientnet-b1 \
      --teacher_train_steps=20000 --student_train_steps=20000 ...

Rerunning the same command resumes: finished stages are skipped (see
noisy_student/pipeline.py for the stages and the work-dir layout).
"""

from absl import app
from absl import flags
from absl import logging

from noisy_student import pipeline

FLAGS = flags.FLAGS

flags.DEFINE_string('work_dir', None, 'Folder of every artifact of the job.')
flags.DEFINE_string('task_name', 'digits', 'svhn, cifar10, imagenet or digits.')
flags.DEFINE_string('label_data_dir', None, 'Labeled shards (train-, dev-, test-).')
flags.DEFINE_string('unlabel_data_dir', None, 'Unlabeled shards.')
flags.DEFINE_string('unlabel_file_prefix', 'extra', 'Prefix of the unlabeled shards.')
flags.DEFINE_string('teacher_model_name', 'efficientnet-b0', 'Round-0 teacher.')
flags.DEFINE_list('student_model_names', ['efficientnet-b0'],
                  'One student per round (equal or larger models).')
flags.DEFINE_float('width_coefficient', None, 'Width override for all models.')
flags.DEFINE_float('depth_coefficient', None, 'Depth override for all models.')
flags.DEFINE_integer('input_image_size', None, 'Default: the task\'s.')
flags.DEFINE_integer('teacher_train_steps', 10000, 'Teacher training steps.')
flags.DEFINE_integer('student_train_steps', 10000, 'Student training steps.')
flags.DEFINE_integer('train_batch_size', 128, 'Labeled batch per step.')
flags.DEFINE_float('base_learning_rate', 0.016, 'LR at batch 256.')
flags.DEFINE_float('final_base_lr', None, 'Final LR (original rule).')
flags.DEFINE_float('weight_decay', 1e-5, 'L2 weight decay.')
flags.DEFINE_float('moving_average_decay', 0.9999, 'EMA decay.')
flags.DEFINE_float('teacher_dropout_rate', None, 'Teacher dropout.')
flags.DEFINE_float('teacher_stochastic_depth_rate', None, 'Teacher stochastic depth.')
flags.DEFINE_string('teacher_augment_name', None, 'Teacher augmentation (None, v1).')
flags.DEFINE_float('student_dropout_rate', None, 'Student dropout (noise).')
flags.DEFINE_float('student_stochastic_depth_rate', None,
                   'Student stochastic depth (noise).')
flags.DEFINE_string('student_augment_name', 'v1', 'Student augmentation (noise).')
flags.DEFINE_integer('randaug_mag', 27, 'RandAugment magnitude.')
flags.DEFINE_integer('randaug_layer', 2, 'RandAugment ops per image.')
flags.DEFINE_float('unlabel_ratio', 3, 'Unlabeled batch / labeled batch.')
flags.DEFINE_float('teacher_softmax_temp', 1, '-1 hard labels, else temperature.')
flags.DEFINE_float('min_threshold', 0.3, 'Keep pseudo-labels with p >= this.')
flags.DEFINE_integer('num_image_per_class', None,
                     'Balance every class to this many images; default: '
                     'unlabeled images / classes.')
flags.DEFINE_bool('upsample', True, 'Duplicate images of scarce classes.')
flags.DEFINE_integer('iterations_per_loop', 100, 'Steps per loop/log line.')
flags.DEFINE_enum('mixed_precision', 'float32', ['float32', 'bfloat16', 'float16'],
                  'Training precision.')
flags.DEFINE_integer('seed', 0, 'Seed of data order and augmentation.')
flags.mark_flags_as_required(['work_dir', 'label_data_dir', 'unlabel_data_dir'])


def plan_from_flags() -> pipeline.Plan:
  common = dict(base_learning_rate=FLAGS.base_learning_rate,
                final_base_lr=FLAGS.final_base_lr,
                weight_decay=FLAGS.weight_decay,
                moving_average_decay=FLAGS.moving_average_decay,
                randaug_magnitude=FLAGS.randaug_mag,
                randaug_num_layers=FLAGS.randaug_layer,
                train_batch_size=FLAGS.train_batch_size,
                iterations_per_loop=FLAGS.iterations_per_loop)
  teacher = pipeline.StageSettings(
      train_steps=FLAGS.teacher_train_steps,
      dropout_rate=FLAGS.teacher_dropout_rate,
      stochastic_depth_rate=FLAGS.teacher_stochastic_depth_rate,
      augment_name=FLAGS.teacher_augment_name, **common)
  student = pipeline.StageSettings(
      train_steps=FLAGS.student_train_steps,
      dropout_rate=FLAGS.student_dropout_rate,
      stochastic_depth_rate=FLAGS.student_stochastic_depth_rate,
      augment_name=FLAGS.student_augment_name,
      unlabel_ratio=FLAGS.unlabel_ratio,
      teacher_softmax_temp=FLAGS.teacher_softmax_temp, **common)
  return pipeline.Plan(
      work_dir=FLAGS.work_dir, task_name=FLAGS.task_name,
      label_data_dir=FLAGS.label_data_dir,
      unlabel_data_dir=FLAGS.unlabel_data_dir,
      unlabel_file_prefix=FLAGS.unlabel_file_prefix,
      teacher_model_name=FLAGS.teacher_model_name,
      student_model_names=tuple(FLAGS.student_model_names),
      teacher=teacher, student=student,
      width_coefficient=FLAGS.width_coefficient,
      depth_coefficient=FLAGS.depth_coefficient,
      image_size=FLAGS.input_image_size, min_threshold=FLAGS.min_threshold,
      num_image_per_class=FLAGS.num_image_per_class, upsample=FLAGS.upsample,
      mixed_precision=FLAGS.mixed_precision, seed=FLAGS.seed)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  import keras  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(FLAGS.seed)
  rows = pipeline.run(plan_from_flags())
  print(pipeline.summary_markdown(rows))
  logging.info('Summary written to %s/summary.{json,md,png}', FLAGS.work_dir)


if __name__ == '__main__':
  logging.set_verbosity(logging.INFO)
  app.run(main)
