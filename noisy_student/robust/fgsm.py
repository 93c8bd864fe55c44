"""One-step FGSM (fast gradient sign method) attack and accuracy sweep.

    x' = clip(x + epsilon * sign(d CE(logits(x), label) / dx), 0, 255)

`x` is the model input: float32 [N, S, S, 3] pixels in [0, 255], after the
eval preprocessing (crop / resize), before the normalisation inside the model.
`epsilon` is therefore in 0-255 pixel units (epsilon = 1 changes each pixel
by at most one grey level). The model runs in inference mode
(`Classifier.logits`, `training=False`), so dropout and stochastic depth are
off and batch norm uses its moving statistics.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import tensorflow as tf

from noisy_student.models import classifier as classifier_lib


def gradient_sign(classifier: classifier_lib.Classifier, images,
                  labels) -> tf.Tensor:
  """sign(d CE / d images), float32 [N, S, S, 3] in {-1, 0, 1}.

  The cross-entropy is summed over the batch, so each image's gradient is its
  own (the sign is the same for the mean).
  """
  images = tf.convert_to_tensor(images, tf.float32)
  labels = tf.convert_to_tensor(labels, tf.int64)
  with tf.GradientTape() as tape:
    tape.watch(images)
    logits = classifier.logits(images)
    loss = tf.reduce_sum(tf.keras.losses.sparse_categorical_crossentropy(
        labels, logits, from_logits=True))
  gradient = tape.gradient(loss, images)
  if gradient is None:
    raise ValueError(f'{classifier.name}: the logits are not differentiable '
                     'with respect to the input images')
  return tf.sign(gradient)


def _attack(images: tf.Tensor, sign: tf.Tensor, epsilon: float) -> tf.Tensor:
  """clip(images + epsilon * sign, 0, 255); epsilon 0 leaves them unchanged.

  (Unchanged rather than clipped, so epsilon 0 is exactly the clean accuracy
  even where a bicubic resize overshot [0, 255].)
  """
  if epsilon < 0:
    raise ValueError(f'epsilon must be >= 0, received: {epsilon}')
  if epsilon == 0:
    return images
  return tf.clip_by_value(images + epsilon * sign, 0.0, 255.0)


def fgsm_images(classifier: classifier_lib.Classifier, images, labels,
                epsilon: float) -> tf.Tensor:
  """Adversarial images, float32 [N, S, S, 3] in [0, 255].

  Args:
    classifier: a differentiable Classifier.
    images: float32 [N, S, S, 3] in [0, 255].
    labels: int [N], 0-based true labels.
    epsilon: step size in 0-255 pixel units, >= 0 (0 returns the images).
  """
  images = tf.convert_to_tensor(images, tf.float32)
  return _attack(images, gradient_sign(classifier, images, labels),
                 float(epsilon))


def fgsm_correct(classifier: classifier_lib.Classifier, images, labels,
                 epsilons: Sequence[float]) -> dict[float, np.ndarray]:
  """bool [N] per epsilon: top-1 correct on the attacked images.

  The gradient is computed once per batch and reused for every epsilon.
  """
  images = tf.convert_to_tensor(images, tf.float32)
  labels = np.asarray(labels).astype(np.int64)
  sign = gradient_sign(classifier, images, labels)
  out = {}
  for epsilon in epsilons:
    adversarial = _attack(images, sign, float(epsilon))
    predictions = np.argmax(classifier.logits(adversarial).numpy(), axis=-1)
    out[float(epsilon)] = predictions == labels
  return out


def fgsm_accuracy(classifier: classifier_lib.Classifier,
                  batches: Iterable[tuple[np.ndarray, np.ndarray]],
                  epsilons: Sequence[float],
                  progress=None) -> dict:
  """Top-1 accuracy under FGSM for each epsilon.

  Args:
    classifier: the model.
    batches: (images float32 [B, S, S, 3] 0-255, labels int [B]) pairs.
    epsilons: attack strengths in 0-255 pixel units (0 = clean accuracy).
    progress: optional callable(num_images) called after each batch.

  Returns:
    {'epsilons': [...], 'top_1_accuracy': {str(eps): fraction},
     'num_images': N}.
  """
  epsilons = [float(e) for e in epsilons]
  correct = {e: 0 for e in epsilons}
  total = 0
  for images, labels in batches:
    for epsilon, hits in fgsm_correct(classifier, images, labels,
                                      epsilons).items():
      correct[epsilon] += int(hits.sum())
    total += len(labels)
    if progress is not None:
      progress(len(labels))
  if not total:
    raise ValueError('FGSM: no images to attack')
  return {
      'epsilons': epsilons,
      'top_1_accuracy': {_key(e): correct[e] / total for e in epsilons},
      'num_images': total,
  }


def _key(epsilon: float) -> str:
  """'2' for 2.0, '0.5' for 0.5: a stable JSON key."""
  return f'{epsilon:g}'
