"""What a model reference is: the one function that decides (`kind`).

A *model reference* is anything a user may pass where a model is expected
(`--model_name`, `--teacher_model_path`, `--init_model_path`,
`--predict_ckpt_path`, `--model_path`, the API's `model_name=`):

  EFFICIENTNET        a name: efficientnet-b0 ... efficientnet-l2 (built fresh)
  KERAS_APPLICATION   `keras:<keras.applications name>` (built fresh)
  KERAS_FILE          a `.keras` file (architecture and weights)
  SAVED_MODEL         a SavedModel folder (`main --mode=export`; inference only)
  CHECKPOINT          a model_dir or `ckpt-N` prefix of ours (model_config.json beside it)
  TF1_CHECKPOINT      an original TF1 checkpoint (no model_config.json; the
                      architecture comes from the flags)
  SAFETENSORS         a timm `tf_efficientnet_*` state dict (`.safetensors`)

`noisy_student.models.loading` turns any of them into a model; nothing else
decides what a reference is. Names are decided without touching the file
system, files by what is on disk.
"""

from __future__ import annotations

import json
import os
from typing import Optional
import zipfile

import keras
import tensorflow as tf

from data import layout
import efficientnet
from noisy_student.runtime import errors

EFFICIENTNET = 'efficientnet'
KERAS_APPLICATION = 'keras_application'
KERAS_FILE = 'keras_file'
SAVED_MODEL = 'saved_model'
CHECKPOINT = 'checkpoint'
TF1_CHECKPOINT = 'tf1_checkpoint'
SAFETENSORS = 'safetensors'
# Kinds that name an architecture to build (a model_name), not weights.
BUILDABLE = (EFFICIENTNET, KERAS_APPLICATION, KERAS_FILE)

KERAS_PREFIX = 'keras:'
# Input size of keras.applications backbones when the dataset has none.
KERAS_DEFAULT_IMAGE_SIZE = 224


def name_kind(ref: str) -> Optional[str]:
  """EFFICIENTNET, KERAS_APPLICATION, KERAS_FILE or SAFETENSORS from the
  reference's spelling alone; None for a folder or checkpoint path."""
  if ref.startswith(KERAS_PREFIX):
    return KERAS_APPLICATION
  if layout.is_keras_file(ref):
    return KERAS_FILE
  if ref.endswith('.safetensors'):
    return SAFETENSORS
  if ref in efficientnet.list_models():
    return EFFICIENTNET
  return None


def kind(ref: str) -> str:
  """The kind of model reference `ref` (module docstring).

  Raises:
    MissingFileError naming `ref` when it is neither a known name nor an
    existing file, folder or checkpoint prefix.
  """
  by_name = name_kind(ref)
  if by_name is not None:
    return by_name
  if is_saved_model(ref):
    return SAVED_MODEL
  if not (tf.io.gfile.exists(ref) or tf.io.gfile.exists(ref + '.index')):
    raise errors.MissingFileError(
        f'{ref}: no such model (a model name, a .keras file, a SavedModel '
        'folder, a model_dir or a checkpoint prefix)')
  if tf.io.gfile.exists(layout.model_dir_file(ref, layout.MODEL_CONFIG_FILE)):
    return CHECKPOINT
  return TF1_CHECKPOINT


def is_saved_model(ref: str) -> bool:
  """True for a SavedModel folder (`saved_model.pb` inside)."""
  return tf.io.gfile.isdir(ref) and tf.io.gfile.exists(
      os.path.join(ref, 'saved_model.pb'))


def keras_application(name: str):
  """The `keras.applications` constructor `name`; ConfigError lists the known."""
  constructor = getattr(keras.applications, name, None)
  if not name[:1].isupper() or not callable(constructor):
    known = sorted(n for n in dir(keras.applications) if n[:1].isupper())
    raise errors.ConfigError(
        f'{errors.field_name("model_name")}=keras:{name}: not a '
        f'keras.applications model; known: {", ".join(known)}')
  return constructor


def check_model_name(model_name: str) -> None:
  """Raises ConfigError naming `model_name` unless the project can build it."""
  found = name_kind(model_name)
  if found == KERAS_APPLICATION:
    keras_application(model_name[len(KERAS_PREFIX):])
  elif found == KERAS_FILE:
    if not tf.io.gfile.exists(model_name):
      raise errors.ConfigError(f'{errors.field_name("model_name")}='
                               f'{model_name}: no such .keras file')
  elif found != EFFICIENTNET:
    raise errors.ConfigError(
        f'{errors.field_name("model_name")}={model_name!r} is not a model '
        f'this project builds: expected one of '
        f'{", ".join(efficientnet.list_models())}, '
        'keras:<keras.applications name> (e.g. keras:ResNet50), or a path to '
        'a .keras classifier')


def keras_file_image_size(path: str) -> int:
  """The input side of a `.keras` model, read from the file's config.json
  (the weights are not read)."""
  try:
    with tf.io.gfile.GFile(path, 'rb') as f, zipfile.ZipFile(f) as archive:
      config = json.loads(archive.read('config.json'))
    for layer in config['config']['layers']:
      if layer['class_name'] == 'InputLayer':
        side = layer['config']['batch_shape'][1]
        if side is None:
          raise errors.ConfigError(
              f'{path} takes images of any size (input shape '
              f'{tuple(layer["config"]["batch_shape"])}); this project needs '
              'one square size: save the model with a fixed input, e.g. '
              'keras.Input((224, 224, 3)) in front of it')
        return int(side)
  except (KeyError, TypeError, ValueError, zipfile.BadZipFile) as err:
    raise errors.ConfigError(f'{path}: cannot read its input size '
                             f'({type(err).__name__}: {err})') from None
  raise errors.ConfigError(f'{path}: no InputLayer in its config')


def native_image_size(model_name: str, *, for_eval: bool = False) -> int:
  """The input side in pixels that a buildable model name comes with.

  EfficientNet: its spec table (train or eval resolution); keras.applications:
  KERAS_DEFAULT_IMAGE_SIZE; a `.keras` file: its input layer.

  Raises:
    ConfigError naming the model when it is unknown.
  """
  check_model_name(model_name)
  found = name_kind(model_name)
  if found == KERAS_APPLICATION:
    return KERAS_DEFAULT_IMAGE_SIZE
  if found == KERAS_FILE:
    return keras_file_image_size(model_name)
  return efficientnet.default_image_size(model_name, for_eval=for_eval)


def has_eval_resolution(model_name: str) -> bool:
  """True for the EfficientNet family, whose models are evaluated at a
  larger size than they train at; other families run at one size."""
  return name_kind(model_name) == EFFICIENTNET
