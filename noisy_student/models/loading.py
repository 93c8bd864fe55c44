"""One loader for every model format a user may hand us.

* `load_model(path)` -> keras.Model, from
  - a `.keras` file (architecture + weights),
  - a training checkpoint of ours (a `model_dir` or a `ckpt-N` prefix;
    architecture from the `model_config.json` beside it, EMA weights),
  - an original TF1 checkpoint (architecture from the `fallback` config);
* `load_classifier(path)` -> `Classifier`, from any of the above or from a
  SavedModel exported by `main --mode=export`.
Every failure is an `errors.CheckpointError` naming the path.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

import keras
import tensorflow as tf

import efficientnet  # noqa: F401  (registers the custom layers .keras files use)
from data import layout
from noisy_student.core import config as config_lib
from noisy_student.core import datasets
from noisy_student.runtime import errors
from noisy_student.core import factory
from noisy_student.models import backbones
from noisy_student.models import checkpoints
from noisy_student.models import classifier as classifier_lib


def load_keras_file(path: str) -> keras.Model:
  """A `.keras` file saved by this project (or any Keras 3 model)."""
  if not tf.io.gfile.exists(path):
    raise errors.CheckpointError(f'{path}: no such .keras file')
  try:
    return keras.models.load_model(path, compile=False)
  except (ValueError, TypeError, OSError) as err:
    first_line = str(err).splitlines()[0][:300] if str(err) else type(err).__name__
    raise errors.CheckpointError(f'{path}: cannot load this .keras file: '
                                 f'{first_line}') from err


def load_model(path: str,
               fallback: Optional[config_lib.ModelConfig] = None, *,
               use_ema: bool = True, name: Optional[str] = None,
               **overrides) -> keras.Model:
  """A keras.Model with weights from a `.keras` file or a checkpoint.

  For checkpoints the architecture comes from `model_config.json` next to it
  (ours), else from `fallback`; `overrides` (e.g. image_size, num_classes,
  sync_batch_norm) replace fields of that config (None values are ignored).
  """
  if path.endswith('.keras'):
    return load_keras_file(path)
  config = checkpoints.read_model_config(path) or fallback
  if config is None:
    raise errors.CheckpointError(
        f'{path}: no {layout.MODEL_CONFIG_FILE} next to the checkpoint; '
        'pass the architecture (e.g. --model_name, --num_label_classes)')
  overrides = {k: v for k, v in overrides.items() if v is not None}
  if overrides:
    config = dataclasses.replace(config, **overrides)
  model = backbones.build_model(config, name=name)
  checkpoints.restore_model_weights(model, path, use_ema=use_ema)
  return model


def tf1_fallback_config(model_name: str, *, num_classes: Optional[int] = None,
                        image_size: Optional[int] = None,
                        small_image: Optional[bool] = None,
                        mean_rgb=None, stddev_rgb=None
                        ) -> config_lib.ModelConfig:
  """The architecture of an original checkpoint: ImageNet unless overridden.

  Normalisation defaults to the ImageNet mean/std and the size to the model's
  eval resolution, as the original evaluation used.
  """
  return factory.model_config(
      datasets.get_builtin('imagenet'), model_name, num_classes=num_classes,
      image_size_override=image_size, small_image=small_image,
      mean_rgb=mean_rgb, stddev_rgb=stddev_rgb, for_eval=True)


def _saved_model_classifier(path: str, name: str) -> classifier_lib.Classifier:
  loaded = tf.saved_model.load(path)
  if 'serving_default' not in loaded.signatures:
    raise errors.CheckpointError(
        f'{path}: the SavedModel has no serving_default signature')
  signature = loaded.signatures['serving_default']
  input_name, input_spec = next(iter(
      signature.structured_input_signature[1].items()))
  outputs = signature.structured_outputs
  if 'logits' in outputs:
    output_key = 'logits'
  elif 'probabilities' in outputs:
    output_key = 'probabilities'
  else:
    raise errors.CheckpointError(
        f'{path}: serving_default returns {sorted(outputs)}; expected '
        '`logits` or `probabilities`')
  num_classes = int(outputs[output_key].shape[-1])
  image_size = input_spec.shape[1]
  if image_size is None:
    raise errors.CheckpointError(f'{path}: serving_default input '
                                 f'`{input_name}` has no fixed image size')

  def logits_fn(images):
    out = signature(**{input_name: images})[output_key]
    if output_key == 'probabilities':  # log-probabilities order like logits
      out = tf.math.log(tf.maximum(out, 1e-12))
    return out

  classifier = classifier_lib.Classifier(logits_fn, int(image_size),
                                         num_classes, name)
  classifier._saved_model = loaded  # keep the trackable alive
  return classifier


def is_saved_model(path: str) -> bool:
  return tf.io.gfile.isdir(path) and tf.io.gfile.exists(
      os.path.join(path, 'saved_model.pb'))


def load_classifier(path: str, *, model_name: Optional[str] = None,
                    num_classes: Optional[int] = None,
                    image_size: Optional[int] = None,
                    small_image: Optional[bool] = None,
                    mean_rgb=None, stddev_rgb=None,
                    use_ema: bool = True) -> classifier_lib.Classifier:
  """A classifier from a `.keras` file, a SavedModel or a checkpoint.

  Args:
    path: a `.keras` file, a SavedModel directory, a training `model_dir` /
      checkpoint prefix of ours, or an original TF1 checkpoint prefix.
    model_name .. stddev_rgb: the architecture of a TF1 checkpoint (ours carry
      it in model_config.json); `image_size` also resizes ours.
    use_ema: load the EMA weights of a checkpoint.

  Raises:
    CheckpointError naming `path` when it cannot be loaded.
  """
  name = os.path.basename(os.path.normpath(path))
  if not tf.io.gfile.exists(path) and not tf.io.gfile.exists(path + '.index'):
    raise errors.MissingFileError(
        f'{path}: no such model (a .keras file, a SavedModel folder, a '
        'model_dir or a checkpoint prefix)')
  if is_saved_model(path):
    return _saved_model_classifier(path, name)
  fallback = None
  if model_name:
    fallback = tf1_fallback_config(
        model_name, num_classes=num_classes, image_size=image_size,
        small_image=small_image, mean_rgb=mean_rgb, stddev_rgb=stddev_rgb)
  model = load_model(path, fallback, use_ema=use_ema, image_size=image_size)
  return classifier_lib.Classifier.from_keras(model, name=name)
