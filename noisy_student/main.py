r"""Noisy Student training, evaluation, prediction and export (the original's main.py).

  python -m noisy_student.main --mode=train --task_name=svhn \
      --use_tpu=false --use_bfloat16=false --model_name=efficientnet-b0 \
      --label_data_dir=data/svhn/proc --model_dir=ckpt/teacher ...

Every flag of the original `main.py` (and of `predict_label.py` for
`--mode=predict`) keeps its name, default and meaning; flags that only meant
something to TPUEstimator are accepted and ignored (see `--helpfull`).
Per-task defaults (image size, classes, image counts, normalisation) come from
`noisy_student/tasks.py`; an explicitly passed flag always wins.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app
from absl import flags
from absl import logging

from noisy_student import main_flags  # noqa: F401  (defines the flags)
from noisy_student import config as config_lib
from noisy_student import tasks

FLAGS = flags.FLAGS


def _present(name: str) -> bool:
  return FLAGS[name].present > 0


def _value(name: str, task_default):
  """The flag's value when passed explicitly (or task-free), else the task's."""
  if _present(name) or task_default is None:
    return FLAGS[name].value
  return task_default


def resolve_strategy() -> str:
  """--strategy, with --use_tpu implying 'tpu' (explicit values must agree)."""
  if _present('strategy'):
    if _present('use_tpu') and FLAGS.use_tpu and FLAGS.strategy != 'tpu':
      raise app.UsageError(f'--use_tpu=true conflicts with --strategy={FLAGS.strategy}')
    return FLAGS.strategy
  return 'tpu' if FLAGS.use_tpu else 'default'


def _spec_resolution(model_name: str, evaluation: bool = False) -> int:
  """The model's train (or, for eval/predict/export, eval) resolution."""
  import efficientnet  # pylint: disable=g-import-not-at-top
  try:
    spec = efficientnet.get_spec(model_name)
  except (KeyError, ValueError) as err:
    raise app.UsageError(f'--model_name / --teacher_model_name: {err}') from err
  return spec.eval_resolution if evaluation else spec.train_resolution


def model_config_from_flags(task: tasks.TaskInfo) -> config_lib.ModelConfig:
  small_image = _value('small_image_model', task.small_image)
  evaluation = FLAGS.mode in ('eval', 'predict', 'export')
  image_size = (FLAGS.input_image_size or task.image_size
                or _spec_resolution(FLAGS.model_name, evaluation))
  return config_lib.ModelConfig(
      model_name=FLAGS.model_name,
      num_classes=_value('num_label_classes', task.num_classes),
      image_size=image_size, small_image=small_image,
      mean_rgb=tuple(task.mean_rgb), stddev_rgb=tuple(task.stddev_rgb),
      dropout_rate=FLAGS.dropout_rate,
      stochastic_depth_rate=FLAGS.stochastic_depth_rate,
      width_coefficient=FLAGS.width_coefficient,
      depth_coefficient=FLAGS.depth_coefficient,
      sync_batch_norm=FLAGS.sync_batch_norm)


def teacher_config_from_flags(model: config_lib.ModelConfig
                              ) -> config_lib.TeacherConfig | None:
  if not FLAGS.teacher_model_name and not FLAGS.teacher_model_path:
    return None
  if not FLAGS.teacher_model_path:
    raise app.UsageError('--teacher_model_name needs --teacher_model_path')
  from noisy_student import checkpoints  # pylint: disable=g-import-not-at-top
  saved = (None if FLAGS.teacher_model_path.endswith('.keras')
           else checkpoints.read_model_config(FLAGS.teacher_model_path))
  if saved is not None:
    teacher_model = saved
  else:
    name = FLAGS.teacher_model_name or model.model_name
    size = model.image_size if model.small_image else _spec_resolution(name)
    teacher_model = config_lib.ModelConfig(
        model_name=name, num_classes=model.num_classes, image_size=size,
        small_image=model.small_image, mean_rgb=model.mean_rgb,
        stddev_rgb=model.stddev_rgb)
  return config_lib.TeacherConfig(model=teacher_model,
                                  path=FLAGS.teacher_model_path)


def _augment(name: str | None) -> str | None:
  if name in (None, '', 'none', 'None'):
    return None
  if name != 'v1':
    raise app.UsageError(f'--augment_name/--unl_aug: unknown augmentation {name!r} '
                         "(None or 'v1' = RandAugment)")
  return name


def config_from_flags() -> config_lib.ExperimentConfig:
  """Validates the flags and builds the frozen experiment config."""
  if FLAGS.mode not in config_lib.MODES:
    raise app.UsageError(f'--mode={FLAGS.mode}: expected one of {config_lib.MODES}')
  if FLAGS.fix_layer_num != -1:
    raise app.UsageError('--fix_layer_num is not supported (freeze layers by '
                         'fine-tuning from --init_model_path instead)')
  if FLAGS.data_format != 'channels_last':
    raise app.UsageError('--data_format: only channels_last is supported '
                         '(XLA/cuDNN pick the fastest layout themselves)')
  try:
    task = tasks.get_task(FLAGS.task_name)
  except ValueError as err:
    raise app.UsageError(str(err)) from err
  model = model_config_from_flags(task)
  teacher = teacher_config_from_flags(model)
  needs_data = FLAGS.mode in ('train', 'train_and_eval', 'eval', 'predict')
  if needs_data and not FLAGS.label_data_dir:
    raise app.UsageError(f'--mode={FLAGS.mode} needs --label_data_dir')
  if FLAGS.mode != 'predict' and not FLAGS.model_dir:
    raise app.UsageError(f'--mode={FLAGS.mode} needs --model_dir')
  if FLAGS.unlabel_ratio > 0 and not FLAGS.unlabel_data_dir and FLAGS.mode.startswith('train'):
    raise app.UsageError('--unlabel_ratio > 0 needs --unlabel_data_dir')
  if FLAGS.teacher_softmax_temp != -1 and FLAGS.teacher_softmax_temp <= 0:
    raise app.UsageError(f'--teacher_softmax_temp must be -1 (hard labels) or '
                         f'> 0, received: {FLAGS.teacher_softmax_temp}')
  if FLAGS.init_model_path and not FLAGS.init_model:
    logging.warning('--init_model_path is ignored without --init_model=true '
                    '(as in the original)')

  train_steps = int(FLAGS.train_steps * FLAGS.train_ratio)
  last = FLAGS.train_last_step_num
  last = train_steps if last == -1 else int(last * FLAGS.train_ratio)
  mixed = FLAGS.mixed_precision or ('bfloat16' if FLAGS.use_bfloat16 else 'float32')
  augment = _augment(FLAGS.augment_name)
  unl_augment = augment if FLAGS.unl_aug == 'default' else _augment(FLAGS.unl_aug)
  train = config_lib.TrainConfig(
      train_steps=train_steps, train_last_step_num=last,
      train_ratio=FLAGS.train_ratio, train_batch_size=FLAGS.train_batch_size,
      eval_batch_size=FLAGS.eval_batch_size,
      num_train_images=FLAGS.num_train_images or task.num_train_images,
      iterations_per_loop=FLAGS.iterations_per_loop,
      save_checkpoints_steps=max(FLAGS.save_checkpoints_steps,
                                 FLAGS.iterations_per_loop),
      keep_checkpoint_max=FLAGS.keep_checkpoint_max,
      steps_per_eval=FLAGS.steps_per_eval,
      base_learning_rate=FLAGS.base_learning_rate,
      final_base_lr=FLAGS.final_base_lr,
      moving_average_decay=FLAGS.moving_average_decay,
      weight_decay=FLAGS.weight_decay, label_smoothing=FLAGS.label_smoothing,
      unlabel_ratio=FLAGS.unlabel_ratio,
      label_data_sample_prob=FLAGS.label_data_sample_prob,
      teacher_softmax_temp=FLAGS.teacher_softmax_temp,
      mixed_precision=mixed, jit_compile=FLAGS.jit_compile, seed=FLAGS.seed)
  data = config_lib.DataConfig(
      label_data_dir=FLAGS.label_data_dir or '',
      unlabel_data_dir=FLAGS.unlabel_data_dir or '',
      num_train_shards=FLAGS.num_train_shards, image_size=model.image_size,
      small_image=model.small_image, flip=task.flip,
      teacher_image_size=(teacher.model.image_size
                          if teacher and FLAGS.unlabel_ratio > 0 else None),
      pseudo_labels_stored=FLAGS.unlabel_ratio > 0 and teacher is None,
      num_classes=model.num_classes, augment_name=augment,
      unl_augment_name=unl_augment, randaug_magnitude=FLAGS.randaug_mag,
      randaug_num_layers=FLAGS.randaug_layer, use_cutout_op=FLAGS.cutout_op,
      remove_aug=FLAGS.remove_aug, use_cache=FLAGS.use_cache,
      deterministic=FLAGS.deterministic_input, seed=FLAGS.seed)
  eval_splits = (tuple(s for s in FLAGS.eval_splits.split(',') if s)
                 if FLAGS.eval_splits else task.eval_splits)
  return config_lib.ExperimentConfig(
      model_dir=FLAGS.model_dir or '', model=model, data=data, train=train,
      teacher=teacher,
      init_model_path=FLAGS.init_model_path if FLAGS.init_model else None,
      strategy=resolve_strategy(), tpu=FLAGS.tpu, tpu_zone=FLAGS.tpu_zone,
      gcp_project=FLAGS.gcp_project, eval_splits=eval_splits)


def _write_flags_json(model_dir: str) -> None:
  from data import writers  # pylint: disable=g-import-not-at-top
  values = {k: v for k, v in FLAGS.flag_values_dict().items()
            if isinstance(v, (str, int, float, bool, type(None), list))}
  writers.write_json(os.path.join(model_dir, 'FLAGS.json'), values)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  config = config_from_flags()
  # Imports that start TensorFlow's runtime come after flag validation.
  from data import records  # pylint: disable=g-import-not-at-top
  from noisy_student import checkpoints, distribute, input_pipeline, runner, trainer  # pylint: disable=g-import-not-at-top,g-multiple-import
  import keras  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(FLAGS.seed)
  if FLAGS.deterministic_input:
    tf.config.experimental.enable_op_determinism()
  strategy = distribute.make_strategy(
      config.strategy, tpu=config.tpu, tpu_zone=config.tpu_zone,
      gcp_project=config.gcp_project, cpu_devices=FLAGS.mirrored_cpu_devices)
  logging.info('Strategy %s with %d replicas', config.strategy,
               strategy.num_replicas_in_sync)
  try:
    if FLAGS.mode in ('train', 'train_and_eval'):
      if distribute.is_chief(strategy):
        _write_flags_json(config.model_dir)
      every = (config.train.steps_per_eval if FLAGS.mode == 'train_and_eval'
               else None)
      result = runner.train(config, strategy, evaluate_every=every)
      if result['eval']:
        print(json.dumps(result['eval'], indent=2))
    elif FLAGS.mode == 'eval':
      runner.evaluate(config, strategy)
    elif FLAGS.mode == 'export':
      runner.export(config, FLAGS.export_dir or os.path.join(
          config.model_dir, 'saved_model'), keras_path=FLAGS.export_keras_path
                    or None, checkpoint_path=FLAGS.predict_ckpt_path or None)
    elif FLAGS.mode == 'predict':
      from noisy_student import prediction_files  # pylint: disable=g-import-not-at-top
      if not FLAGS.output_dir or (not FLAGS.info_dir and not FLAGS.reassign_label):
        raise app.UsageError('--mode=predict needs --output_dir and --info_dir')
      ckpt = FLAGS.predict_ckpt_path or config.model_dir
      if not ckpt:
        raise app.UsageError('--mode=predict needs --predict_ckpt_path (or --model_dir)')
      pcfg = runner.PredictConfig(
          predict_ckpt_path=ckpt, data_dir=config.data.label_data_dir,
          output_dir=FLAGS.output_dir, info_dir=FLAGS.info_dir,
          file_prefix=FLAGS.file_prefix, num_shards=FLAGS.num_shards,
          shard_ids=tuple(prediction_files.parse_shard_ids(FLAGS.shard_id,
                                                           FLAGS.num_shards)),
          total_replicas=FLAGS.total_replicas, worker_id=FLAGS.worker_id,
          reassign_label=FLAGS.reassign_label,
          batch_size=FLAGS.predict_batch_size,
          num_samples=FLAGS.num_samples_per_shard)
      runner.predict(config, pcfg, strategy)
  except (trainer.NonFiniteLossError, input_pipeline.InputError,
          records.RecordError, checkpoints.CheckpointError,
          FileNotFoundError) as err:
    print(f'error: {err}', file=sys.stderr)
    sys.exit(1)


def run():
  logging.set_verbosity(logging.INFO)
  app.run(main)


if __name__ == '__main__':
  run()
