"""TF1RMSprop reproduces tf.train.RMSPropOptimizer's update by hand."""

import numpy as np
import tensorflow as tf

from noisy_student.training import optimizers


def test_two_steps_match_tf1_formula():
  lr, rho, momentum, eps = 0.1, 0.9, 0.9, 1e-3
  var = tf.Variable([1.0, -2.0])
  opt = optimizers.build_optimizer(lr)
  opt.build([var])
  w = np.array([1.0, -2.0])
  ms = np.ones(2)  # TF1 starts the mean-square slot at one
  mom = np.zeros(2)
  for grad in ([0.5, -1.0], [2.0, 0.25]):
    g = np.array(grad)
    opt.apply_gradients([(tf.constant(grad), var)])
    ms = rho * ms + (1 - rho) * g ** 2
    mom = momentum * mom + lr * g / np.sqrt(ms + eps)
    w = w - mom
    np.testing.assert_allclose(var.numpy(), w, rtol=1e-6)
