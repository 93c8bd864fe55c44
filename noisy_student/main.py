r"""Noisy Student training, evaluation, prediction and export (the original's main.py).

  python -m noisy_student.main --mode=train --task_name=svhn \
      --use_tpu=false --use_bfloat16=false --model_name=efficientnet-b0 \
      --label_data_dir=data/svhn/proc --model_dir=ckpt/teacher ...

Every flag of the original `main.py` (and of `predict_label.py` for
`--mode=predict`) keeps its name, default and meaning; flags that only meant
something to TPUEstimator are accepted and ignored (see `--helpfull`).
Dataset defaults (image size, classes, image counts, normalisation) come from
the data folder's `dataset_info.json` and the built-in `--task_name`
(`noisy_student/core/datasets.py`); an explicitly passed flag always wins. Every flag is checked, and an existing model_dir's
model_config.json compared, before anything is written.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

from absl import flags
from absl import logging
import keras
import tensorflow as tf

from noisy_student.runtime import entry
from data import layout
from data import writers
from noisy_student.cli import main_flags
from noisy_student.core import config as config_lib
from noisy_student.core import datasets
from noisy_student.runtime import errors
from noisy_student.core import factory
from noisy_student.core import model_refs
from noisy_student.drivers import modes
from noisy_student.models import checkpoints
from noisy_student.models import export as export_lib
from noisy_student.training import distribute

FLAGS = flags.FLAGS
define_flags = main_flags.define_flags


@dataclasses.dataclass(frozen=True)
class ExportSettings:
  """--mode=export: where the SavedModel and .keras go, which checkpoint.

  keras_path None: `<export_dir>.keras`; '': no .keras file.
  """
  export_dir: str
  keras_path: Optional[str] = None
  checkpoint_path: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class MainJob:
  """Everything one run of the binary does, checked before TF starts work.

  Attributes:
    mode: one of config.MODES.
    experiment: the model, data, training and runtime configs.
    predict: --mode=predict settings.
    export: --mode=export settings.
    mirrored_cpu_devices: logical CPUs for --strategy=mirrored without GPUs.
    flags_json: the flag values saved as FLAGS.json when training.
  """
  mode: str
  experiment: config_lib.ExperimentConfig
  predict: Optional[modes.PredictConfig] = None
  export: Optional[ExportSettings] = None
  mirrored_cpu_devices: int = 0
  flags_json: Optional[dict] = None


def _present(fv: flags.FlagValues, name: str) -> bool:
  return fv[name].present > 0


def _value(fv: flags.FlagValues, name: str, dataset_default):
  """The flag's value when passed explicitly (or dataset-free), else the dataset's."""
  if _present(fv, name) or dataset_default is None:
    return fv[name].value
  return dataset_default


def resolve_strategy(fv: flags.FlagValues) -> str:
  """--strategy, with --use_tpu implying 'tpu' (explicit values must agree)."""
  if _present(fv, 'strategy'):
    if _present(fv, 'use_tpu') and fv.use_tpu and fv.strategy != 'tpu':
      raise errors.ConfigError(
          f'--use_tpu=true conflicts with --strategy={fv.strategy}')
    return fv.strategy
  return 'tpu' if fv.use_tpu else 'default'


def noise_from_flags(fv: flags.FlagValues) -> config_lib.NoiseConfig:
  return config_lib.NoiseConfig(
      augment_name=config_lib.augment_name_from_flag(fv.augment_name,
                                                     'augment_name'),
      unl_augment_name=(
          'default' if fv.unl_aug == 'default'
          else config_lib.augment_name_from_flag(fv.unl_aug, 'unl_aug')),
      randaug_magnitude=fv.randaug_mag, randaug_num_layers=fv.randaug_layer,
      use_cutout_op=fv.cutout_op, dropout_rate=fv.dropout_rate,
      stochastic_depth_rate=fv.stochastic_depth_rate)


def dataset_from_flags(fv: flags.FlagValues) -> datasets.DatasetInfo:
  """--task_name and the count flags over `<label_data_dir>/dataset_info.json`."""
  try:
    return datasets.resolve(
        fv.task_name, fv.label_data_dir,
        num_classes=fv.num_label_classes if _present(fv, 'num_label_classes')
        else None,
        num_train_images=fv.num_train_images, image_size=fv.input_image_size)
  except errors.ConfigError:
    if fv.mode not in ('export', 'predict'):
      raise
    # Export and predict rebuild our models from their model_config.json;
    # only an original TF1 checkpoint needs the architecture, whose default
    # dataset was ImageNet in the original.
    return datasets.get_builtin('imagenet')


def model_config_from_flags(fv: flags.FlagValues,
                            dataset: datasets.DatasetInfo,
                            noise: config_lib.NoiseConfig
                            ) -> config_lib.ModelConfig:
  return factory.model_config(
      dataset, fv.model_name, noise=noise,
      num_classes=_value(fv, 'num_label_classes', dataset.num_classes),
      image_size_override=fv.input_image_size,
      small_image=_value(fv, 'small_image_model', dataset.small_image),
      width_coefficient=fv.width_coefficient,
      depth_coefficient=fv.depth_coefficient,
      sync_batch_norm=fv.sync_batch_norm)


def teacher_config_from_flags(fv: flags.FlagValues,
                              model: config_lib.ModelConfig
                              ) -> Optional[config_lib.TeacherConfig]:
  """The on-the-fly teacher: on with --teacher_model_name (as the original)."""
  if not fv.teacher_model_name:
    if fv.teacher_model_path:
      logging.warning('--teacher_model_path is ignored without '
                      '--teacher_model_name (as in the original): no teacher '
                      'runs on the fly')
    return None
  if not fv.teacher_model_path:
    raise errors.ConfigError('--teacher_model_name needs --teacher_model_path')
  teacher = factory.teacher_model_config(model, fv.teacher_model_name)
  if model_refs.name_kind(fv.teacher_model_path) != model_refs.KERAS_FILE:
    saved = checkpoints.read_model_config(fv.teacher_model_path)
    if saved is not None:
      if saved.model_name != fv.teacher_model_name:
        raise errors.ConfigError(
            f'--teacher_model_name={fv.teacher_model_name} but '
            f'{checkpoints.model_config_path(fv.teacher_model_path)} holds '
            f'{saved.model_name}')
      teacher = dataclasses.replace(
          saved, image_size=factory.inference_image_size(saved))
  if teacher.num_classes != model.num_classes:
    raise errors.ConfigError(
        f'the teacher {fv.teacher_model_path} has {teacher.num_classes} '
        f'classes but the student {model.num_classes} (--num_label_classes)')
  return config_lib.TeacherConfig(model=teacher, path=fv.teacher_model_path)


def _check_flags(fv: flags.FlagValues) -> None:
  """Flag checks that need no dataset or model."""
  if fv.fix_layer_num != -1:
    raise errors.ConfigError('--fix_layer_num is not supported (freeze layers '
                             'by fine-tuning from --init_model_path instead)')
  if fv.data_format != 'channels_last':
    raise errors.ConfigError('--data_format: only channels_last is supported '
                             '(XLA/cuDNN pick the fastest layout themselves)')
  needs_data = fv.mode in ('train', 'train_and_eval', 'eval', 'predict')
  if needs_data and not fv.label_data_dir:
    raise errors.ConfigError(f'--mode={fv.mode} needs --label_data_dir')
  if fv.mode != 'predict' and not fv.model_dir:
    raise errors.ConfigError(f'--mode={fv.mode} needs --model_dir')
  if (fv.unlabel_ratio > 0 and not fv.unlabel_data_dir
      and fv.mode.startswith('train')):
    raise errors.ConfigError('--unlabel_ratio > 0 needs --unlabel_data_dir')
  if fv.teacher_softmax_temp != -1 and fv.teacher_softmax_temp <= 0:
    raise errors.ConfigError(
        f'--teacher_softmax_temp must be -1 (hard labels) or > 0, received: '
        f'{fv.teacher_softmax_temp}')
  if fv.init_model_path and not fv.init_model:
    logging.warning('--init_model_path is ignored without --init_model=true '
                    '(as in the original)')
  if fv.init_model and fv.teacher_model_name:
    logging.warning('--init_model with --teacher_model_name: as in the '
                    'original, only the teacher is initialised (from '
                    '--teacher_model_path); --init_model_path is not used and '
                    'the student starts from scratch')


def train_config_from_flags(fv: flags.FlagValues,
                            dataset: datasets.DatasetInfo
                            ) -> config_lib.TrainConfig:
  train_steps = int(fv.train_steps * fv.train_ratio)
  last = fv.train_last_step_num
  last = train_steps if last == -1 else int(last * fv.train_ratio)
  return config_lib.TrainConfig(
      train_steps=train_steps, train_last_step_num=last,
      train_ratio=fv.train_ratio, train_batch_size=fv.train_batch_size,
      eval_batch_size=fv.eval_batch_size,
      num_train_images=fv.num_train_images or dataset.num_train_images,
      iterations_per_loop=fv.iterations_per_loop,
      log_every_steps=fv.log_every_steps,
      save_checkpoints_steps=max(fv.save_checkpoints_steps,
                                 fv.iterations_per_loop),
      keep_checkpoint_max=fv.keep_checkpoint_max,
      steps_per_eval=fv.steps_per_eval,
      base_learning_rate=fv.base_learning_rate,
      final_base_lr=fv.final_base_lr,
      moving_average_decay=fv.moving_average_decay,
      weight_decay=fv.weight_decay, label_smoothing=fv.label_smoothing,
      unlabel_ratio=fv.unlabel_ratio,
      label_data_sample_prob=fv.label_data_sample_prob,
      teacher_softmax_temp=fv.teacher_softmax_temp,
      mixed_precision=fv.mixed_precision or (
          'bfloat16' if fv.use_bfloat16 else 'float32'),
      jit_compile=fv.jit_compile, seed=fv.seed)


def init_model_path(fv: flags.FlagValues) -> Optional[str]:
  """The checkpoint that initialises the student, or None.

  As in the original, `--init_model` initialises the student only when there
  is no on-the-fly teacher; with one, the teacher's checkpoint is the only
  checkpoint read.
  """
  if fv.init_model and not fv.teacher_model_name:
    return fv.init_model_path
  return None


def config_from_flags(fv: flags.FlagValues = FLAGS
                      ) -> config_lib.ExperimentConfig:
  """Validates the flags and builds the frozen experiment config."""
  dataset = dataset_from_flags(fv)
  _check_flags(fv)
  noise = noise_from_flags(fv)
  model = model_config_from_flags(fv, dataset, noise)
  teacher = teacher_config_from_flags(fv, model)
  train = train_config_from_flags(fv, dataset)
  data = factory.data_config(
      dataset, model, noise, label_data_dir=fv.label_data_dir or '',
      unlabel_data_dir=fv.unlabel_data_dir or '',
      num_train_shards=fv.num_train_shards,
      teacher_image_size=(teacher.model.image_size
                          if teacher and fv.unlabel_ratio > 0 else None),
      pseudo_labels_stored=fv.unlabel_ratio > 0 and teacher is None,
      remove_aug=fv.remove_aug, use_cache=fv.use_cache,
      deterministic=fv.deterministic_input, seed=fv.seed)
  eval_splits = (tuple(s for s in fv.eval_splits.split(',') if s)
                 if fv.eval_splits else dataset.eval_splits)
  return config_lib.ExperimentConfig(
      model_dir=fv.model_dir or '', model=model, data=data, train=train,
      teacher=teacher,
      init_model_path=init_model_path(fv),
      strategy=resolve_strategy(fv), tpu=fv.tpu, tpu_zone=fv.tpu_zone,
      gcp_project=fv.gcp_project, eval_splits=eval_splits)


def predict_config_from_flags(fv: flags.FlagValues,
                              experiment: config_lib.ExperimentConfig
                              ) -> modes.PredictConfig:
  if not fv.output_dir or (not fv.info_dir and not fv.reassign_label):
    raise errors.ConfigError('--mode=predict needs --output_dir and --info_dir')
  ckpt = fv.predict_ckpt_path or experiment.model_dir
  if not ckpt:
    raise errors.ConfigError(
        '--mode=predict needs --predict_ckpt_path (or --model_dir)')
  if fv.data_type != 'tfrecord':
    raise errors.ConfigError(f'--data_type={fv.data_type}: only tfrecord')
  try:
    shard_ids = tuple(layout.parse_shard_ids(fv.shard_id, fv.num_shards))
  except ValueError as err:
    raise errors.ConfigError(str(err)) from None
  if not 0 <= fv.worker_id < fv.total_replicas:
    raise errors.ConfigError(f'--worker_id={fv.worker_id} must be in [0, '
                             f'--total_replicas={fv.total_replicas})')
  return modes.PredictConfig(
      predict_ckpt_path=ckpt, data_dir=experiment.data.label_data_dir,
      output_dir=fv.output_dir, info_dir=fv.info_dir,
      file_prefix=fv.file_prefix, num_shards=fv.num_shards,
      shard_ids=shard_ids, total_replicas=fv.total_replicas,
      worker_id=fv.worker_id, reassign_label=fv.reassign_label,
      batch_size=fv.predict_batch_size, num_samples=fv.num_samples_per_shard,
      image_size=fv.input_image_size)


def job_from_flags(fv: flags.FlagValues = FLAGS) -> MainJob:
  """Every check of every mode, before TensorFlow starts any work."""
  experiment = config_from_flags(fv)
  predict = export = flags_json = None
  if fv.mode == 'predict':
    predict = predict_config_from_flags(fv, experiment)
  elif fv.mode == 'export':
    # '' -> <export_dir>.keras (None to the library); 'none' -> no .keras file.
    keras_path = fv.export_keras_path or None
    if keras_path and keras_path.lower() == 'none':
      keras_path = ''
    if keras_path:
      export_lib.check_keras_path(keras_path)
    export = ExportSettings(
        export_dir=fv.export_dir or layout.default_export_dir(
            experiment.model_dir),
        keras_path=keras_path,
        checkpoint_path=fv.predict_ckpt_path or None)
  if fv.mode in ('train', 'train_and_eval', 'eval'):
    splits = tuple(experiment.eval_splits)
    if fv.mode != 'eval':
      splits += (experiment.data.train_prefix,)
    datasets.check_folder(experiment.data.label_data_dir, splits)
  if fv.mode in ('train', 'train_and_eval'):
    if experiment.train.num_train_images is None:
      raise errors.ConfigError(
          f'{fv.label_data_dir}: no train split size is known (its '
          'dataset_info.json lists no train split); pass --num_train_images')
    datasets.check_folder(experiment.data.unlabel_data_dir)
    flags_json = {k: v for k, v in fv.flag_values_dict().items()
                  if isinstance(v, (str, int, float, bool, type(None), list))}
  return MainJob(mode=fv.mode, experiment=experiment, predict=predict,
                 export=export, mirrored_cpu_devices=fv.mirrored_cpu_devices,
                 flags_json=flags_json)


def run_job(job: MainJob) -> dict:
  """Starts the strategy and runs the job's mode; returns its results."""
  config = job.experiment
  keras.utils.set_random_seed(config.train.seed)
  if config.data.deterministic:
    tf.config.experimental.enable_op_determinism()
  strategy = distribute.make_strategy(
      config.strategy, tpu=config.tpu, tpu_zone=config.tpu_zone,
      gcp_project=config.gcp_project, cpu_devices=job.mirrored_cpu_devices)
  logging.info('Strategy %s with %d replicas', config.strategy,
               strategy.num_replicas_in_sync)
  if job.mode in ('train', 'train_and_eval'):
    config.train.per_replica_batches(strategy.num_replicas_in_sync)
    modes.check_model_dir(config.model_dir, config.model)
    if distribute.is_chief(strategy):
      writers.write_json(os.path.join(config.model_dir, layout.FLAGS_FILE),
                         job.flags_json)
    every = (config.train.steps_per_eval if job.mode == 'train_and_eval'
             else None)
    result = modes.train(config, strategy, evaluate_every=every)
    if result['eval']:
      print(json.dumps(result['eval'], indent=2))
    return result
  if job.mode == 'eval':
    return modes.evaluate(config, strategy)
  if job.mode == 'export':
    outputs = export_lib.export(
        config.model_dir, job.export.export_dir,
        keras_path=job.export.keras_path,
        checkpoint_path=job.export.checkpoint_path)
    print(json.dumps(outputs, indent=2))
    return outputs
  return modes.predict(config.model, job.predict, strategy)


def main(argv):
  del argv
  run_job(job_from_flags(FLAGS))


def run():
  entry.run('main', main, define_flags)


if __name__ == '__main__':
  run()
