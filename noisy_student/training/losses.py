"""Losses of Noisy Student Training, as pure TF functions.

All functions take float32 logits `[batch, num_classes]` and return
per-example losses `[batch]`; reduction and the scaling to the global batch
happen in exactly one place (`combine_losses`), called by the train step.
"""

from __future__ import annotations

import tensorflow as tf


def smooth_one_hot(labels: tf.Tensor, num_classes: int,
                   label_smoothing: float) -> tf.Tensor:
  """One-hot targets with label smoothing, as tf.losses.softmax_cross_entropy.

  target = one_hot * (1 - label_smoothing) + label_smoothing / num_classes.

  Args:
    labels: int [batch], 0-based class ids.
    num_classes: C.
    label_smoothing: in [0, 1).
  Returns:
    float32 [batch, C], rows sum to 1.
  """
  one_hot = tf.one_hot(labels, num_classes, dtype=tf.float32)
  return one_hot * (1.0 - label_smoothing) + label_smoothing / num_classes


def cross_entropy(target_probs: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
  """Per-example cross-entropy -sum(target * log_softmax(logits)), float32 [batch]."""
  log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
  return -tf.reduce_sum(tf.cast(target_probs, tf.float32) * log_probs, axis=-1)


def labeled_loss(labels: tf.Tensor, logits: tf.Tensor, num_classes: int,
                 label_smoothing: float) -> tf.Tensor:
  """Per-example smoothed cross-entropy on labeled data, float32 [batch]."""
  return cross_entropy(smooth_one_hot(labels, num_classes, label_smoothing),
                       logits)


def teacher_targets_from_logits(teacher_logits: tf.Tensor, num_classes: int,
                                softmax_temp: float,
                                label_smoothing: float) -> tf.Tensor:
  """Targets from a teacher running on the fly.

  `softmax_temp == -1` means hard labels: the one-hot argmax with label
  smoothing (the original's `teacher_softmax_temp=-1`). Otherwise soft labels:
  softmax(teacher_logits / softmax_temp).

  Returns:
    float32 [batch, C], rows sum to 1, no gradient.
  """
  teacher_logits = tf.stop_gradient(tf.cast(teacher_logits, tf.float32))
  if softmax_temp == -1:
    hard = tf.argmax(teacher_logits, axis=-1, output_type=tf.int32)
    return smooth_one_hot(hard, num_classes, label_smoothing)
  if softmax_temp <= 0:
    raise ValueError(
        f'teacher_softmax_temp must be -1 or > 0, received: {softmax_temp}')
  return tf.nn.softmax(teacher_logits / softmax_temp, axis=-1)


def teacher_targets_from_probs(probabilities: tf.Tensor, labels: tf.Tensor,
                               num_classes: int, softmax_temp: float,
                               label_smoothing: float) -> tf.Tensor:
  """Targets from stored (offline) pseudo-labels.

  Hard (`softmax_temp == -1`): one-hot of the stored `label` with smoothing.
  Soft: the stored probabilities sharpened by the power 1/T and renormalised,
  p_i^(1/T) / sum_j p_j^(1/T) (the original's offline rule).

  Args:
    probabilities: float32 [batch, C] teacher softmax stored in the records.
    labels: int [batch] stored argmax labels.
  Returns:
    float32 [batch, C].
  """
  if softmax_temp == -1:
    return smooth_one_hot(labels, num_classes, label_smoothing)
  if softmax_temp <= 0:
    raise ValueError(
        f'teacher_softmax_temp must be -1 or > 0, received: {softmax_temp}')
  scaled = tf.pow(tf.cast(probabilities, tf.float32), 1.0 / softmax_temp)
  return scaled / tf.reduce_sum(scaled, axis=-1, keepdims=True)


def l2_weight_decay(weights) -> tf.Tensor:
  """sum over `weights` of 0.5 * ||w||^2 (tf.nn.l2_loss), float32 scalar."""
  terms = [tf.nn.l2_loss(tf.cast(w, tf.float32)) for w in weights]
  return tf.add_n(terms) if terms else tf.constant(0.0)


def combine_losses(labeled_sum: tf.Tensor, unlabeled_sum: tf.Tensor | None, *,
                   global_labeled_batch: int, global_unlabeled_batch: int,
                   unlabel_ratio: float, label_data_sample_prob: float = 1.0,
                   ) -> tf.Tensor:
  """The original's data loss, from per-replica sums, scaled to the global batch.

  The original computes (per global batch of B labeled and U unlabeled images)
    lab_loss  = sum(masked labeled losses) / B
    unl_loss  = sum(unlabeled losses) / U
    data_loss = (lab_loss * B*p + unl_loss * B*p*r) / (B*p)
              = lab_loss + r * unl_loss
  with p = label_data_sample_prob and r = unlabel_ratio. Each replica passes
  the sums over its own examples; summing the returned values (and gradients)
  over replicas gives exactly the global data loss.

  Args:
    labeled_sum: float32 scalar, sum of this replica's (masked) labeled losses.
    unlabeled_sum: float32 scalar or None when there is no unlabeled data.
    global_labeled_batch: B, labeled images per step over all replicas.
    global_unlabeled_batch: U, unlabeled images per step over all replicas.
    unlabel_ratio: r.
    label_data_sample_prob: p (only enters through the masking of the sums).
  Returns:
    float32 scalar: this replica's share of the data loss.
  """
  del label_data_sample_prob  # cancels out, see docstring
  loss = labeled_sum / float(global_labeled_batch)
  if unlabeled_sum is not None and global_unlabeled_batch > 0:
    loss += unlabel_ratio * unlabeled_sum / float(global_unlabeled_batch)
  return loss
