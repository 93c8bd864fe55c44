"""Loading weights from any checkpoint a user may hand us.

Three kinds are recognised from the path:
* a `.keras` file (architecture + weights);
* a training checkpoint of ours (a `model_dir` or a `ckpt-N` prefix written by
  `main --mode=train`; object-based, with the EMA shadows under `ema/`), whose
  architecture is read from `model_config.json` in the same folder;
* an original TF1 name-based checkpoint (tensorflow/tpu EfficientNet, the
  published noisy_student_efficientnet-* files, the original SVHN teacher),
  loaded through `efficientnet.load_tf1_checkpoint`.
Weights are the exponential moving average by default (`use_ema=True`), as the
original's eval and predict used.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

import keras
import tensorflow as tf

from noisy_student import classifier as classifier_lib
from noisy_student import config as config_lib
from noisy_student import ema as ema_lib
from noisy_student import tasks

MODEL_CONFIG_FILE = 'model_config.json'
_OBJECT_GRAPH_KEY = '_CHECKPOINTABLE_OBJECT_GRAPH'


class CheckpointError(ValueError):
  """A checkpoint is missing or does not fit the model; names the path."""


def resolve_checkpoint(path: str) -> str:
  """The checkpoint prefix for a directory (latest) or a prefix; else raises."""
  if tf.io.gfile.isdir(path):
    prefix = tf.train.latest_checkpoint(path)
    if prefix is None:
      raise CheckpointError(f'{path}: no checkpoint in this directory (no '
                            '`checkpoint` file naming one)')
    return prefix
  if tf.io.gfile.exists(path + '.index'):
    return path
  raise CheckpointError(f'{path}: neither a checkpoint directory nor a '
                        'checkpoint prefix (no {path}.index)')


def is_object_based(prefix: str) -> bool:
  """True for TF2 object-based checkpoints (ours), False for TF1 name-based."""
  return any(name == _OBJECT_GRAPH_KEY
             for name, _ in tf.train.list_variables(prefix))


def model_config_path(path: str) -> str:
  directory = path if tf.io.gfile.isdir(path) else os.path.dirname(path)
  return os.path.join(directory, MODEL_CONFIG_FILE)


def read_model_config(path: str) -> Optional[config_lib.ModelConfig]:
  """The ModelConfig saved next to a checkpoint of ours, or None."""
  config_file = model_config_path(path)
  if not tf.io.gfile.exists(config_file):
    return None
  with tf.io.gfile.GFile(config_file) as f:
    return config_lib.ModelConfig.from_dict(json.load(f))


def restore_model_weights(model: keras.Model, path: str, *,
                          use_ema: bool = True,
                          tf1_scope: Optional[str] = None) -> str:
  """Loads `path` (ours or TF1) into `model`; returns the prefix it read.

  Raises:
    CheckpointError naming the path when nothing matches or shapes differ.
  """
  prefix = resolve_checkpoint(path)
  if not is_object_based(prefix):
    import efficientnet  # pylint: disable=g-import-not-at-top
    efficientnet.load_tf1_checkpoint(model, prefix, use_ema=use_ema,
                                     scope=tf1_scope)
    return prefix
  ema = ema_lib.ExponentialMovingAverage(ema_lib.model_ema_weights(model),
                                         decay=0.5)
  checkpoint = tf.train.Checkpoint(model=model, ema=ema)
  try:
    status = checkpoint.restore(prefix)
    status.expect_partial()
    status.assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.InvalidArgumentError) as err:
    raise CheckpointError(
        f'{prefix}: does not fit the {model.name} model being loaded '
        f'(check --model_name / model_config.json): {err}') from err
  has_ema = any(name.startswith('ema/')
                for name, _ in tf.train.list_variables(prefix))
  if use_ema and has_ema:
    ema.copy_to(ema_lib.model_ema_weights(model))
  return prefix


def load_model(path: str, model_config: Optional[config_lib.ModelConfig] = None,
               *, use_ema: bool = True, name: Optional[str] = None,
               **overrides) -> keras.Model:
  """A keras.Model with weights from a `.keras` file or a checkpoint.

  For checkpoints the architecture comes from `model_config.json` next to it
  (ours), else from `model_config`; `overrides` (e.g. image_size, num_classes)
  replace fields of that config.
  """
  import efficientnet  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  if path.endswith('.keras'):
    if not tf.io.gfile.exists(path):
      raise CheckpointError(f'{path}: no such .keras file')
    return keras.models.load_model(path, compile=False)
  saved = read_model_config(path)
  config = saved or model_config
  if config is None:
    raise CheckpointError(
        f'{path}: no {MODEL_CONFIG_FILE} next to the checkpoint; pass the '
        'architecture (e.g. --model_name, --num_label_classes)')
  overrides = {k: v for k, v in overrides.items() if v is not None}
  if overrides:
    config = dataclasses.replace(config, **overrides)
  model = config.build(name=name)
  restore_model_weights(model, path, use_ema=use_ema)
  return model


def classifier_from_checkpoint(path: str, *, model_name: Optional[str] = None,
                               num_classes: Optional[int] = None,
                               image_size: Optional[int] = None,
                               small_image: Optional[bool] = None,
                               mean_rgb=None, stddev_rgb=None,
                               use_ema: bool = True) -> classifier_lib.Classifier:
  """Classifier from one of our checkpoints or an original TF1 checkpoint.

  Our checkpoints carry their architecture (model_config.json); for TF1
  checkpoints pass `model_name` (+ `num_classes`, `image_size`, `small_image`;
  normalisation defaults to ImageNet mean/std, as the original evaluation).
  """
  fallback = None
  if model_name:
    import efficientnet  # pylint: disable=g-import-not-at-top
    fallback = config_lib.ModelConfig(
        model_name=model_name, num_classes=num_classes or 1000,
        image_size=image_size or efficientnet.get_spec(model_name).eval_resolution,
        small_image=bool(small_image),
        mean_rgb=tuple(mean_rgb if mean_rgb is not None
                       else tasks.IMAGENET_MEAN_RGB),
        stddev_rgb=tuple(stddev_rgb if stddev_rgb is not None
                         else tasks.IMAGENET_STDDEV_RGB))
  model = load_model(path, fallback, use_ema=use_ema, image_size=image_size)
  return classifier_lib.Classifier.from_keras(
      model, name=os.path.basename(os.path.normpath(path)))
