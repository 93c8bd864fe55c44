"""A model-format-agnostic image classifier: float images 0-255 -> logits.

Robustness evaluation and FGSM need "a function from images to logits" but
receive models in several formats; `noisy_student.models.loading.load_classifier`
makes one of these from any of them (a Keras model in memory, a `.keras`
file, a SavedModel, a checkpoint of ours or an original TF1 checkpoint).

Images are float32 `[batch, height, width, 3]` with values in [0, 255], already
cropped/resized to `image_size`; normalisation happens inside the model.
"""

from __future__ import annotations

import dataclasses
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
