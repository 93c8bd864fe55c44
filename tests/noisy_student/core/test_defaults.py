"""The recipes' helpers (noisy_student/core/defaults.py)."""

from noisy_student.core import defaults


def test_sized_to_data_is_the_original_on_imagenet_and_smaller_below():
  imagenet = defaults.sized_to_data(1281167)
  original = defaults.ORIGINAL.train
  assert imagenet == {
      'train_batch_size': original.train_batch_size,
      'train_steps': original.train_steps,
      'iterations_per_loop': original.iterations_per_loop,
      'save_checkpoints_steps': original.save_checkpoints_steps,
      'log_every_steps': original.log_every_steps,
      'steps_per_eval': original.steps_per_eval,
      'moving_average_decay': original.moving_average_decay}
  small = defaults.sized_to_data(300)
  assert small['train_batch_size'] == 32 and small['train_steps'] == 3281
  tiny = defaults.sized_to_data(20)
  assert tiny['train_batch_size'] == defaults.MIN_SIZED_BATCH
  assert tiny['iterations_per_loop'] >= 10
  assert 0.99 <= tiny['moving_average_decay'] < 1
  kept = defaults.sized_to_data(300, train_batch_size=100)
  assert kept['train_batch_size'] == 100 and kept['train_steps'] == 1050
  short = defaults.sized_to_data(300, train_steps=40)
  assert short['train_steps'] == 40 and short['iterations_per_loop'] == 10
  assert short['moving_average_decay'] == 0.99
