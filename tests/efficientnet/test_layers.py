"""Tests for efficientnet/layers.py."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from efficientnet import layers
from efficientnet import params


# --------------------------------------------------------------------------
# Initializers.
# --------------------------------------------------------------------------
@pytest.mark.parametrize('shape, fan_out', [
    ((3, 3, 64, 128), 3 * 3 * 128),   # conv: kh * kw * out_channels
    ((5, 5, 512, 1), 5 * 5 * 1),      # depthwise: kh * kw * multiplier
    ((1, 1, 96, 384), 384),
])
def test_conv_initializer_is_untruncated_he_normal_on_fan_out(shape, fan_out):
  values = keras.ops.convert_to_numpy(layers.ConvKernelInitializer()(shape))
  expected_std = math.sqrt(2.0 / fan_out)
  # The sample std of n normals has relative std 1/sqrt(2n) (<= 0.6% here).
  assert values.std() == pytest.approx(expected_std, rel=0.03)
  assert abs(values.mean()) < 4 * expected_std / math.sqrt(values.size)
  # Untruncated: a truncated normal (Keras' default) never passes 2 std.
  assert np.abs(values).max() > 2.5 * expected_std


def test_dense_initializer_is_uniform_one_over_sqrt_units():
  values = keras.ops.convert_to_numpy(
      layers.DenseKernelInitializer()((1280, 1000)))
  bound = 1 / math.sqrt(1000)
  assert values.max() <= bound and values.min() >= -bound
  assert values.max() > 0.99 * bound and values.min() < -0.99 * bound
  # Uniform(-b, b) has std b / sqrt(3).
  assert values.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)


def test_initializers_differ_per_instance_and_serialize():
  a = layers.ConvKernelInitializer()((3, 3, 8, 8))
  b = layers.ConvKernelInitializer()((3, 3, 8, 8))
  assert not np.allclose(a, b)
  for cls in (layers.ConvKernelInitializer, layers.DenseKernelInitializer):
    config = keras.initializers.serialize(cls(seed=3))
    restored = keras.initializers.deserialize(config)
    assert type(restored) is cls
    np.testing.assert_array_equal(restored((4, 4)), cls(seed=3)((4, 4)))


# --------------------------------------------------------------------------
# Stochastic depth.
# --------------------------------------------------------------------------
def test_drop_path_is_identity_in_inference_and_at_rate_zero():
  x = tf.random.normal((8, 4, 4, 3))
  np.testing.assert_array_equal(layers.drop_path(x, 0.5, False), x)
  np.testing.assert_array_equal(layers.drop_path(x, 0.0, True), x)


def test_drop_path_drops_whole_examples_and_rescales_kept_ones():
  rate, n = 0.25, 20000
  keep = 1 - rate
  x = tf.random.uniform((n, 2, 2, 3), 1.0, 2.0)  # never 0
  y = keras.ops.convert_to_numpy(
      layers.drop_path(x, rate, True, keras.random.SeedGenerator(1)))
  ratio = y / x.numpy()
  kept = np.all(np.isclose(ratio, 1 / keep), axis=(1, 2, 3))
  dropped = np.all(ratio == 0, axis=(1, 2, 3))
  assert np.all(kept | dropped), 'each example must be all kept or all dropped'
  # Survival ~ Binomial(n, keep) / n: std sqrt(keep * rate / n) = 0.0031;
  # 5 std keeps the false-failure chance below 1e-6.
  tolerance = 5 * math.sqrt(keep * rate / n)
  assert abs(kept.mean() - keep) < tolerance


def test_drop_path_rejects_bad_rate():
  with pytest.raises(ValueError, match='1.0'):
    layers.drop_path(tf.ones((2, 1)), 1.0, True)
  with pytest.raises(ValueError, match='rate'):
    layers.StochasticDepth(-0.1)


def test_stochastic_depth_layer_draws_new_masks_each_call_in_tf_function():
  layer = layers.StochasticDepth(0.5, seed=7)
  x = tf.ones((64, 1, 1, 1))

  @tf.function
  def step(inputs):
    return layer(inputs, training=True)

  first, second = step(x).numpy().ravel(), step(x).numpy().ravel()
  assert set(np.unique(first)) <= {0.0, 2.0}
  assert not np.array_equal(first, second)
  np.testing.assert_array_equal(layer(x, training=False), x)
  np.testing.assert_array_equal(layer(x), x)  # default: inference


def test_stochastic_depth_keeps_dtype_and_round_trips_config():
  x = tf.ones((16, 2, 2, 4), tf.bfloat16)
  assert layers.drop_path(x, 0.3, True, 1).dtype == tf.bfloat16
  mixed = layers.StochasticDepth(0.3, dtype='mixed_bfloat16')
  assert mixed(x, training=True).dtype == tf.bfloat16
  layer = layers.StochasticDepth(0.3, seed=2, name='drop')
  clone = layers.StochasticDepth.from_config(layer.get_config())
  assert (clone.rate, clone.seed, clone.name) == (0.3, 2, 'drop')


def test_replica_dropout_is_standard_inverted_dropout():
  layer = layers.ReplicaDropout(0.3, seed=5)
  x = tf.random.uniform((200, 100), 1.0, 2.0)
  np.testing.assert_array_equal(layer(x, training=False), x)
  ratio = layer(x, training=True).numpy() / x.numpy()
  assert np.all(np.isclose(ratio, 1 / 0.7) | (ratio == 0))
  # Binomial(20000, 0.7): std 0.0032; 5 std.
  assert abs(np.mean(ratio > 0) - 0.7) < 5 * math.sqrt(0.21 / 20000)
  assert not np.array_equal(layer(x, training=True), layer(x, training=True))
  clone = keras.layers.deserialize(keras.layers.serialize(layer))
  assert type(clone) is layers.ReplicaDropout and clone.rate == 0.3


# --------------------------------------------------------------------------
# Normalisation and squeeze-excite.
# --------------------------------------------------------------------------
def test_image_normalization():
  layer = layers.ImageNormalization((10.0, 20.0, 30.0), (2.0, 4.0, 5.0))
  x = np.array([[[[12.0, 12.0, 40.0]]]], np.float32)
  np.testing.assert_allclose(layer(x), [[[[1.0, -2.0, 2.0]]]])
  clone = layers.ImageNormalization.from_config(layer.get_config())
  assert clone.mean_rgb == (10.0, 20.0, 30.0)
  with pytest.raises(ValueError, match='positive'):
    layers.ImageNormalization((0, 0, 0), (1, 0, 1))
  with pytest.raises(ValueError, match='3 values'):
    layers.ImageNormalization((0, 0), (1, 1))


def _swish(x):
  return x / (1 + np.exp(-x))


def test_squeeze_excite_matches_numpy_reference():
  se = layers.SqueezeExcite(filters=12, reduced_filters=3)
  x = np.random.default_rng(0).normal(size=(2, 5, 5, 12)).astype(np.float32)
  y = keras.ops.convert_to_numpy(se(x))
  assert se.reduce.kernel.shape == (1, 1, 12, 3)
  assert se.expand.kernel.shape == (1, 1, 3, 12)
  rng = np.random.default_rng(1)
  se.reduce.bias.assign(rng.normal(size=3))
  se.expand.bias.assign(rng.normal(size=12))
  y = keras.ops.convert_to_numpy(se(x))
  w_r, b_r = se.reduce.kernel.numpy()[0, 0], se.reduce.bias.numpy()
  w_e, b_e = se.expand.kernel.numpy()[0, 0], se.expand.bias.numpy()
  squeezed = x.mean(axis=(1, 2))
  gate = 1 / (1 + np.exp(-(_swish(squeezed @ w_r + b_r) @ w_e + b_e)))
  np.testing.assert_allclose(y, x * gate[:, None, None, :], rtol=1e-5,
                             atol=1e-6)


def test_squeeze_excite_rejects_wrong_channel_count():
  with pytest.raises(ValueError, match='expected 12 input channels'):
    layers.SqueezeExcite(12, 3)(np.zeros((1, 2, 2, 8), np.float32))


# --------------------------------------------------------------------------
# MBConv block.
# --------------------------------------------------------------------------
def _block(block_string, rate=0.0, **kwargs):
  args = params.decode_block_string(block_string)
  return layers.MBConvBlock(args, name='blocks_5', stochastic_depth_rate=rate,
                            **kwargs)


def _names(block):
  return [layer.name for layer in block.layers]


def test_block_without_expansion_has_no_expand_layers():
  block = _block('r1_k3_s11_e1_i32_o16_se0.25')
  assert _names(block) == [
      'blocks_5_dwconv', 'blocks_5_dw_bn', 'blocks_5_dw_swish', 'blocks_5_se',
      'blocks_5_project_conv', 'blocks_5_project_bn']
  assert block.add is None and block.drop is None
  assert block.layers[3].reduced_filters == 8  # 32 * 0.25


def test_expanded_block_structure_and_shapes():
  block = _block('r1_k5_s22_e6_i24_o40_se0.25', rate=0.1)
  assert _names(block)[:3] == ['blocks_5_expand_conv', 'blocks_5_expand_bn',
                               'blocks_5_expand_swish']
  y = block(keras.Input((16, 16, 24)))
  assert tuple(y.shape) == (None, 8, 8, 40)
  dw = block.layers[3]
  assert dw.kernel.shape == (5, 5, 144, 1) and dw.strides == (2, 2)
  se = block.layers[6]
  assert (se.filters, se.reduced_filters) == (144, 6)  # 24 * 0.25, not 144
  assert block.add is None and block.drop is None  # stride 2: no skip


@pytest.mark.parametrize('block_string, rate, has_add, has_drop', [
    ('r1_k3_s11_e6_i40_o40_se0.25', 0.2, True, True),
    ('r1_k3_s11_e6_i40_o40_se0.25', 0.0, True, False),
    ('r1_k3_s11_e6_i40_o80_se0.25', 0.2, False, False),
    ('r1_k3_s22_e6_i40_o40_se0.25', 0.2, False, False),
    ('r1_k3_s11_e6_i40_o40_se0.25_noskip', 0.2, False, False),
])
def test_skip_and_stochastic_depth_only_with_identity_shortcut(
    block_string, rate, has_add, has_drop):
  block = _block(block_string, rate)
  assert (block.add is not None) == has_add
  assert (block.drop is not None) == has_drop
  if has_drop:
    assert block.drop.rate == rate


def test_bn_settings_reach_every_batch_norm():
  block = _block('r1_k3_s11_e6_i8_o8_se0.25', batch_norm_momentum=0.9,
                 batch_norm_epsilon=1e-5, sync_batch_norm=True)
  bns = [l for l in block.layers
         if isinstance(l, keras.layers.BatchNormalization)]
  assert len(bns) == 3
  assert all(bn.momentum == 0.9 and bn.epsilon == 1e-5 and bn.synchronized
             for bn in bns)
  default = _block('r1_k3_s11_e6_i8_o8_se0.25')
  assert all(l.momentum == 0.99 and l.epsilon == 1e-3 and not l.synchronized
             for l in default.layers
             if isinstance(l, keras.layers.BatchNormalization))


def test_residual_block_drops_branch_per_example_in_training_only():
  block = _block('r1_k3_s11_e6_i8_o8_se0.25', rate=0.5)
  inputs = keras.Input((4, 4, 8))
  model = keras.Model(inputs, block(inputs))
  x = np.random.default_rng(0).normal(size=(400, 4, 4, 8)).astype(np.float32)
  np.testing.assert_array_equal(model(x, training=False),
                                model(x, training=False))
  y = model(x, training=True).numpy()
  same = np.all(y == x, axis=(1, 2, 3))   # branch dropped: output = input
  # Binomial(400, 0.5): std 0.025; 5 std.
  assert abs(same.mean() - 0.5) < 5 * 0.025
  assert not np.any(np.all(model(x, training=False).numpy() == x,
                           axis=(1, 2, 3)))


def test_drop_path_with_int_seed_is_deterministic():
  x = tf.ones((256, 1, 1, 1))
  first = layers.drop_path(x, 0.5, True, 3).numpy()
  np.testing.assert_array_equal(layers.drop_path(x, 0.5, True, 3), first)
  assert not np.array_equal(layers.drop_path(x, 0.5, True, 4), first)
  # seed=None uses TensorFlow's global RNG: still per-example 0 or 1/keep.
  assert set(np.unique(layers.drop_path(x, 0.5, True).numpy())) <= {0.0, 2.0}
