"""Checkpoints: finding them, their saved architecture, restoring weights.

Two kinds of checkpoint are recognised from their contents:
* a training checkpoint of ours (a `model_dir` or a `ckpt-N` prefix written by
  `main --mode=train`; object-based, with the EMA shadows under `ema/`), whose
  architecture is read from `model_config.json` in the same folder;
* an original TF1 name-based checkpoint (tensorflow/tpu EfficientNet, the
  published noisy_student_efficientnet-* files, the original SVHN teacher),
  loaded through `efficientnet.load_tf1_checkpoint`.
Weights are the exponential moving average by default (`use_ema=True`), as the
original's eval and predict used. `noisy_student.models.loading` turns any
model file (these, `.keras`, SavedModel) into a model or a classifier.
"""

from __future__ import annotations

import json
import os
from typing import Optional

import keras
import tensorflow as tf

from data import writers
import efficientnet
from noisy_student.core import config as config_lib
from noisy_student.core import errors
from noisy_student.models import ema as ema_lib

MODEL_CONFIG_FILE = 'model_config.json'
_OBJECT_GRAPH_KEY = '_CHECKPOINTABLE_OBJECT_GRAPH'




def resolve_checkpoint(path: str) -> str:
  """The checkpoint prefix for a directory (its latest) or a prefix; else raises."""
  try:
    return efficientnet.resolve_checkpoint(path)
  except efficientnet.CheckpointNotFoundError as err:
    raise errors.CheckpointError(str(err)) from None


def is_object_based(prefix: str) -> bool:
  """True for TF2 object-based checkpoints (ours), False for TF1 name-based."""
  return any(name == _OBJECT_GRAPH_KEY
             for name, _ in tf.train.list_variables(prefix))


def model_config_path(path: str) -> str:
  directory = path if tf.io.gfile.isdir(path) else os.path.dirname(path)
  return os.path.join(directory, MODEL_CONFIG_FILE)


def write_model_config(model_dir: str, config: config_lib.ModelConfig) -> None:
  """Writes `<model_dir>/model_config.json` (atomically)."""
  writers.write_text(os.path.join(model_dir, MODEL_CONFIG_FILE),
                     config.to_json() + '\n')


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
    efficientnet.load_tf1_checkpoint(model, prefix, use_ema=use_ema,
                                     scope=tf1_scope)
    return prefix
  names = [name for name, _ in tf.train.list_variables(prefix)]
  has_ema = any(name.startswith('ema/') for name in names)
  trackables = {'model': model}
  if has_ema:
    ema = ema_lib.ExponentialMovingAverage(ema_lib.model_ema_weights(model),
                                           decay=0.5)
    trackables['ema'] = ema
  try:
    status = tf.train.Checkpoint(**trackables).restore(prefix)
    status.expect_partial()
    status.assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.InvalidArgumentError) as err:
    first_line = str(err).splitlines()[0][:300] if str(err) else type(err).__name__
    raise errors.CheckpointError(
        f'{prefix}: does not fit the {model.name} model being loaded '
        f'(check --model_name / model_config.json): {first_line}') from err
  if use_ema and has_ema:
    ema.copy_to(ema_lib.model_ema_weights(model))
  return prefix
