"""The original's optimizer: TF1 `tf.train.RMSPropOptimizer` semantics in Keras 3.

TF1's RMSProp (decay 0.9, momentum 0.9, epsilon 1e-3 in the original recipe):
  ms  = rho * ms + (1 - rho) * g^2
  mom = momentum * mom + lr * g / sqrt(ms + epsilon)
  w   = w - mom
Keras 3's RMSprop implements the same update but starts the mean-square slot
`ms` at 0, whereas TF1 starts it at 1. With a zero start the first steps are
about 1/sqrt(1 - rho) ~ 3x larger; the EfficientNet recipes were tuned with the
TF1 behaviour, so we reproduce it.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package='noisy_student')
class TF1RMSprop(keras.optimizers.RMSprop):
  """keras.optimizers.RMSprop with the mean-square slot initialised to ones."""

  def build(self, var_list):
    if self.built:
      return
    keras.optimizers.Optimizer.build(self, var_list)
    self._velocities = self.add_optimizer_variables(
        var_list, 'velocity', initializer='ones')
    self._momentums = []
    if self.momentum > 0:
      self._momentums = self.add_optimizer_variables(var_list, 'momentum')
    self._average_gradients = []
    if self.centered:
      self._average_gradients = self.add_optimizer_variables(
          var_list, 'average_gradient')


def build_optimizer(learning_rate: float = 0.0, *, rho: float = 0.9,
                    momentum: float = 0.9, epsilon: float = 1e-3,
                    loss_scale: bool = False) -> keras.optimizers.Optimizer:
  """The original RMSProp; wrapped in a LossScaleOptimizer for float16."""
  optimizer = TF1RMSprop(learning_rate=learning_rate, rho=rho,
                         momentum=momentum, epsilon=epsilon)
  if loss_scale:
    optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
  return optimizer
