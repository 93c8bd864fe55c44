"""Tests for efficientnet/model.py (build_model)."""

import gc
import os
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import efficientnet
from tests.conftest import REPO_ROOT

# anchors.md §2.2: keras.applications / keras EfficientNet(w, d) with 1000
# classes, weights=None. Non-trainable there = BN moving statistics + the 7
# weights of keras' Normalization layer (ours has none).
PARAM_COUNTS = {  # name: (trainable, non-trainable in keras.applications)
    'efficientnet-b0': (5_288_548, 42_023),
    'efficientnet-b1': (7_794_184, 62_055),
    'efficientnet-b2': (9_109_994, 67_575),
    'efficientnet-b3': (12_233_232, 87_303),
    'efficientnet-b4': (19_341_616, 125_207),
    'efficientnet-b5': (30_389_784, 172_743),
    'efficientnet-b6': (43_040_704, 224_439),
    'efficientnet-b7': (66_347_960, 310_727),
    'efficientnet-l0': (140_764_664, 493_911),
    'efficientnet-l1': (272_630_564, 693_927),
    'efficientnet-l2': (480_309_308, 1_090_695),
}
_BIG = ('efficientnet-l0', 'efficientnet-l1', 'efficientnet-l2')
# A tiny network with the full B0 structure (7 stages, one block each).
TINY = dict(width_coefficient=0.25, depth_coefficient=0.25)


pytestmark = pytest.mark.usefixtures('fresh_keras_session')


def _count(weights):
  return sum(int(np.prod(w.shape)) for w in weights)


def _images(n, size, seed=0):
  rng = np.random.default_rng(seed)
  return rng.uniform(0, 255, (n, size, size, 3)).astype(np.float32)


def _randomize(model, seed=0):
  """Random BN statistics/affine and biases, so copies can be told apart."""
  rng = np.random.default_rng(seed)
  for w in model.weights:
    value = w.numpy()
    name = w.path.rsplit('/', 1)[-1]
    if name in ('gamma', 'moving_variance'):
      value = rng.uniform(0.5, 1.5, value.shape)
    elif name in ('beta', 'moving_mean', 'bias'):
      value = rng.normal(0, 0.2, value.shape)
    w.assign(value.astype(np.float32))


@pytest.mark.parametrize('name', [
    pytest.param(n, marks=pytest.mark.slow) if n in _BIG else n
    for n in PARAM_COUNTS])
def test_parameter_counts_match_keras_applications(name):
  trainable, keras_non_trainable = PARAM_COUNTS[name]
  model = efficientnet.build_model(name, image_size=32)  # size-independent
  assert _count(model.trainable_weights) == trainable
  assert _count(model.non_trainable_weights) == keras_non_trainable - 7
  del model  # the big ones hold GBs: free them before the next build
  keras.backend.clear_session()
  gc.collect()


# --------------------------------------------------------------------------
# Same function as keras.applications.
# --------------------------------------------------------------------------
_KERAS_ROLE = {'expand_conv': 'expand_conv', 'expand_bn': 'expand_bn',
               'dwconv': 'dwconv', 'dw_bn': 'bn', 'se.reduce': 'se_reduce',
               'se.expand': 'se_expand', 'project_conv': 'project_conv',
               'project_bn': 'project_bn'}
_KERAS_TOP = {'stem_conv': 'stem_conv', 'stem_bn': 'stem_bn',
              'head_conv': 'top_conv', 'head_bn': 'top_bn',
              'head_dense': 'predictions'}


def _copy_from_keras_application(app, ours):
  """Copies weights block by block; returns the number of arrays copied."""
  prefixes = []  # block1a, block2a, block2b, ... in graph order
  for layer in app.layers:
    match = re.match(r'(block\d+[a-z])_', layer.name)
    if match and match.group(1) not in prefixes:
      prefixes.append(match.group(1))
  ours_names = {layer.name for layer in ours.layers}
  assert len(prefixes) == len([n for n in ours_names if n.endswith('_dwconv')])
  pairs = [(ours.get_layer(o), app.get_layer(a)) for o, a in _KERAS_TOP.items()]
  for i, prefix in enumerate(prefixes):
    for role, keras_role in _KERAS_ROLE.items():
      layer_name, _, sub = role.partition('.')
      if f'blocks_{i}_{layer_name}' not in ours_names:
        continue
      layer = ours.get_layer(f'blocks_{i}_{layer_name}')
      pairs.append((getattr(layer, sub) if sub else layer,
                    app.get_layer(f'{prefix}_{keras_role}')))
  copied = 0
  for mine, theirs in pairs:
    mine.set_weights(theirs.get_weights())
    copied += len(theirs.weights)
  return copied


@pytest.mark.parametrize('name, app_fn, size', [
    ('efficientnet-b0', keras.applications.EfficientNetB0, 67),  # odd size
    ('efficientnet-b2', keras.applications.EfficientNetB2, 64),
])
def test_same_function_as_keras_applications(name, app_fn, size):
  app = app_fn(weights=None, classifier_activation=None,
               input_shape=(size, size, 3))
  _randomize(app)
  norm = next(l for l in app.layers
              if isinstance(l, keras.layers.Normalization))
  # keras: Rescaling(1/255) then an unadapted Normalization (mean 0, var 1),
  # i.e. (x - 0) / 255.
  np.testing.assert_array_equal(norm.mean.numpy(), 0.0)
  np.testing.assert_array_equal(norm.variance.numpy(), 1.0)
  ours = efficientnet.build_model(name, image_size=size, mean_rgb=(0, 0, 0),
                                  stddev_rgb=(255, 255, 255))
  copied = _copy_from_keras_application(app, ours)
  assert copied == len(app.weights) - len(norm.weights) == len(ours.weights)

  x = _images(3, size)
  expected = app(x, training=False).numpy()
  logits = ours(x, training=False).numpy()
  assert logits.dtype == np.float32 and logits.shape == (3, 1000)
  np.testing.assert_allclose(logits, expected, rtol=1e-4,
                             atol=1e-5 * np.abs(expected).max())


# --------------------------------------------------------------------------
# Configuration.
# --------------------------------------------------------------------------
def test_normalization_is_the_first_layer_and_none_disables_it():
  normed = efficientnet.build_model('efficientnet-b0', 10, 32, **TINY)
  raw = efficientnet.build_model('efficientnet-b0', 10, 32, mean_rgb=None,
                                 stddev_rgb=None, **TINY)
  assert normed.layers[1].name == 'normalize'
  assert 'normalize' not in [l.name for l in raw.layers]
  _randomize(normed)
  raw.set_weights(normed.get_weights())
  x = _images(2, 32)
  mean = np.array(efficientnet.IMAGENET_MEAN_RGB, np.float32)
  std = np.array(efficientnet.IMAGENET_STDDEV_RGB, np.float32)
  np.testing.assert_allclose(normed(x, training=False),
                             raw((x - mean) / std, training=False),
                             rtol=1e-5, atol=1e-6)


def test_imagenet_constants():
  np.testing.assert_allclose(efficientnet.IMAGENET_MEAN_RGB,
                             [123.675, 116.28, 103.53])
  np.testing.assert_allclose(efficientnet.IMAGENET_STDDEV_RGB,
                             [58.395, 57.12, 57.375])


def test_default_image_sizes_and_names():
  b3 = efficientnet.build_model('efficientnet-b3', **TINY)
  assert b3.input_shape == (None, 300, 300, 3) and b3.name == 'efficientnet-b3'
  small = efficientnet.build_model('efficientnet-b0', 10, small_image=True,
                                   name='student', **TINY)
  assert small.input_shape == (None, 32, 32, 3) and small.name == 'student'
  assert small.output_shape == (None, 10)


@pytest.mark.parametrize('kwargs, message', [
    (dict(model_name='efficientnet-b9'), 'efficientnet-b9'),
    (dict(num_classes=0), 'num_classes=0'),
    (dict(image_size=-3), 'image_size=-3'),
    (dict(mean_rgb=None), 'both'),
    (dict(mean_rgb=(1, 2)), 'mean_rgb='),
    (dict(stddev_rgb=(1, 0, 1)), 'stddev_rgb'),
    (dict(dropout_rate=1.0), 'dropout_rate=1.0'),
    (dict(stochastic_depth_rate=-0.1), 'stochastic_depth_rate=-0.1'),
    (dict(width_coefficient=0.0), 'width_coefficient=0.0'),
    (dict(batch_norm_momentum=1.5), 'batch_norm_momentum=1.5'),
])
def test_bad_arguments_name_argument_and_value(kwargs, message):
  kwargs = {'model_name': 'efficientnet-b0', **kwargs}
  with pytest.raises(ValueError, match=re.escape(message)):
    efficientnet.build_model(**kwargs)


def _feature_sizes(model, names):
  probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
  return [int(t.shape[1]) for t in probe.outputs]


def test_small_image_variant_feature_map_sizes():
  names = ['stem_swish'] + [f'blocks_{i}_project_bn' for i in range(7)] + [
      'head_swish']
  small = efficientnet.build_model('efficientnet-b0', 10, 32,
                                   small_image=True, **TINY)
  normal = efficientnet.build_model('efficientnet-b0', 10, 32, **TINY)
  # Stage strides 1,2,2,2,1,2,1; small_image makes stages 1 and 2 stride 1;
  # the stem keeps stride 2.
  assert _feature_sizes(small, names) == [16, 16, 16, 16, 8, 8, 4, 4, 4]
  assert _feature_sizes(normal, names) == [16, 16, 8, 4, 2, 2, 1, 1, 1]
  assert small.get_layer('stem_conv').strides == (2, 2)
  assert small(_images(2, 32)).shape == (2, 10)


def test_stochastic_depth_grows_linearly_and_dropout_follows_spec():
  model = efficientnet.build_model('efficientnet-b0', image_size=32)
  rates = {int(l.name.split('_')[1]): l.rate for l in model.layers
           if isinstance(l, efficientnet.StochasticDepth)}
  # B0 residual blocks: 2nd+ block of every repeated stage.
  assert sorted(rates) == [2, 4, 6, 7, 9, 10, 12, 13, 14]
  for i, rate in rates.items():
    assert rate == pytest.approx(0.2 * i / 16)
  assert model.get_layer('head_dropout').rate == 0.2
  b2 = efficientnet.build_model('efficientnet-b2', image_size=32,
                                stochastic_depth_rate=0.5, dropout_rate=0.0)
  assert 'head_dropout' not in [l.name for l in b2.layers]
  assert b2.get_layer('blocks_22_drop').rate == pytest.approx(0.5 * 22 / 23)
  none = efficientnet.build_model('efficientnet-b0', image_size=32,
                                  stochastic_depth_rate=0.0)
  assert not any(isinstance(l, efficientnet.StochasticDepth)
                 for l in none.layers)


def test_overrides_reach_layers():
  model = efficientnet.build_model(
      'efficientnet-b0', 10, 32, width_coefficient=0.5, depth_coefficient=2.0,
      batch_norm_momentum=0.9, batch_norm_epsilon=1e-5)
  assert model.get_layer('stem_conv').filters == 16
  assert model.get_layer('head_conv').filters == 640
  assert len([l for l in model.layers if l.name.endswith('_dwconv')]) == 32
  bns = [l for l in model.layers
         if isinstance(l, keras.layers.BatchNormalization)]
  assert all(b.momentum == 0.9 and b.epsilon == 1e-5 for b in bns)


def test_layer_names_are_deterministic_and_follow_tf1_scopes():
  first = [l.name for l in efficientnet.build_model('efficientnet-b0',
                                                    **TINY).layers]
  second = [l.name for l in efficientnet.build_model('efficientnet-b0',
                                                     **TINY).layers]
  assert first == second
  pattern = re.compile(r'images|normalize|stem_\w+|head_\w+|blocks_\d+_\w+')
  assert all(pattern.fullmatch(n) for n in first), first


def test_all_trainable_weights_get_gradients():
  model = efficientnet.build_model('efficientnet-b0', 10, 32,
                                   small_image=True, **TINY)
  with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(model(_images(4, 32), training=True)))
  grads = tape.gradient(loss, model.trainable_weights)
  assert all(g is not None and np.any(g.numpy() != 0) for g in grads)


def test_mixed_bfloat16_policy_gives_float32_logits():
  keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    model = efficientnet.build_model('efficientnet-b0', 10, 32, **TINY)
    assert model.get_layer('stem_conv').compute_dtype == 'bfloat16'
    assert model.get_layer('stem_conv').kernel.dtype == 'float32'
    for training in (True, False):
      logits = model(_images(2, 32), training=training)
      assert logits.dtype == tf.float32
      assert np.all(np.isfinite(logits.numpy()))
  finally:
    keras.mixed_precision.set_global_policy('float32')
  assert keras.mixed_precision.global_policy().name == 'float32'


def test_two_replicas_sync_batch_norm_and_independent_noise_masks():
  """Under a 2-replica MirroredStrategy (2 logical CPUs, in a subprocess)."""
  script = textwrap.dedent('''
    import tensorflow as tf
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    import efficientnet
    strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
    x = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(
        np.float32)
    kwargs = dict(num_classes=10, small_image=True, dropout_rate=0.0,
                  stochastic_depth_rate=0.0, width_coefficient=0.25,
                  depth_coefficient=0.25)
    for sync in (True, False):
      with strategy.scope():
        model = efficientnet.build_model('efficientnet-b0',
                                         sync_batch_norm=sync, **kwargs)
      single = efficientnet.build_model('efficientnet-b0', **kwargs)
      single.set_weights(model.get_weights())
      batch = next(iter(strategy.experimental_distribute_dataset(
          tf.data.Dataset.from_tensor_slices(x).batch(4))))
      step = tf.function(lambda b: strategy.run(
          lambda t: model(t, training=True), args=(b,)))
      logits = strategy.gather(step(batch), axis=0).numpy()
      diff = np.abs(logits - single(x, training=True).numpy()).max()
      var_diff = np.abs(model.get_layer('stem_bn').moving_variance.numpy() -
                        single.get_layer('stem_bn').moving_variance.numpy()
                        ).max()
      print(f'sync={sync} diff={diff:.3g} var_diff={var_diff:.3g}')
    from efficientnet import layers
    with strategy.scope():
      drops = [layers.StochasticDepth(0.5), layers.ReplicaDropout(0.5)]
    ones = next(iter(strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(np.ones((128, 1, 1, 1),
                                                   np.float32)).batch(128))))
    for drop in drops:
      masks = strategy.experimental_local_results(tf.function(
          lambda b: strategy.run(lambda t: drop(t, training=True), args=(b,))
      )(ones))
      print(f'{type(drop).__name__}_masks_equal='
            f'{np.array_equal(masks[0], masks[1])}')
  ''')
  result = subprocess.run(
      [sys.executable, '-c', script], cwd=REPO_ROOT, capture_output=True,
      text=True, timeout=300,
      env={**os.environ, 'PYTHONPATH': str(REPO_ROOT)})
  assert result.returncode == 0, result.stderr[-3000:]
  values = {sync: (float(diff), float(var_diff)) for sync, diff, var_diff in
            re.findall(r'sync=(\w+) diff=(\S+) var_diff=(\S+)',
                       result.stdout)}
  assert set(values) == {'True', 'False'}, result.stdout
  # Synchronized BN on 2 x 2 examples == one replica on all 4 examples.
  assert values['True'][0] < 1e-4 and values['True'][1] < 1e-6
  # Control: per-replica statistics give visibly different outputs.
  assert values['False'][0] > 1e-2
  # Each replica draws its own stochastic-depth and dropout masks.
  assert 'StochasticDepth_masks_equal=False' in result.stdout
  assert 'ReplicaDropout_masks_equal=False' in result.stdout


# --------------------------------------------------------------------------
# Serialization.
# --------------------------------------------------------------------------
def test_get_config_from_config_round_trip():
  model = efficientnet.build_model('efficientnet-b0', 10, 32,
                                   small_image=True, sync_batch_norm=True,
                                   stochastic_depth_rate=0.3, **TINY)
  _randomize(model)
  clone = keras.Model.from_config(model.get_config())
  assert [l.get_config() for l in clone.layers] == [
      l.get_config() for l in model.layers]
  clone.set_weights(model.get_weights())
  x = _images(2, 32)
  np.testing.assert_array_equal(clone(x, training=False),
                                model(x, training=False))


def test_keras_file_round_trip_loads_with_only_import_efficientnet(tmp_path):
  model = efficientnet.build_model('efficientnet-b0', 10, 32,
                                   small_image=True, **TINY)
  _randomize(model)
  path = str(tmp_path / 'model.keras')
  model.save(path)
  x = _images(2, 32)
  np.save(tmp_path / 'x.npy', x)
  expected = model(x, training=False).numpy()
  loaded = keras.models.load_model(path)
  np.testing.assert_array_equal(loaded(x, training=False), expected)
  # A fresh process that imports nothing but the package.
  script = textwrap.dedent(f'''
    import keras, numpy as np
    import efficientnet
    model = keras.models.load_model({path!r})
    x = np.load({str(tmp_path / 'x.npy')!r})
    np.save({str(tmp_path / 'y.npy')!r}, model(x, training=False).numpy())
  ''')
  result = subprocess.run(
      [sys.executable, '-c', script], capture_output=True, text=True,
      timeout=300, cwd=tmp_path,
      env={**os.environ, 'PYTHONPATH': str(REPO_ROOT)})
  assert result.returncode == 0, result.stderr[-3000:]
  np.testing.assert_array_equal(np.load(tmp_path / 'y.npy'), expected)
