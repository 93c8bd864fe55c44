"""The Python API: Noisy Student from a notebook or a script.

  import noisy_student as ns
  digits = ns.dataset('data/digits')            # its dataset_info.json
  teacher = ns.experiment('runs/teacher', 'data/digits', recipe=ns.defaults.DEMO_TEACHER)
  ns.train(teacher)
  ns.evaluate(teacher)                          # {'dev': {...}, 'test': {...}}
  ns.predict('runs/teacher', 'data/digits/unlabeled', 'runs/predict')
  ns.filter_pseudo_labels('data/digits/unlabeled', 'runs/predict', 'runs/filter')

Every function takes or builds the same frozen configs the binaries use
(`noisy_student.core.config`), and prints its progress lines to stderr
(`noisy_student.runtime.progress`), so they show in a notebook without any logging set-up.
docs/python_api.md has a complete example (run by its test).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

# First: the Python API is an entry point; filter TensorFlow's start-up
# banner if it is not loaded yet.
from noisy_student.runtime import quiet

quiet.install()
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from data import layout
from noisy_student.core import config as config_lib
from noisy_student.core import datasets
from noisy_student.core import defaults
from noisy_student.core import factory
from noisy_student.drivers import modes
from noisy_student.drivers import rounds
from noisy_student.models import teacher as teacher_lib
from noisy_student.pseudo import filter_files
from noisy_student.pseudo import filter_passes
from noisy_student.pseudo import predict as predict_lib
from noisy_student.pseudo import selection
from noisy_student.runtime import errors

RoundsConfig = rounds.RoundsConfig


def dataset(data_dir: Optional[str] = None, *,
            task_name: Optional[str] = None,
            num_classes: Optional[int] = None,
            num_train_images: Optional[int] = None,
            image_size: Optional[int] = None) -> datasets.DatasetInfo:
  """The dataset of a data folder (its dataset_info.json) or a built-in task.

  `image_size` (pixels) replaces the size the folder or task states.
  """
  found = datasets.resolve(task_name, data_dir, num_classes=num_classes,
                           num_train_images=num_train_images,
                           image_size=image_size)
  if image_size is None or image_size == found.image_size:
    return found
  return dataclasses.replace(found, image_size=image_size)


def experiment(model_dir: str, data_dir: str, *,
               model_name: str = 'efficientnet-b0',
               recipe: config_lib.Recipe = defaults.ORIGINAL,
               unlabel_data_dir: str = '',
               task_name: Optional[str] = None,
               image_size: Optional[int] = None,
               width_coefficient: Optional[float] = None,
               depth_coefficient: Optional[float] = None,
               seed: int = 0,
               init_model_path: Optional[str] = None,
               teacher_model_name: Optional[str] = None,
               teacher_model_path: Optional[str] = None,
               **train_changes) -> config_lib.ExperimentConfig:
  """One training job: `model_name` on `data_dir` with `recipe`.

  `train_changes` replace fields of `recipe.train` (e.g. train_steps,
  train_batch_size); with `unlabel_data_dir` (pseudo-labeled shards written
  by `filter_pseudo_labels`) the job is a Noisy Student student.
  `init_model_path` starts the model from pretrained weights (a `.keras`,
  our model_dir, a TF1 or timm checkpoint); with another class count all but
  the classifier are kept (fine-tuning).
  With `teacher_model_name` and `teacher_model_path` (a model folder, a
  `.keras` file or a checkpoint), `unlabel_data_dir` holds raw unlabeled
  shards and that teacher labels every unlabeled batch as the student trains
  (main's on-the-fly teacher).
  """
  data = dataset(data_dir, task_name=task_name)
  train = dataclasses.replace(
      recipe.train, seed=seed, num_train_images=data.num_train_images,
      **train_changes)
  if not unlabel_data_dir:
    train = dataclasses.replace(train, unlabel_ratio=0.0)
  model = factory.model_config(data, model_name, noise=recipe.noise,
                               image_size_override=image_size,
                               width_coefficient=width_coefficient,
                               depth_coefficient=depth_coefficient)
  teacher = None
  if teacher_model_name or teacher_model_path:
    if not teacher_model_name:
      raise errors.ConfigError('teacher_model_path needs teacher_model_name '
                               '(the teacher architecture, e.g. efficientnet-b0)')
    teacher = teacher_lib.teacher_config(model, teacher_model_name,
                                         teacher_model_path or '')
  data_config = factory.data_config(
      data, model, recipe.noise, label_data_dir=data_dir,
      unlabel_data_dir=unlabel_data_dir,
      unlabel_prefixes=('train', 'extra'),
      teacher_image_size=(teacher.model.image_size
                          if teacher and unlabel_data_dir else None),
      pseudo_labels_stored=bool(unlabel_data_dir) and teacher is None,
      seed=seed)
  return config_lib.ExperimentConfig(model_dir=model_dir, model=model,
                                     data=data_config, train=train,
                                     eval_splits=data.eval_splits,
                                     init_model_path=init_model_path,
                                     teacher=teacher)


def _check_type(value, expected: type, argument: str, made_by: str) -> None:
  """ConfigError naming `argument` unless `value` is an `expected`."""
  if not isinstance(value, expected):
    name = expected.__name__
    article = 'an' if name[0] in 'AEIOU' else 'a'
    raise errors.ConfigError(
        f'{argument} must be {article} {name} ({made_by}), received: '
        f'{type(value).__name__} {value!r:.80}')


def _strategy(strategy: Optional[tf.distribute.Strategy]):
  return strategy or tf.distribute.get_strategy()


def train(config: config_lib.ExperimentConfig, *,
          evaluate_every: Optional[int] = None,
          strategy: Optional[tf.distribute.Strategy] = None) -> dict:
  """Trains (or resumes) to the config's last step; returns {'global_step', 'history', 'eval'}."""
  _check_type(config, config_lib.ExperimentConfig, 'config',
              'ns.experiment(...) makes one')
  keras.utils.set_random_seed(config.train.seed)
  return modes.train(config, _strategy(strategy), evaluate_every=evaluate_every)


def evaluate(config: config_lib.ExperimentConfig, *,
             strategy: Optional[tf.distribute.Strategy] = None) -> dict:
  """EMA top-1/top-5 of the latest checkpoint on the eval splits: {split: metrics}."""
  _check_type(config, config_lib.ExperimentConfig, 'config',
              'ns.experiment(...) makes one')
  return modes.evaluate(config, _strategy(strategy))


def predict(teacher_dir: str, unlabeled_dir: str, output_dir: str, *,
            file_prefix: str = 'extra', batch_size: int = 256,
            strategy: Optional[tf.distribute.Strategy] = None) -> dict:
  """The teacher's soft labels for every unlabeled shard (resumable).

  Writes `<output_dir>/predict_label/train-info-*` and `<output_dir>/info/`;
  returns {'images': N, 'num_shards': S}.
  """
  num_shards = layout.count_shards(unlabeled_dir, file_prefix)
  dirs = layout.PredictionDirs(output_dir)
  pcfg = modes.PredictConfig(
      predict_ckpt_path=teacher_dir, data_dir=unlabeled_dir,
      output_dir=dirs.predictions, info_dir=dirs.info, file_prefix=file_prefix,
      num_shards=num_shards, shard_ids=tuple(range(num_shards)),
      predict_batch_size=batch_size)
  counts = modes.predict(None, pcfg, _strategy(strategy))
  return {'images': int(sum(counts.values())), 'num_shards': num_shards}


def filter_pseudo_labels(unlabeled_dir: str, prediction_dir: str,
                         output_dir: str, *, num_classes: Optional[int] = None,
                         num_image_per_class: Optional[int] = None,
                         min_threshold: float = defaults.ITERATE_MIN_THRESHOLD,
                         file_prefix: str = 'extra', seed: int = 0,
                         **settings) -> dict:
  """Keeps confident pseudo-labels and balances the classes (both passes).

  `prediction_dir` is `predict`'s output_dir. Classes default to the
  dataset_info.json of the unlabeled folder (or its parent); the images per
  class to the predictions / classes. `settings` are further
  `selection.Settings` fields (max_prob, upsample, balance, ...). The
  pseudo-labeled shards land in `<output_dir>/data`; returns final_stats.json.
  """
  num_shards = layout.count_shards(unlabeled_dir, file_prefix)
  predicted = layout.PredictionDirs(prediction_dir)
  if num_classes is None:
    num_classes = dataset(unlabeled_dir).num_classes
  if num_image_per_class is None:
    total = sum(predict_lib.read_info(layout.info_path(
        predicted.info, shard, num_shards, 0)) or 0
                for shard in range(num_shards))
    num_image_per_class = selection.default_images_per_class(total,
                                                             num_classes)
  config = filter_files.FilterConfig(
      input_dir=unlabeled_dir,
      prediction_dir=predicted.predictions, info_dir=predicted.info,
      output_dir=output_dir,
      file_prefix=file_prefix, num_shards=num_shards,
      settings=selection.Settings(
          num_label_classes=num_classes, num_image=num_image_per_class,
          min_threshold=min_threshold, seed=seed, **settings))
  filter_passes.run_pass(config, config.units, only_get_stats=True)
  return filter_passes.run_pass(config, config.units, only_get_stats=False)


def run_rounds(config: rounds.RoundsConfig, *, force: bool = False,
               strategy: Optional[tf.distribute.Strategy] = None) -> list[dict]:
  """The whole iterative job (teacher, then predict -> filter -> student per
  round), resumable; returns the summary rows (round, role, model, top-1s)."""
  _check_type(config, rounds.RoundsConfig, 'config',
              'ns.RoundsConfig(...) makes one')
  keras.utils.set_random_seed(config.seed)
  return rounds.run(config, strategy, force=force)
