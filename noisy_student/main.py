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
from typing import Callable, Optional

from absl import flags
from absl import logging

# First: the binaries' entry filters TensorFlow's start-up banner.
from noisy_student.runtime import entry
import keras
import tensorflow as tf

from data import dataset_info
from data import layout
from noisy_student.cli import config_flags
from noisy_student.cli import main_flags
from noisy_student.core import config as config_lib
from noisy_student.core import datasets
from noisy_student.runtime import errors
from noisy_student.core import factory
from noisy_student.drivers import modes
from noisy_student.models import export as export_lib
from noisy_student.models import teacher as teacher_lib
from noisy_student.training import distribute
from noisy_student.training import input_pipeline

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


def _train(job: MainJob, strategy: tf.distribute.Strategy) -> dict:
  config = job.experiment
  config.train.per_replica_batches(strategy.num_replicas_in_sync)
  every = (config.train.steps_per_eval if MODES[job.mode].evaluates_during
           else None)
  result = modes.train(config, strategy, evaluate_every=every,
                       flags_json=job.flags_json)
  if result['eval']:
    print(json.dumps(result['eval'], indent=2))
  return result


def _evaluate(job: MainJob, strategy: tf.distribute.Strategy) -> dict:
  return modes.evaluate(job.experiment, strategy)


def _predict(job: MainJob, strategy: tf.distribute.Strategy) -> dict:
  return modes.predict(job.experiment.model, job.predict, strategy)


def _export(job: MainJob, strategy: tf.distribute.Strategy) -> dict:
  del strategy
  outputs = export_lib.export(
      job.experiment.model_dir, job.export.export_dir,
      keras_path=job.export.keras_path,
      checkpoint_path=job.export.checkpoint_path)
  print(json.dumps(outputs, indent=2))
  return outputs


@dataclasses.dataclass(frozen=True)
class Mode:
  """What one --mode needs and does.

  Attributes:
    run: the job -> its results (in the strategy).
    trains: writes checkpoints (FLAGS.json, the train split, unlabeled data).
    evaluates_during: evaluates every --steps_per_eval while training.
    reads_splits: checks the eval splits' shards before starting.
    needs_label_data: --label_data_dir is required (predict: the unlabeled
      shards).
    needs_model_dir: --model_dir is required.
    own_architecture: the model comes from a model_dir / checkpoint's
      model_config.json, so a folder without a dataset is fine.
  """
  run: Callable[[MainJob, tf.distribute.Strategy], dict]
  trains: bool = False
  evaluates_during: bool = False
  reads_splits: bool = False
  needs_label_data: bool = False
  needs_model_dir: bool = True
  own_architecture: bool = False


# The --mode table (its names are config.MODES, the flag's choices).
MODES = {
    'train': Mode(_train, trains=True, reads_splits=True,
                  needs_label_data=True),
    'eval': Mode(_evaluate, reads_splits=True, needs_label_data=True),
    'train_and_eval': Mode(_train, trains=True, evaluates_during=True,
                           reads_splits=True, needs_label_data=True),
    'predict': Mode(_predict, needs_label_data=True, needs_model_dir=False,
                    own_architecture=True),
    'export': Mode(_export, own_architecture=True),
}


def dataset_from_flags(fv: flags.FlagValues) -> datasets.DatasetInfo:
  """--task_name and the count flags over `<label_data_dir>/dataset_info.json`."""
  try:
    return datasets.resolve(
        fv.task_name, fv.label_data_dir,
        num_classes=fv.num_label_classes if main_flags.present(fv, 'num_label_classes')
        else None,
        num_train_images=fv.num_train_images, image_size=fv.input_image_size)
  except errors.ConfigError:
    if not MODES[fv.mode].own_architecture:
      raise
    # Export and predict rebuild our models from their model_config.json;
    # only an original TF1 checkpoint needs the architecture, whose default
    # dataset was ImageNet in the original.
    return datasets.get_builtin('imagenet')


def model_config_from_flags(fv: flags.FlagValues,
                            dataset: datasets.DatasetInfo,
                            noise: config_lib.NoiseConfig
                            ) -> config_lib.ModelConfig:
  model = config_flags.values(config_lib.ModelConfig, fv,
                              fields=main_flags.MODEL_FIELDS)
  return factory.model_config(
      dataset, model['model_name'], noise=noise,
      num_classes=(model['num_classes'] if main_flags.present(fv, 'num_label_classes')
                   else dataset.num_classes),
      image_size_override=model['image_size'],
      small_image=(model['small_image'] if main_flags.present(fv, 'small_image_model')
                   else dataset.small_image),
      width_coefficient=model['width_coefficient'],
      depth_coefficient=model['depth_coefficient'],
      sync_batch_norm=model['sync_batch_norm'])


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
  return teacher_lib.teacher_config(model, fv.teacher_model_name,
                                    fv.teacher_model_path or '')


def _check_flags(fv: flags.FlagValues) -> None:
  """Flag checks that need no dataset or model."""
  mode = MODES[fv.mode]
  if fv.fix_layer_num != -1:
    raise errors.ConfigError('--fix_layer_num is not supported (freeze layers '
                             'by fine-tuning from --init_model_path instead)')
  if fv.data_format != 'channels_last':
    raise errors.ConfigError('--data_format: only channels_last is supported '
                             '(XLA/cuDNN pick the fastest layout themselves)')
  if mode.needs_label_data and not fv.label_data_dir:
    raise errors.ConfigError(f'--mode={fv.mode} needs --label_data_dir')
  if mode.needs_model_dir and not fv.model_dir:
    raise errors.ConfigError(f'--mode={fv.mode} needs --model_dir')
  if fv.unlabel_ratio > 0 and not fv.unlabel_data_dir and mode.trains:
    raise errors.ConfigError('--unlabel_ratio > 0 needs --unlabel_data_dir')
  if fv.unlabel_data_dir and fv.unlabel_ratio <= 0 and mode.trains:
    raise errors.ConfigError(
        f'--unlabel_data_dir={fv.unlabel_data_dir} is not used with '
        f'--unlabel_ratio={fv.unlabel_ratio:g}: pass --unlabel_ratio > 0 '
        '(unlabeled images per labeled one) to train a student on it, or drop '
        '--unlabel_data_dir for a supervised model')


def train_config_from_flags(fv: flags.FlagValues,
                            dataset: datasets.DatasetInfo,
                            strategy: str) -> config_lib.TrainConfig:
  """The TrainConfig flags, after --train_ratio (as the original)."""
  train = config_flags.values(config_lib.TrainConfig, fv)
  if train['num_train_images'] is None:
    train['num_train_images'] = dataset.num_train_images
  if (not main_flags.present(fv, 'task_name') and fv.label_data_dir
      and train['num_train_images']):
    train.update(main_flags.sized_defaults(fv, train['num_train_images']))
  train = main_flags.apply_train_ratio(train)
  train.update(
      save_checkpoints_steps=max(train['save_checkpoints_steps'],
                                 train['iterations_per_loop']),
      mixed_precision=main_flags.mixed_precision(fv, strategy))
  return config_lib.TrainConfig(**train)


def config_from_flags(fv: flags.FlagValues = FLAGS
                      ) -> config_lib.ExperimentConfig:
  """Validates the flags and builds the frozen experiment config."""
  with config_flags.flag_names():
    _check_flags(fv)
    dataset = dataset_from_flags(fv)
    strategy = main_flags.resolve_strategy(fv)
    noise = config_flags.build(config_lib.NoiseConfig, fv)
    model = model_config_from_flags(fv, dataset, noise)
    teacher = teacher_config_from_flags(fv, model)
    train = train_config_from_flags(fv, dataset, strategy)
    data = factory.data_config(
        dataset, model, noise,
        **config_flags.values(config_lib.DataConfig, fv,
                              fields=('unlabel_data_dir', 'num_train_shards',
                                      'remove_aug', 'use_cache',
                                      'deterministic')),
        label_data_dir=fv.label_data_dir or '',
        teacher_image_size=(teacher.model.image_size
                            if teacher and fv.unlabel_ratio > 0 else None),
        pseudo_labels_stored=fv.unlabel_ratio > 0 and teacher is None,
        seed=fv.seed)
    experiment = config_flags.values(config_lib.ExperimentConfig, fv,
                                     fields=main_flags.EXPERIMENT_FIELDS)
    experiment.update(
        model_dir=experiment['model_dir'] or '',
        init_model_path=main_flags.init_model_path(fv), strategy=strategy,
        eval_splits=tuple(s for s in experiment['eval_splits'] or () if s)
        or dataset.eval_splits)
    return config_lib.ExperimentConfig(model=model, data=data, train=train,
                                       teacher=teacher, **experiment)


def _unlabeled_prefix(fv: flags.FlagValues, data_dir: str) -> str:
  """--file_prefix, else the folder's one unlabeled split, else 'train'."""
  if main_flags.present(fv, 'file_prefix'):
    return fv.file_prefix
  return dataset_info.only_unlabeled_split(data_dir) or fv.file_prefix


def predict_config_from_flags(fv: flags.FlagValues,
                              experiment: config_lib.ExperimentConfig
                              ) -> modes.PredictConfig:
  """--mode=predict: every shard of the folder unless --shard_id says otherwise.

  --num_shards defaults to the folder's shard count, --file_prefix to its
  one unlabeled split, --info_dir to `<output_dir>/info`.
  """
  given = config_flags.values(modes.PredictConfig, fv,
                              fields=main_flags.PREDICT_FIELDS)
  if not given['output_dir']:
    raise errors.ConfigError('--mode=predict needs --output_dir')
  given['predict_ckpt_path'] = (given['predict_ckpt_path']
                                or experiment.model_dir)
  if not given['predict_ckpt_path']:
    raise errors.ConfigError(
        '--mode=predict needs --predict_ckpt_path (or --model_dir)')
  if fv.data_type != 'tfrecord':
    raise errors.ConfigError(f'--data_type={fv.data_type}: only tfrecord')
  data_dir = experiment.data.label_data_dir
  given['file_prefix'] = _unlabeled_prefix(fv, data_dir)
  if given['num_shards'] is None:
    if given['reassign_label']:
      raise errors.ConfigError('--reassign_label needs --num_shards (the '
                               'filtered shards\' N)')
    given['num_shards'] = layout.count_shards(data_dir, given['file_prefix'])
  given['info_dir'] = (given['info_dir']
                       or layout.PredictionDirs(given['output_dir']).info)
  with config_flags.flag_names():
    pcfg = modes.PredictConfig(data_dir=data_dir, image_size=fv.input_image_size,
                               **given)
  return dataclasses.replace(pcfg, shard_ids=tuple(
      layout.parse_shard_ids(fv.shard_id, pcfg.num_shards)))


def _check_splits_have_shards(data_dir: str, splits: tuple[str, ...]) -> None:
  """Each eval split has shards, so a misspelt --eval_splits fails at once."""
  for split in splits:
    try:
      input_pipeline.list_files(data_dir, [split])
    except errors.InputError as err:
      raise errors.ConfigError(f'--eval_splits: split {split!r}: {err}') from None


def job_from_flags(fv: flags.FlagValues = FLAGS) -> MainJob:
  """Every check of every mode, before TensorFlow starts any work."""
  experiment = config_from_flags(fv)
  mode = MODES[fv.mode]
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
  if mode.reads_splits:
    splits = tuple(experiment.eval_splits)
    if mode.trains:
      splits += (experiment.data.train_prefix,)
    datasets.check_folder(experiment.data.label_data_dir, splits)
    if fv.mode == 'eval' or mode.evaluates_during:
      if not experiment.eval_splits:
        raise errors.ConfigError(
            f'--mode={fv.mode}: {experiment.data.label_data_dir} has no split '
            'to evaluate on (its dataset_info.json lists no dev, test or '
            'validation split): convert one into the folder, or pass '
            '--eval_splits=<split>')
      _check_splits_have_shards(experiment.data.label_data_dir,
                                experiment.eval_splits)
  if fv.mode == 'eval':
    modes.check_model_files(experiment)  # training checks it in modes.train
  if mode.trains:
    datasets.check_folder(experiment.data.unlabel_data_dir)
    if experiment.train.unlabel_ratio > 0:
      datasets.check_unlabeled_classes(dataset_from_flags(fv),
                                       experiment.data.unlabel_data_dir)
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
  return MODES[job.mode].run(job, strategy)


def main(argv):
  del argv
  run_job(job_from_flags(FLAGS))


def run():
  entry.run('main', main, define_flags,
            field_flag=config_flags.as_flag)


if __name__ == '__main__':
  run()
