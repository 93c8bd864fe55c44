"""Loss functions against hand-computed values."""

import math

import numpy as np
import pytest
import tensorflow as tf

from noisy_student.training import losses


def test_smooth_one_hot_matches_tf1_definition():
  targets = losses.smooth_one_hot(tf.constant([2, 0]), 4, 0.1).numpy()
  np.testing.assert_allclose(targets[0], [0.025, 0.025, 0.925, 0.025])
  np.testing.assert_allclose(targets.sum(-1), [1.0, 1.0], rtol=1e-6)


def test_labeled_loss_hand_computed():
  logits = tf.constant([[2.0, 0.0, -1.0]])
  # log_softmax: logits - log(e^2 + 1 + e^-1)
  lse = math.log(math.exp(2) + 1 + math.exp(-1))
  log_p = [2 - lse, 0 - lse, -1 - lse]
  smoothing = 0.3
  target = [0.7 + 0.1, 0.1, 0.1]
  expected = -sum(t * l for t, l in zip(target, log_p))
  got = losses.labeled_loss(tf.constant([0]), logits, 3, smoothing).numpy()
  np.testing.assert_allclose(got, [expected], rtol=1e-6)


def test_teacher_targets_hard_and_soft():
  teacher = tf.constant([[1.0, 3.0, 2.0]])
  hard = losses.teacher_targets_from_logits(teacher, 3, -1, 0.0).numpy()
  np.testing.assert_array_equal(hard, [[0.0, 1.0, 0.0]])
  soft = losses.teacher_targets_from_logits(teacher, 3, 2.0, 0.1).numpy()
  e = np.exp(np.array([1.0, 3.0, 2.0]) / 2.0)
  np.testing.assert_allclose(soft, [e / e.sum()], rtol=1e-6)
  with pytest.raises(ValueError, match='teacher_softmax_temp'):
    losses.teacher_targets_from_logits(teacher, 3, 0.0, 0.1)


def test_offline_targets_sharpen_by_inverse_temperature():
  probs = tf.constant([[0.2, 0.3, 0.5]])
  got = losses.teacher_targets_from_probs(probs, tf.constant([2]), 3, 0.5,
                                          0.0).numpy()
  squared = np.array([0.04, 0.09, 0.25])
  np.testing.assert_allclose(got, [squared / squared.sum()], rtol=1e-6)
  hard = losses.teacher_targets_from_probs(probs, tf.constant([1]), 3, -1,
                                           0.3).numpy()
  np.testing.assert_allclose(hard, [[0.1, 0.8, 0.1]], rtol=1e-6)


def test_l2_weight_decay_is_half_squared_norm():
  value = losses.l2_weight_decay([tf.constant([3.0, 4.0]), tf.constant([[1.0]])])
  assert float(value) == pytest.approx(0.5 * 25 + 0.5 * 1)


def test_combine_losses_equals_original_formula():
  # Global batch: B=4 labeled, U=8 unlabeled, r=2, split over two replicas.
  lab = np.array([1.0, 2.0, 3.0, 4.0])
  unl = np.arange(8, dtype=np.float64) / 10
  lab_loss, unl_loss = lab.mean(), unl.mean()
  batch, ratio = 4, 2.0
  expected = (lab_loss * batch + unl_loss * batch * ratio) / batch
  replica_values = [
      losses.combine_losses(
          tf.constant(lab[i * 2:(i + 1) * 2].sum(), tf.float32),
          tf.constant(unl[i * 4:(i + 1) * 4].sum(), tf.float32),
          global_labeled_batch=4, global_unlabeled_batch=8,
          unlabel_ratio=ratio) for i in range(2)]
  assert float(sum(replica_values)) == pytest.approx(expected, rel=1e-6)
  only_labeled = losses.combine_losses(tf.constant(10.0), None,
                                       global_labeled_batch=4,
                                       global_unlabeled_batch=0,
                                       unlabel_ratio=0)
  assert float(only_labeled) == pytest.approx(2.5)
