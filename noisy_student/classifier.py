"""A model-format-agnostic image classifier: float images 0-255 -> logits.

Evaluation, prediction, robustness and the on-the-fly teacher all need "a
function from images to logits" but receive models in several formats. This
module hides the format behind one small class:

* a Keras model in memory (`Classifier.from_keras`),
* a `.keras` file,
* a SavedModel exported by `main --mode=export` (its `serving_default`
  signature returns `logits`),
* a training checkpoint of ours or an original TF1 checkpoint (added by
  `noisy_student.checkpoints`, which needs the model definition).

Images are float32 `[batch, height, width, 3]` with values in [0, 255], already
cropped/resized to `image_size`; normalisation happens inside the model.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable

import numpy as np
import tensorflow as tf


@dataclasses.dataclass
class Classifier:
  """Callable image classifier.

  Attributes:
    logits_fn: float32 [N, H, W, 3] (0-255) -> float32 [N, num_classes];
      differentiable with respect to its input (FGSM needs the gradient).
    image_size: the square input resolution the model expects, in pixels.
    num_classes: width of the logits.
    name: a short label for reports (file name or model name).
  """
  logits_fn: Callable[[tf.Tensor], tf.Tensor]
  image_size: int
  num_classes: int
  name: str = 'model'

  def logits(self, images: tf.Tensor) -> tf.Tensor:
    return tf.cast(self.logits_fn(tf.cast(images, tf.float32)), tf.float32)

  def predict_logits(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Logits for a numpy batch of any size, computed `batch_size` at a time."""
    outputs = []
    for start in range(0, len(images), batch_size):
      outputs.append(self.logits(tf.constant(
          images[start:start + batch_size], tf.float32)).numpy())
    if not outputs:
      return np.zeros((0, self.num_classes), np.float32)
    return np.concatenate(outputs, 0)

  @classmethod
  def from_keras(cls, model, name: str | None = None) -> 'Classifier':
    """Wraps a Keras model mapping 0-255 images to logits (inference mode)."""
    image_size = int(model.input_shape[1])
    num_classes = int(model.output_shape[-1])

    @tf.function(reduce_retracing=True)
    def logits_fn(images):
      return model(images, training=False)

    return cls(logits_fn, image_size, num_classes, name or model.name)


def _from_saved_model(path: str, name: str) -> Classifier:
  loaded = tf.saved_model.load(path)
  if 'serving_default' not in loaded.signatures:
    raise ValueError(f'{path}: the SavedModel has no serving_default signature')
  signature = loaded.signatures['serving_default']
  input_name, input_spec = next(iter(
      signature.structured_input_signature[1].items()))
  outputs = signature.structured_outputs
  if 'logits' in outputs:
    output_key = 'logits'
  elif 'probabilities' in outputs:
    output_key = 'probabilities'
  else:
    raise ValueError(f'{path}: serving_default returns {sorted(outputs)}; '
                     'expected `logits` or `probabilities`')
  num_classes = int(outputs[output_key].shape[-1])
  image_size = input_spec.shape[1]
  if image_size is None:
    raise ValueError(f'{path}: serving_default input `{input_name}` has no '
                     'fixed image size')

  def logits_fn(images):
    out = signature(**{input_name: images})[output_key]
    if output_key == 'probabilities':  # log-probabilities order like logits
      out = tf.math.log(tf.maximum(out, 1e-12))
    return out

  classifier = Classifier(logits_fn, int(image_size), num_classes, name)
  classifier._saved_model = loaded  # keep the trackable alive
  return classifier


def load_classifier(path: str, **model_kwargs) -> Classifier:
  """Loads a classifier from a `.keras` file, a SavedModel or a checkpoint.

  Args:
    path: a `.keras` file, a SavedModel directory, a training `model_dir` /
      checkpoint prefix of ours, or an original TF1 checkpoint prefix.
    **model_kwargs: for checkpoints only (they hold weights, not the
      architecture): `model_name`, `num_classes`, `image_size`, `small_image`,
      `mean_rgb`, `stddev_rgb`, `use_ema`.

  Raises:
    FileNotFoundError / ValueError naming `path` when it cannot be loaded.
  """
  name = os.path.basename(os.path.normpath(path))
  if path.endswith('.keras'):
    if not tf.io.gfile.exists(path):
      raise FileNotFoundError(f'{path}: no such .keras file')
    import keras  # pylint: disable=g-import-not-at-top
    import efficientnet  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import  (registers custom layers)
    return Classifier.from_keras(keras.models.load_model(path, compile=False),
                                 name)
  if tf.io.gfile.isdir(path) and tf.io.gfile.exists(
      os.path.join(path, 'saved_model.pb')):
    return _from_saved_model(path, name)
  from noisy_student import checkpoints  # pylint: disable=g-import-not-at-top
  return checkpoints.classifier_from_checkpoint(path, **model_kwargs)
