"""EMA against tf.train.ExponentialMovingAverage's documented formula."""

import numpy as np
import pytest
import tensorflow as tf

from noisy_student.models import ema as ema_lib


def test_effective_decay_warmup():
  assert float(ema_lib.effective_decay(0.9999, 0)) == pytest.approx(0.1)
  assert float(ema_lib.effective_decay(0.9999, 1)) == pytest.approx(2 / 11)
  assert float(ema_lib.effective_decay(0.9999, 10 ** 7)) == pytest.approx(0.9999)


def test_updates_follow_hand_computed_sequence():
  weight = tf.Variable([1.0, -2.0])
  ema = ema_lib.ExponentialMovingAverage([weight], decay=0.5)
  expected = np.array([1.0, -2.0])
  for step, new_value in enumerate([[3.0, 0.0], [5.0, 4.0]], start=1):
    weight.assign(new_value)
    ema.update(step)
    d = min(0.5, (1 + step) / (10 + step))
    expected = expected - (1 - d) * (expected - np.array(new_value))
    np.testing.assert_allclose(ema.shadows[0].numpy(), expected, rtol=1e-6)
  target = tf.Variable([0.0, 0.0])
  ema.copy_to([target])
  np.testing.assert_allclose(target.numpy(), expected, rtol=1e-6)


def test_checkpoint_tracks_shadows_not_weights(tmp_path):
  weight = tf.Variable([1.0])
  ema = ema_lib.ExponentialMovingAverage([weight], decay=0.9)
  ema.shadows[0].assign([7.0])
  path = tf.train.Checkpoint(ema=ema).save(str(tmp_path / 'ckpt'))
  names = [n for n, _ in tf.train.list_variables(path)]
  assert sum('shadows' in n for n in names) == 1
  fresh = ema_lib.ExponentialMovingAverage([tf.Variable([0.0])], decay=0.9)
  tf.train.Checkpoint(ema=fresh).restore(path).assert_existing_objects_matched()
  assert fresh.shadows[0].numpy().tolist() == [7.0]
