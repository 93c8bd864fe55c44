"""Tests for efficientnet/portable.py (to_portable, custom_objects)."""

import zipfile

import keras
import numpy as np
import pytest

import efficientnet
from efficientnet import layers

pytestmark = pytest.mark.usefixtures('fresh_keras_session')

# The full B0 structure scaled down: SE in every block, skips with stochastic
# depth, head dropout, normalisation.
TINY = dict(width_coefficient=0.25, depth_coefficient=0.5,
            stochastic_depth_rate=0.5, dropout_rate=0.3)


def _model(**kwargs):
  model = efficientnet.build_model('efficientnet-b0', 10, 32, small_image=True,
                                   **TINY, **kwargs)
  rng = np.random.default_rng(0)
  for w in model.weights:  # BN statistics and biases away from 0 / 1
    w.assign(rng.uniform(0.5, 1.5, w.shape) if 'variance' in w.path else
             rng.normal(0, 0.3, w.shape))
  return model


def _images(n=4):
  return np.random.default_rng(1).uniform(0, 255, (n, 32, 32, 3)).astype(
      np.float32)


def test_portable_model_has_builtin_layers_and_the_same_logits():
  model = _model()
  assert efficientnet.custom_objects(model) == [
      f'efficientnet.layers.{name}' for name in (
          'ConvKernelInitializer', 'DenseKernelInitializer',
          'ImageNormalization', 'ReplicaDropout', 'SqueezeExcite',
          'StochasticDepth')]
  portable = efficientnet.to_portable(model)
  assert efficientnet.custom_objects(portable) == []
  assert all(type(l).__module__.startswith('keras.') for l in portable.layers)
  assert portable.name == model.name
  assert portable.input_shape == model.input_shape
  # Same names (stochastic depth dropped; the SE's Multiply keeps its name).
  names = {l.name for l in portable.layers}
  assert {l.name for l in model.layers
          if not isinstance(l, layers.StochasticDepth)} <= names
  assert isinstance(portable.get_layer('blocks_1_se'), keras.layers.Multiply)
  assert isinstance(portable.get_layer('normalize'), keras.layers.Normalization)
  assert type(portable.get_layer('head_dropout')) is keras.layers.Dropout
  assert portable.get_layer('head_dropout').rate == 0.3
  # The same weights in the same order; the SE's under new layer names.
  assert [w.path.replace('_se_', '_se/') for w in portable.weights] == [
      w.path for w in model.weights]
  for old, new in zip(model.weights, portable.weights):
    np.testing.assert_array_equal(new.numpy(), old.numpy())
  x = _images()
  expected = model(x, training=False).numpy()
  np.testing.assert_allclose(portable(x, training=False).numpy(), expected,
                             rtol=1e-6, atol=1e-6)
  # Idempotent on a portable model.
  again = efficientnet.to_portable(portable)
  np.testing.assert_allclose(again(x).numpy(), expected, rtol=1e-6, atol=1e-6)


def test_portable_file_round_trips_and_names_no_project_class(tmp_path):
  model = _model(mean_rgb=None, stddev_rgb=None)  # no normalisation layer
  path = str(tmp_path / 'portable.keras')
  efficientnet.to_portable(model).save(path)
  with zipfile.ZipFile(path) as archive:
    config = archive.read('config.json').decode()
  # No module or registered name of ours (the model is named efficientnet-b0).
  assert 'efficientnet.' not in config and 'efficientnet>' not in config
  loaded = keras.saving.load_model(path)  # safe_mode, no custom_objects
  x = _images() / 255.0
  np.testing.assert_allclose(loaded(x).numpy(),
                             model(x, training=False).numpy(),
                             rtol=1e-6, atol=1e-6)


def test_a_loaded_project_file_converts_too(tmp_path):
  """An older `.keras` of `build_model`'s network (needs `import efficientnet`)."""
  model = _model()
  path = str(tmp_path / 'project.keras')
  model.save(path)
  portable = efficientnet.to_portable(keras.saving.load_model(path))
  x = _images()
  np.testing.assert_allclose(portable(x).numpy(),
                             model(x, training=False).numpy(),
                             rtol=1e-6, atol=1e-6)


def test_mixed_precision_model_becomes_float32():
  reference = _model()
  keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    mixed = efficientnet.build_model('efficientnet-b0', 10, 32,
                                     small_image=True, **TINY)
    mixed.set_weights(reference.get_weights())
    portable = efficientnet.to_portable(mixed)
  finally:
    keras.mixed_precision.set_global_policy('float32')
  assert {l.dtype_policy.name for l in portable.layers} == {'float32'}
  x = _images()
  np.testing.assert_allclose(portable(x).numpy(),
                             reference(x, training=False).numpy(),
                             rtol=1e-6, atol=1e-6)


class _Twice(keras.layers.Layer):

  def call(self, inputs):
    return inputs * 2.0


def test_a_layer_without_builtin_equivalent_is_named():
  images = keras.Input((8, 8, 3))
  x = _Twice(name='twice')(images)
  model = keras.Model(images, keras.layers.Dense(2)(x), name='mine')
  assert efficientnet.custom_objects(model) == [f'{__name__}._Twice']
  with pytest.raises(ValueError, match='mine: layer twice is a .*_Twice'):
    efficientnet.to_portable(model)
