"""`build_model`: EfficientNet-B0..B7 / L0..L2 as a functional Keras model.

The network is the one of tensorflow/tpu and google-research/noisystudent
(`efficientnet_model.py`), layer for layer:

  images [N, S, S, 3] float 0-255 (S: one size, or any: `any_size`)
  -> normalize: (x - mean_rgb) / stddev_rgb        (optional, float32)
  -> stem: 3x3/2 conv + BN + swish
  -> blocks_0 ... blocks_{n-1}: MBConv (see layers.MBConvBlock)
  -> head: 1x1 conv + BN + swish, global average pool, dropout, dense
  -> logits [N, num_classes] float32 (no softmax)

Layer names follow the TF1 variable scopes `stem`, `blocks_{i}` and `head`:
`stem_conv`, `stem_bn`, `blocks_{i}_<role>`, `head_conv`, `head_bn`,
`head_dense`, ... (`tf1_checkpoint` maps them to the original names).
"""

from __future__ import annotations

import numbers
from typing import Sequence

import keras

from efficientnet import layers
from efficientnet import params

# noisystudent main.py --stochastic_depth_rate default (the drop rate of the
# last block; block i of n gets rate * i / n).
DEFAULT_STOCHASTIC_DEPTH_RATE = 0.2
# Input size of the small-image variant when no image_size is given
# (SVHN / CIFAR-10 in the original).
SMALL_IMAGE_SIZE = 32


def _check_rate(name: str, value: float) -> None:
  if not 0 <= value < 1:
    raise ValueError(f'{name} must be in [0, 1), received: {name}={value}')


def _check_rgb(name: str, value) -> tuple[float, float, float]:
  try:
    values = tuple(float(v) for v in value)
  except TypeError:
    values = ()
  if len(values) != 3:
    raise ValueError(f'{name} must be 3 numbers (R, G, B) or None, '
                     f'received: {name}={value!r}')
  return values


def build_model(
    model_name: str,
    num_classes: int = 1000,
    image_size: int | None = None,
    *,
    small_image: bool = False,
    mean_rgb: Sequence[float] | None = params.IMAGENET_MEAN_RGB,
    stddev_rgb: Sequence[float] | None = params.IMAGENET_STDDEV_RGB,
    dropout_rate: float | None = None,
    stochastic_depth_rate: float | None = None,
    width_coefficient: float | None = None,
    depth_coefficient: float | None = None,
    batch_norm_momentum: float = layers.BATCH_NORM_MOMENTUM,
    batch_norm_epsilon: float = layers.BATCH_NORM_EPSILON,
    sync_batch_norm: bool = False,
    any_size: bool = False,
    name: str | None = None,
) -> keras.Model:
  """Builds an EfficientNet classifier that returns logits.

  Args:
    model_name: one of `params.list_models()`, e.g. 'efficientnet-b0'.
    num_classes: width of the logits.
    image_size: square input size in pixels. None: the spec's train
      resolution, or 32 when `small_image` (unless `any_size`).
    small_image: the noisystudent 32x32 variant (stages 1 and 2 have stride
      1: the output stride is 8 instead of 32, a 4x4 last feature map at 32
      pixels).
    mean_rgb / stddev_rgb: per-channel statistics on 0-255 pixels; the model
      normalises its input with them as its first layer. Both None: no
      normalisation layer (the caller feeds normalised images).
    dropout_rate: dropout before the classifier; None: the spec's value.
    stochastic_depth_rate: drop rate of the last block (block i of n gets
      rate * i / n); None: 0.2, the original default.
    width_coefficient / depth_coefficient: override the spec's scaling.
    batch_norm_momentum / batch_norm_epsilon: BatchNormalization settings.
    sync_batch_norm: batch statistics over all replicas of a
      tf.distribute strategy (Keras `BatchNormalization(synchronized=True)`).
    any_size: an input of any size, [N, None, None, 3] (like
      keras.applications without an input_shape); `image_size` must be None.
      The weights do not depend on the size.
    name: model name; None: `model_name`.

  Returns:
    A functional `keras.Model`: float32 [N, image_size, image_size, 3] (or
    [N, None, None, 3] with `any_size`) in [0, 255] -> float32 logits
    [N, num_classes]. Under a mixed-precision
    global policy the classifier still computes in float32.

  Raises:
    ValueError naming the argument and the value received.
  """
  spec = params.get_spec(model_name)
  if not isinstance(num_classes, numbers.Integral) or num_classes < 1:
    raise ValueError(f'num_classes must be a positive int, received: '
                     f'num_classes={num_classes!r}')
  if any_size and image_size is not None:
    raise ValueError(f'any_size takes no image_size, received: '
                     f'image_size={image_size!r}')
  if image_size is None and not any_size:
    image_size = SMALL_IMAGE_SIZE if small_image else spec.train_resolution
  if not any_size and (not isinstance(image_size, numbers.Integral)
                       or image_size < 1):
    raise ValueError(f'image_size must be a positive int, received: '
                     f'image_size={image_size!r}')
  if (mean_rgb is None) != (stddev_rgb is None):
    raise ValueError('mean_rgb and stddev_rgb must both be given or both be '
                     f'None, received: mean_rgb={mean_rgb!r}, '
                     f'stddev_rgb={stddev_rgb!r}')
  if mean_rgb is not None:
    mean_rgb = _check_rgb('mean_rgb', mean_rgb)
    stddev_rgb = _check_rgb('stddev_rgb', stddev_rgb)
    if min(stddev_rgb) <= 0:
      raise ValueError(f'stddev_rgb must be positive, received: '
                       f'stddev_rgb={stddev_rgb}')
  num_classes = int(num_classes)
  image_size = None if any_size else int(image_size)
  dropout_rate = spec.dropout_rate if dropout_rate is None else dropout_rate
  if stochastic_depth_rate is None:
    stochastic_depth_rate = DEFAULT_STOCHASTIC_DEPTH_RATE
  _check_rate('dropout_rate', dropout_rate)
  _check_rate('stochastic_depth_rate', stochastic_depth_rate)
  width = spec.width_coefficient if width_coefficient is None else (
      width_coefficient)
  depth = spec.depth_coefficient if depth_coefficient is None else (
      depth_coefficient)
  for arg, value in (('width_coefficient', width),
                     ('depth_coefficient', depth)):
    if not value > 0:
      raise ValueError(f'{arg} must be positive, received: {arg}={value}')
  if not 0 <= batch_norm_momentum <= 1 or not batch_norm_epsilon > 0:
    raise ValueError(
        'batch_norm_momentum must be in [0, 1] and batch_norm_epsilon > 0, '
        f'received: batch_norm_momentum={batch_norm_momentum}, '
        f'batch_norm_epsilon={batch_norm_epsilon}')

  blocks = params.scale_blocks(
      params.decode_block_strings(params.base_block_strings(small_image)),
      width, depth)

  def bn(layer_name):
    return layers.batch_norm(layer_name, batch_norm_momentum,
                             batch_norm_epsilon, sync_batch_norm)

  images = keras.Input((image_size, image_size, 3), name='images')
  x = images
  if mean_rgb is not None:
    x = layers.ImageNormalization(mean_rgb, stddev_rgb, dtype='float32',
                                  name='normalize')(x)

  x = layers.conv(params.round_filters(params.STEM_FILTERS, width), 3, 2,
                  'stem_conv')(x)
  x = bn('stem_bn')(x)
  x = keras.layers.Activation(layers.ACTIVATION, name='stem_swish')(x)

  for i, block_args in enumerate(blocks):
    x = layers.MBConvBlock(
        block_args, name=f'blocks_{i}',
        stochastic_depth_rate=stochastic_depth_rate * i / len(blocks),
        batch_norm_momentum=batch_norm_momentum,
        batch_norm_epsilon=batch_norm_epsilon,
        sync_batch_norm=sync_batch_norm)(x)

  x = layers.conv(params.round_filters(params.HEAD_FILTERS, width), 1, 1,
                  'head_conv')(x)
  x = bn('head_bn')(x)
  x = keras.layers.Activation(layers.ACTIVATION, name='head_swish')(x)
  x = keras.layers.GlobalAveragePooling2D(name='head_pool')(x)
  if dropout_rate > 0:
    x = layers.ReplicaDropout(dropout_rate, name='head_dropout')(x)
  logits = keras.layers.Dense(
      num_classes, kernel_initializer=layers.DenseKernelInitializer(),
      dtype='float32', name='head_dense')(x)
  return keras.Model(images, logits, name=name or model_name)
