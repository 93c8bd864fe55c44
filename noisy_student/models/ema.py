"""Exponential moving average of model weights, as tf.train.ExponentialMovingAverage.

The original keeps, for every trainable weight and every BatchNorm moving
statistic, a shadow updated after each training step with

  decay_t = min(decay, (1 + num_updates) / (10 + num_updates))
  shadow  = shadow - (1 - decay_t) * (shadow - weight)

where num_updates is the global step after the increment. Shadows start from
the weights' values when the average is created (after any initialisation from
a checkpoint). Evaluation, prediction and export use the shadows.
"""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf


def effective_decay(decay: float, num_updates) -> tf.Tensor:
  """min(decay, (1 + n) / (10 + n)) as float32 (n = num_updates)."""
  n = tf.cast(num_updates, tf.float32)
  return tf.minimum(tf.constant(decay, tf.float32), (1.0 + n) / (10.0 + n))


class ExponentialMovingAverage(tf.Module):
  """Shadow copies of a fixed list of weights.

  Create it inside the distribution strategy's scope. The shadows are tracked
  (checkpointed) under this module; the averaged weights themselves are not.
  Shadows are ON_READ variables: each replica updates its own copy inside the
  train step with no cross-replica traffic (replicas hold identical weights,
  except per-replica BatchNorm statistics without sync BN); checkpoints save
  the first replica's copy, as a TPU job saves core 0's statistics.

  Args:
    weights: the model variables to average (keras or tf variables, float).
    decay: the maximum decay, e.g. 0.9999.
  """

  def __init__(self, weights: Sequence, decay: float, name: str = 'ema'):
    super().__init__(name=name)
    if not 0.0 < decay < 1.0:
      raise ValueError(f'moving_average_decay must be in (0, 1), received: {decay}')
    self.decay = float(decay)
    weights = list(weights)
    self._source = lambda: weights  # a closure, so tf.Module does not track them
    self.shadows = [
        tf.Variable(tf.identity(_value(w)), trainable=False,
                    name=_shadow_name(w),
                    synchronization=tf.VariableSynchronization.ON_READ,
                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        for w in weights
    ]

  @property
  def weights(self) -> list:
    return self._source()

  def update(self, num_updates) -> None:
    """One EMA step; call in replica or cross-replica context after the update."""
    decay = effective_decay(self.decay, num_updates)
    for shadow, weight in zip(self.shadows, self.weights):
      value = tf.cast(_value(weight), shadow.dtype)
      shadow.assign_sub((1.0 - decay) * (shadow - value))

  def reset(self) -> None:
    """Sets every shadow to its weight's current value."""
    for shadow, weight in zip(self.shadows, self.weights):
      shadow.assign(tf.cast(_value(weight), shadow.dtype))

  def copy_to(self, target_weights: Sequence) -> None:
    """Assigns the shadows to `target_weights` (same order and shapes)."""
    target_weights = list(target_weights)
    if len(target_weights) != len(self.shadows):
      raise ValueError(f'copy_to needs {len(self.shadows)} weights, '
                       f'received {len(target_weights)}')
    for shadow, target in zip(self.shadows, target_weights):
      target.assign(tf.cast(shadow, target.dtype))


def model_ema_weights(model) -> list:
  """The weights the original averages: trainable ones + BN moving statistics."""
  moving = [w for w in model.non_trainable_weights
            if w.path.endswith(('moving_mean', 'moving_variance'))]
  return list(model.trainable_weights) + moving


def _value(weight):
  """The tf.Variable behind a keras.Variable (or the argument itself)."""
  return weight.value if isinstance(weight, keras.Variable) else weight


def _shadow_name(weight) -> str:
  name = getattr(weight, 'path', None) or getattr(weight, 'name', 'weight')
  return name.replace(':', '_').replace('/', '__') + '_ema'
