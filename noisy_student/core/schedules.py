"""Learning-rate schedule and step arithmetic of the original training recipe.

The original (noisystudent `utils.build_learning_rate` + `main.py`) uses:
  initial_lr      = base_learning_rate * (train_batch_size * p) / 256
  steps_per_epoch = num_train_images / (train_batch_size * p)
  lr(step)        = initial_lr * step / warmup_steps          if step < warmup_steps
                  = initial_lr * 0.97 ** floor(step / decay_steps)   otherwise
  warmup_steps    = int(5 * steps_per_epoch), decay_steps = decay_epochs * steps_per_epoch
with p = label_data_sample_prob and `step` offset by
`train_steps - train_last_step_num` (for fine-tuning the tail of a schedule).
decay_epochs is 2.4 * train_ratio, or, when `final_base_lr` is set, chosen so
that the decayed rate reaches final_base_lr at the last step:
  total_epochs = train_steps * train_batch_size / num_train_images - 5
  decay_epochs = total_epochs / (log(final_base_lr / base_learning_rate) / log(0.97))
"""

from __future__ import annotations

import dataclasses
import math

import tensorflow as tf

from noisy_student.runtime import errors

WARMUP_EPOCHS = 5
DECAY_FACTOR = 0.97
DEFAULT_DECAY_EPOCHS = 2.4


@dataclasses.dataclass(frozen=True)
class LearningRateSchedule:
  """The exponential-decay-with-warmup schedule, all quantities in steps.

  Attributes:
    initial_lr: peak learning rate after warm-up (already batch-scaled).
    warmup_steps: steps of linear warm-up from 0 (int, as the original).
    decay_steps: steps between two x0.97 decays (float).
    start_from_step: offset added to the global step (train_last_step_num).
  """
  initial_lr: float
  warmup_steps: int
  decay_steps: float
  start_from_step: int = 0
  decay_factor: float = DECAY_FACTOR

  def __call__(self, step) -> tf.Tensor:
    """float32 learning rate at global `step` (a scalar tensor or int)."""
    lr_step = tf.cast(step, tf.float32) + float(self.start_from_step)
    decayed = self.initial_lr * tf.pow(
        self.decay_factor, tf.floor(lr_step / self.decay_steps))
    if self.warmup_steps <= 0:
      return decayed
    warmup = self.initial_lr * lr_step / float(self.warmup_steps)
    return tf.where(lr_step < float(self.warmup_steps), warmup, decayed)

  def numpy(self, step: int) -> float:
    """Pure-Python value at `step` (for logs and tests)."""
    lr_step = step + self.start_from_step
    if self.warmup_steps > 0 and lr_step < self.warmup_steps:
      return self.initial_lr * lr_step / self.warmup_steps
    return self.initial_lr * self.decay_factor ** math.floor(
        lr_step / self.decay_steps)


def steps_per_epoch(num_train_images: int, train_batch_size: int,
                    label_data_sample_prob: float = 1.0) -> float:
  """Labeled images per epoch / labeled images per step (float, as the original)."""
  return num_train_images / (train_batch_size * label_data_sample_prob)


def decay_epochs(*, train_steps: int, train_batch_size: int,
                 num_train_images: int, base_learning_rate: float,
                 final_base_lr: float | None, train_ratio: float) -> float:
  """Epochs between two decays (see module docstring)."""
  if not final_base_lr:
    return DEFAULT_DECAY_EPOCHS * train_ratio
  name = errors.field_name
  if not 0 < final_base_lr < base_learning_rate:
    raise errors.ConfigError(
        f'{name("final_base_lr")} must be in (0, {name("base_learning_rate")}='
        f'{base_learning_rate}), received: {final_base_lr}')
  total_epochs = (train_steps * train_batch_size * 1.0 / num_train_images
                  - WARMUP_EPOCHS)
  if total_epochs <= 0:
    raise errors.ConfigError(
        f'{name("final_base_lr")}={final_base_lr} needs more than '
        f'{WARMUP_EPOCHS} epochs of training (the warm-up), but '
        f'{name("train_steps")}={train_steps} x {name("train_batch_size")}='
        f'{train_batch_size} covers {total_epochs + WARMUP_EPOCHS:.2f} epochs '
        f'of {num_train_images} images: train longer, or unset '
        f'{name("final_base_lr")} (decay every 2.4 epochs)')
  decay_times = math.log(final_base_lr / base_learning_rate) / math.log(
      DECAY_FACTOR)
  return total_epochs / decay_times


def build_schedule(*, base_learning_rate: float, train_batch_size: int,
                   num_train_images: int, train_steps: int,
                   train_last_step_num: int, train_ratio: float = 1.0,
                   final_base_lr: float | None = None,
                   label_data_sample_prob: float = 1.0,
                   warmup_epochs: float = WARMUP_EPOCHS) -> LearningRateSchedule:
  """The original schedule from the original flags (train_steps after train_ratio)."""
  real_batch = train_batch_size * label_data_sample_prob
  per_epoch = steps_per_epoch(num_train_images, train_batch_size,
                              label_data_sample_prob)
  epochs = decay_epochs(
      train_steps=train_steps, train_batch_size=train_batch_size,
      num_train_images=num_train_images,
      base_learning_rate=base_learning_rate, final_base_lr=final_base_lr,
      train_ratio=train_ratio)
  return LearningRateSchedule(
      initial_lr=base_learning_rate * real_batch / 256.0,
      warmup_steps=int(warmup_epochs * per_epoch),
      decay_steps=per_epoch * epochs,
      start_from_step=train_steps - train_last_step_num)


def from_train_config(train) -> LearningRateSchedule:
  """The schedule of a `noisy_student.core.config.TrainConfig`."""
  return build_schedule(
      base_learning_rate=train.base_learning_rate,
      train_batch_size=train.train_batch_size,
      num_train_images=train.num_train_images, train_steps=train.train_steps,
      train_last_step_num=train.last_step,
      train_ratio=train.train_ratio, final_base_lr=train.final_base_lr,
      label_data_sample_prob=train.label_data_sample_prob)
