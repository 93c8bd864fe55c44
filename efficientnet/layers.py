"""EfficientNet building blocks: initializers, noise, SE, MBConv.

The custom objects are registered under the package name 'efficientnet', so
`import efficientnet` is all `keras.models.load_model` needs; exported files
hold `portable.to_portable(model)`, built-in layers only, and need nothing.

`MBConvBlock` is a *builder*, like the original TF1 `MBConvBlock` (a plain
object, not a layer): its constructor decides the block's structure and
creates the Keras layers; calling it on a tensor wires them into the
functional graph. Every convolution and batch normalization is therefore a
top-level layer of the model (`model.layers`), named `blocks_{i}_<role>`, so
code that selects layers by type (e.g. no weight decay on BatchNormalization)
sees all of them and the TF1 checkpoint mapping is a name table.
"""

from __future__ import annotations

import keras
from keras import ops
import tensorflow as tf

from efficientnet import params

# tf.layers.BatchNormalization defaults used by the original
# (efficientnet_builder.py GlobalParams: batch_norm_momentum=0.99,
# batch_norm_epsilon=1e-3). TF and Keras use the same momentum convention:
# moving = momentum * moving + (1 - momentum) * batch (timm writes this as
# BN_MOMENTUM_TF_DEFAULT = 1 - 0.99 because PyTorch's convention is reversed).
BATCH_NORM_MOMENTUM = 0.99
BATCH_NORM_EPSILON = 1e-3
# The original's relu_fn: tf.nn.swish, i.e. x * sigmoid(x).
ACTIVATION = 'swish'

_register = keras.saving.register_keras_serializable(package='efficientnet')


# --------------------------------------------------------------------------
# Initializers (efficientnet_model.py conv_kernel_initializer /
# dense_kernel_initializer).
# --------------------------------------------------------------------------
@_register
class ConvKernelInitializer(keras.initializers.VarianceScaling):
  """Normal(0, sqrt(2 / fan_out)), fan_out = kh * kw * out_channels.

  Untruncated, as in the original. For a depthwise kernel
  [kh, kw, in, multiplier] Keras' fan_out is kh * kw * multiplier, which is
  what the original computes from the same shape.
  """

  def __init__(self, seed=None):
    super().__init__(scale=2.0, mode='fan_out',
                     distribution='untruncated_normal', seed=seed)

  def get_config(self):
    return {'seed': super().get_config()['seed']}


@_register
class DenseKernelInitializer(keras.initializers.VarianceScaling):
  """Uniform(-1/sqrt(units), 1/sqrt(units)) for a [in, units] kernel.

  Equals VarianceScaling(scale=1/3, mode='fan_out', distribution='uniform').
  """

  def __init__(self, seed=None):
    super().__init__(scale=1.0 / 3.0, mode='fan_out', distribution='uniform',
                     seed=seed)

  def get_config(self):
    return {'seed': super().get_config()['seed']}


# --------------------------------------------------------------------------
# Stochastic depth and dropout (per-replica random masks).
# --------------------------------------------------------------------------
def _replica_seed(seed) -> tf.Tensor:
  """A stateless-RNG seed [2], different on every replica of a strategy."""
  if isinstance(seed, keras.random.SeedGenerator):
    seed = seed.next()
  seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
  if seed.shape.rank == 0:
    seed = tf.stack([seed, tf.constant(0, tf.int64)])
  # Keras seed generators are mirrored: without this, every replica would
  # drop the same local examples.
  replica = tf.distribute.get_replica_context()
  if replica is not None and replica.num_replicas_in_sync > 1:
    seed = tf.random.experimental.stateless_fold_in(
        seed, replica.replica_id_in_sync_group)
  return seed


def drop_path(inputs, rate: float, training: bool, seed=None):
  """Drops the whole tensor of each example with probability `rate`.

  Kept examples are divided by keep_prob = 1 - rate, so the expectation is
  unchanged. The identity when not training or when rate is 0.

  Args:
    inputs: float [batch, ...], a residual branch.
    rate: drop probability in [0, 1).
    training: Python bool.
    seed: a `keras.random.SeedGenerator` (advances on every call), an int,
      or None for TensorFlow's stateful global RNG. Under a tf.distribute
      strategy each replica draws its own mask.

  Returns:
    A tensor like `inputs`.
  """
  if not 0 <= rate < 1:
    raise ValueError(f'drop_path rate must be in [0, 1), received: {rate}')
  if not training or rate == 0:
    return inputs
  keep_prob = 1.0 - rate
  mask_shape = tf.concat(
      [tf.shape(inputs)[:1], tf.ones([len(inputs.shape) - 1], tf.int32)], 0)
  # floor(keep_prob + U[0, 1)) is 1 with probability keep_prob. The uniform
  # draw is float32 so bfloat16 rounding cannot bias the survival rate.
  if seed is None:
    uniform = tf.random.uniform(mask_shape, dtype=tf.float32)
  else:
    uniform = tf.random.stateless_uniform(mask_shape, _replica_seed(seed),
                                          dtype=tf.float32)
  mask = ops.cast(ops.floor(keep_prob + uniform), inputs.dtype)
  return inputs * ops.cast(1.0 / keep_prob, inputs.dtype) * mask


@_register
class StochasticDepth(keras.layers.Layer):
  """Keras layer around `drop_path` (training only, per example)."""

  def __init__(self, rate: float, seed: int | None = None, **kwargs):
    super().__init__(**kwargs)
    if not 0 <= rate < 1:
      raise ValueError(f'StochasticDepth rate must be in [0, 1), '
                       f'received: {rate}')
    self.rate = float(rate)
    self.seed = seed
    self.seed_generator = keras.random.SeedGenerator(seed)

  def call(self, inputs, training=False):
    return drop_path(inputs, self.rate, bool(training), self.seed_generator)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), 'rate': self.rate, 'seed': self.seed}


@_register
class ReplicaDropout(keras.layers.Dropout):
  """keras.layers.Dropout whose mask differs across tf.distribute replicas.

  Keras' Dropout seeds a stateless RNG from a mirrored SeedGenerator, so
  every replica drops the same units of its local examples; here the seed is
  folded with the replica id, like `drop_path`. Same config as Dropout.
  """

  def call(self, inputs, training=False):
    if not training or self.rate == 0:
      return inputs
    if self.noise_shape is not None:
      raise ValueError(f'{self.name}: noise_shape is not supported')
    if self.rate >= 1:
      return ops.zeros_like(inputs)
    uniform = tf.random.stateless_uniform(
        tf.shape(inputs), _replica_seed(self.seed_generator), dtype=tf.float32)
    keep = ops.cast(uniform >= self.rate, inputs.dtype)
    return inputs * keep * ops.cast(1.0 / (1.0 - self.rate), inputs.dtype)


# --------------------------------------------------------------------------
# Input normalisation.
# --------------------------------------------------------------------------
@_register
class ImageNormalization(keras.layers.Layer):
  """(images - mean_rgb) / stddev_rgb with constant per-channel statistics.

  Input: float [batch, height, width, 3], pixel values in [0, 255]. No
  weights: the statistics are part of the config, not of the checkpoint.
  """

  def __init__(self, mean_rgb, stddev_rgb, **kwargs):
    super().__init__(**kwargs)
    self.mean_rgb = tuple(float(v) for v in mean_rgb)
    self.stddev_rgb = tuple(float(v) for v in stddev_rgb)
    if len(self.mean_rgb) != 3 or len(self.stddev_rgb) != 3:
      raise ValueError(f'mean_rgb and stddev_rgb need 3 values, received: '
                       f'{mean_rgb}, {stddev_rgb}')
    if min(self.stddev_rgb) <= 0:
      raise ValueError(f'stddev_rgb must be positive, received: {stddev_rgb}')

  def call(self, inputs):
    mean = ops.convert_to_tensor(self.mean_rgb, dtype=inputs.dtype)
    stddev = ops.convert_to_tensor(self.stddev_rgb, dtype=inputs.dtype)
    return (inputs - mean) / stddev

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), 'mean_rgb': list(self.mean_rgb),
            'stddev_rgb': list(self.stddev_rgb)}


# --------------------------------------------------------------------------
# Squeeze-and-excitation.
# --------------------------------------------------------------------------
@_register
class SqueezeExcite(keras.layers.Layer):
  """x * sigmoid(expand(swish(reduce(mean_hw(x))))).

  `reduce` and `expand` are 1x1 convolutions with bias (the TF1 `se/conv2d`
  and `se/conv2d_1`), so their kernels have the original's shapes.

  Args:
    filters: channels of the input (the expanded width of the block).
    reduced_filters: bottleneck width, `params.se_reduced_filters(...)`.
  """

  def __init__(self, filters: int, reduced_filters: int, **kwargs):
    super().__init__(**kwargs)
    self.filters = int(filters)
    self.reduced_filters = int(reduced_filters)
    self.reduce = _conv1x1(self.reduced_filters, 'reduce', use_bias=True,
                           dtype=self.dtype_policy)
    self.expand = _conv1x1(self.filters, 'expand', use_bias=True,
                           dtype=self.dtype_policy)

  def build(self, input_shape):
    if input_shape[-1] != self.filters:
      raise ValueError(f'{self.name}: expected {self.filters} input channels, '
                       f'received shape {input_shape}')
    self.reduce.build((None, 1, 1, self.filters))
    self.expand.build((None, 1, 1, self.reduced_filters))

  def call(self, inputs):
    squeezed = ops.mean(inputs, axis=(1, 2), keepdims=True)
    gate = self.expand(keras.activations.swish(self.reduce(squeezed)))
    return inputs * ops.sigmoid(gate)

  def compute_output_shape(self, input_shape):
    return input_shape

  def get_config(self):
    return {**super().get_config(), 'filters': self.filters,
            'reduced_filters': self.reduced_filters}


# --------------------------------------------------------------------------
# Layer factories and the MBConv block.
# --------------------------------------------------------------------------
def _conv1x1(filters: int, name: str, use_bias: bool = False,
             **kwargs) -> keras.layers.Conv2D:
  return keras.layers.Conv2D(
      filters, 1, padding='same', use_bias=use_bias,
      kernel_initializer=ConvKernelInitializer(), name=name, **kwargs)


def conv(filters: int, kernel_size: int, strides: int, name: str
         ) -> keras.layers.Conv2D:
  """Bias-free 'same' Conv2D with the original initializer."""
  return keras.layers.Conv2D(
      filters, kernel_size, strides=strides, padding='same', use_bias=False,
      kernel_initializer=ConvKernelInitializer(), name=name)


def batch_norm(name: str, momentum: float = BATCH_NORM_MOMENTUM,
               epsilon: float = BATCH_NORM_EPSILON,
               synchronized: bool = False) -> keras.layers.BatchNormalization:
  """BatchNormalization over channels (cross-replica when `synchronized`)."""
  return keras.layers.BatchNormalization(
      axis=-1, momentum=momentum, epsilon=epsilon, synchronized=synchronized,
      name=name)


class MBConvBlock:
  """Builds one mobile inverted bottleneck block (not itself a Layer).

  Structure (decided here, from `block_args`):
    [expand 1x1 conv + BN + swish]   only when expand_ratio != 1
    depthwise kxk conv ('same', stride) + BN + swish
    [squeeze-excite]                 only when 0 < se_ratio <= 1
    project 1x1 conv + BN            (no activation)
    [stochastic depth + identity add] only when id_skip, stride 1 and
                                      input_filters == output_filters
  Layer names: `{name}_expand_conv`, `_expand_bn`, `_expand_swish`, `_dwconv`,
  `_dw_bn`, `_dw_swish`, `_se`, `_project_conv`, `_project_bn`, `_drop`,
  `_add`.

  Args:
    block_args: one block (num_repeat ignored), filters already scaled.
    name: prefix, e.g. 'blocks_3'.
    stochastic_depth_rate: drop probability of the residual branch; no
      StochasticDepth layer is made when 0 or when there is no skip.
    batch_norm_momentum / batch_norm_epsilon / sync_batch_norm: BN settings.
  """

  def __init__(self, block_args: params.BlockArgs, *, name: str,
               stochastic_depth_rate: float = 0.0,
               batch_norm_momentum: float = BATCH_NORM_MOMENTUM,
               batch_norm_epsilon: float = BATCH_NORM_EPSILON,
               sync_batch_norm: bool = False):
    self.block_args = block_args
    self.name = name

    def bn(role):
      return batch_norm(f'{name}_{role}', batch_norm_momentum,
                        batch_norm_epsilon, sync_batch_norm)

    def act(role):
      return keras.layers.Activation(ACTIVATION, name=f'{name}_{role}')

    filters = block_args.input_filters * block_args.expand_ratio
    self.layers = []
    if block_args.expand_ratio != 1:
      self.layers += [conv(filters, 1, 1, f'{name}_expand_conv'),
                      bn('expand_bn'), act('expand_swish')]
    self.layers += [
        keras.layers.DepthwiseConv2D(
            block_args.kernel_size, strides=block_args.strides,
            padding='same', use_bias=False,
            depthwise_initializer=ConvKernelInitializer(),
            name=f'{name}_dwconv'),
        bn('dw_bn'), act('dw_swish')]
    if block_args.has_se:
      self.layers.append(SqueezeExcite(
          filters, params.se_reduced_filters(block_args.input_filters,
                                             block_args.se_ratio),
          name=f'{name}_se'))
    self.layers += [conv(block_args.output_filters, 1, 1,
                         f'{name}_project_conv'), bn('project_bn')]
    self.drop = None
    self.add = None
    if block_args.has_skip:
      if stochastic_depth_rate:
        self.drop = StochasticDepth(stochastic_depth_rate, name=f'{name}_drop')
      self.add = keras.layers.Add(name=f'{name}_add')

  def __call__(self, inputs):
    x = inputs
    for layer in self.layers:
      x = layer(x)
    if self.add is None:
      return x
    if self.drop is not None:
      x = self.drop(x)
    return self.add([x, inputs])
