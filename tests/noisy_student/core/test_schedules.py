"""Learning-rate schedule against hand-computed values of the original formulas."""

import math

import pytest

from noisy_student.core import schedules


def test_imagenet_default_schedule_values():
  # train_batch_size 4096, base 0.016 -> initial lr 0.256.
  sched = schedules.build_schedule(
      base_learning_rate=0.016, train_batch_size=4096,
      num_train_images=1281167, train_steps=109474,
      train_last_step_num=109474)
  per_epoch = 1281167 / 4096
  assert sched.initial_lr == pytest.approx(0.256)
  assert sched.warmup_steps == int(5 * per_epoch) == 1563
  assert sched.decay_steps == pytest.approx(2.4 * per_epoch)
  assert sched.numpy(0) == 0.0
  assert sched.numpy(781) == pytest.approx(0.256 * 781 / 1563)
  step = 10000
  expected = 0.256 * 0.97 ** math.floor(step / (2.4 * per_epoch))
  assert sched.numpy(step) == pytest.approx(expected)
  assert float(sched(step)) == pytest.approx(expected, rel=1e-6)
  assert float(sched(781)) == pytest.approx(sched.numpy(781), rel=1e-6)


def test_final_base_lr_reaches_target_at_last_step():
  # The SVHN recipe: batch 128, base 0.016, final 2e-4.
  train_steps = 50000
  sched = schedules.build_schedule(
      base_learning_rate=0.016, train_batch_size=128,
      num_train_images=69257, train_steps=train_steps,
      train_last_step_num=train_steps, final_base_lr=0.0002)
  per_epoch = 69257 / 128
  total_epochs = train_steps * 128 / 69257 - 5
  decay_times = math.log(0.0002 / 0.016) / math.log(0.97)
  assert sched.decay_steps == pytest.approx(per_epoch * total_epochs / decay_times)
  # The original derives the decay over the post-warm-up epochs but counts
  # decays from step 0, so the (batch-scaled) final_base_lr is reached five
  # epochs before the last step, and the rate keeps decaying after it.
  scale = 128 / 256
  at_target = sched.numpy(int(total_epochs * per_epoch))
  assert at_target == pytest.approx(0.0002 * scale, rel=0.031)
  assert sched.numpy(train_steps) < at_target


def test_train_ratio_and_last_step_offset():
  sched = schedules.build_schedule(
      base_learning_rate=0.016, train_batch_size=256, num_train_images=2560,
      train_steps=1000, train_last_step_num=400, train_ratio=2.0)
  assert sched.start_from_step == 600
  assert sched.decay_steps == pytest.approx(4.8 * 10)
  assert sched.numpy(0) == pytest.approx(0.016 * 0.97 ** math.floor(600 / 48))


def test_final_base_lr_validation_names_flag():
  with pytest.raises(ValueError, match='final_base_lr'):
    schedules.build_schedule(base_learning_rate=0.016, train_batch_size=128,
                             num_train_images=69257, train_steps=10,
                             train_last_step_num=10, final_base_lr=0.0002)
