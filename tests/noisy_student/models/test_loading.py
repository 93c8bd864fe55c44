"""One loader for every format: .keras, SavedModel, our checkpoints, TF1 checkpoints."""

import numpy as np
import pytest
import tensorflow as tf

import efficientnet
from noisy_student.core import model_refs
from noisy_student.runtime import errors
from noisy_student.models import backbones
from noisy_student.models import checkpoints
from noisy_student.models import export
from noisy_student.models import loading
from tests import helpers

pytestmark = pytest.mark.usefixtures('fresh_keras_session')


@pytest.fixture(scope='module')
def formats(tmp_path_factory):
  """The same weights as .keras, SavedModel, our checkpoint and TF1 checkpoint."""
  root = tmp_path_factory.mktemp('formats')
  config = helpers.tiny_model()
  model = backbones.build_model(config)
  checkpoints.write_model_config(str(root / 'ours'), config)
  tf.train.CheckpointManager(tf.train.Checkpoint(model=model), str(root / 'ours'),
                             1).save(checkpoint_number=5)
  return model, {
      'keras': export.export_keras(model, str(root / 'm.keras')),
      'saved_model': export.export_saved_model(model, str(root / 'sm'),
                                               small_image=True),
      'ours': str(root / 'ours'),
      'tf1': efficientnet.save_tf1_checkpoint(model, str(root / 'tf1' / 'm.ckpt')),
  }


@pytest.mark.parametrize('kind', ['keras', 'saved_model', 'ours'])
def test_every_format_gives_the_same_classifier(formats, kind):
  model, paths = formats
  classifier = loading.load_classifier(paths[kind])
  assert (classifier.image_size, classifier.num_classes) == (32, 10)
  images = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3))
  np.testing.assert_allclose(classifier.predict_logits(images),
                             model(images.astype(np.float32), training=False),
                             rtol=1e-4, atol=1e-5)


def test_tf1_checkpoint_loads_with_the_fallback_architecture(formats):
  model, paths = formats  # TF1 files hold weights only: the caller's architecture
  loaded = loading.load_model(paths['tf1'], helpers.tiny_model(), use_ema=False)
  for a, b in zip(loaded.weights, model.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_unloadable_paths_are_named(tmp_path, formats):
  with pytest.raises(errors.CheckpointError, match='missing.keras'):
    loading.load_model(str(tmp_path / 'missing.keras'))
  (tmp_path / 'broken.keras').write_bytes(b'not a zip')
  with pytest.raises(errors.CheckpointError, match='broken.keras'):
    loading.load_model(str(tmp_path / 'broken.keras'))
  _, paths = formats
  with pytest.raises(errors.CheckpointError, match='model_config.json'):
    loading.load_model(paths['tf1'])  # TF1 without an architecture


def test_an_exported_keras_file_comes_back_into_the_project(formats):
  """--model_name / --teacher_model_path / --init_model_path with the portable
  .keras export (built-in layers only, no stochastic depth)."""
  model, paths = formats
  path = paths['keras']
  assert model_refs.keras_file_image_size(path) == 32
  images = np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3)).astype(
      np.float32)
  expected = model(images, training=False)
  # --model_name=<file>.keras: the file's network, trainable.
  student = loading.build(helpers.tiny_model(model_name=path))
  assert efficientnet.custom_objects(student) == []
  with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.square(student(images, training=True)))
  grads = tape.gradient(loss, student.trainable_weights)
  assert all(g is not None for g in grads)
  # --teacher_model_path=<file>.keras.
  np.testing.assert_allclose(loading.load_model(path)(images, training=False),
                             expected, rtol=1e-5, atol=1e-6)
  # --init_model_path=<file>.keras: its weights into the project's network.
  fresh = backbones.build_model(helpers.tiny_model())
  assert loading.restore(fresh, path) == path
  np.testing.assert_allclose(fresh(images, training=False), expected,
                             rtol=1e-5, atol=1e-6)
  other = backbones.build_model(helpers.tiny_model(num_classes=5))
  with pytest.raises(errors.CheckpointError,
                     match=r'm.keras: does not fit the .* head_dense/kernel'):
    loading.restore(other, path)


def _save(model, path) -> str:
  model.save(path)
  return str(path)


@pytest.mark.parametrize('fault', ['softmax_dense', 'softmax_layer',
                                   'softmax_op', 'nested_sequential',
                                   'sigmoid_dense', 'sigmoid_op',
                                   'one_channel', 'two_outputs'])
def test_a_keras_file_the_loop_cannot_train_is_refused_by_name(tmp_path,
                                                                fault):
  import keras  # pylint: disable=g-import-not-at-top
  channels = 1 if fault == 'one_channel' else 3
  images = keras.Input((8, 8, channels))
  x = keras.layers.GlobalAveragePooling2D()(images)
  if fault == 'softmax_dense':
    outputs = keras.layers.Dense(10, activation='softmax', name='probs')(x)
  elif fault == 'softmax_layer':
    outputs = keras.layers.Softmax(name='probs')(keras.layers.Dense(10)(x))
  elif fault == 'softmax_op':
    outputs = keras.ops.softmax(keras.layers.Dense(10)(x))
  elif fault == 'sigmoid_dense':
    outputs = keras.layers.Dense(10, activation='sigmoid', name='probs')(x)
  elif fault == 'sigmoid_op':
    outputs = keras.ops.sigmoid(keras.layers.Dense(10)(x))
  elif fault == 'nested_sequential':
    outputs = keras.Sequential([keras.layers.Dense(10),
                                keras.layers.Activation('softmax', name='probs')
                                ], name='head')(x)
  elif fault == 'two_outputs':
    outputs = [keras.layers.Dense(10)(x), keras.layers.Dense(10)(x)]
  else:
    outputs = keras.layers.Dense(10)(x)
  path = _save(keras.Model(images, outputs), tmp_path / f'{fault}.keras')
  message = {'softmax_dense': r"ends in a softmax \('probs'\)",
             'softmax_layer': r"ends in a softmax \('probs'\)",
             'softmax_op': r'ends in a softmax',
             'nested_sequential': r"ends in a softmax \('probs'\)",
             'sigmoid_dense': r"ends in a sigmoid \('probs'\)",
             'sigmoid_op': r'ends in a sigmoid',
             'one_channel': r'inputs of shape \(None, 8, 8, 1\)',
             'two_outputs': r'1 inputs and 2 outputs'}[fault]
  with pytest.raises(errors.ConfigError, match=f'{fault}.keras.*{message}'):
    loading.build(helpers.tiny_model(model_name=path, image_size=8,
                                     num_classes=10))
  # As a teacher or for evaluation too (a softmax would be applied twice).
  with pytest.raises(errors.ConfigError, match=f'{fault}.keras.*{message}'):
    loading.load_model(path)


def test_a_keras_file_with_logits_is_accepted(tmp_path):
  import keras  # pylint: disable=g-import-not-at-top
  images = keras.Input((8, 8, 3))
  logits = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(images))
  path = _save(keras.Model(images, logits), tmp_path / 'logits.keras')
  model = loading.build(helpers.tiny_model(model_name=path, image_size=8,
                                           num_classes=10))
  assert model.output_shape == (None, 10)
