"""Export: the SavedModel's two signatures, loaded back and run; .keras beside it."""

import numpy as np
import pytest
import tensorflow as tf

from data import image_codec
from noisy_student.core import errors
from noisy_student.models import backbones
from noisy_student.models import export
from tests import helpers

pytestmark = pytest.mark.usefixtures('fresh_keras_session')


@pytest.fixture(scope='module')
def model():
  return backbones.build_model(helpers.tiny_model())


def test_saved_model_signatures_match_the_model(model, tmp_path):
  path = export.export_saved_model(model, str(tmp_path / 'sm'), small_image=True)
  loaded = tf.saved_model.load(path)
  assert set(loaded.signatures) == {'serving_default', 'serving_bytes'}
  images = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype(
      np.float32)
  out = loaded.signatures['serving_default'](images=tf.constant(images))
  expected = model(images, training=False).numpy()
  np.testing.assert_allclose(out['logits'].numpy(), expected, rtol=1e-4,
                             atol=1e-5)
  np.testing.assert_allclose(out['probabilities'].numpy().sum(-1), 1.0,
                             rtol=1e-5)
  np.testing.assert_array_equal(out['classes'].numpy(), expected.argmax(-1))
  # serving_bytes decodes PNG bytes through the eval preprocessing.
  pngs = [image_codec.encode(np.round(im).astype(np.uint8), 'png')
          for im in images]
  by_bytes = loaded.signatures['serving_bytes'](image_bytes=tf.constant(pngs))
  rounded = model(np.round(images), training=False).numpy()
  np.testing.assert_allclose(by_bytes['logits'].numpy(), rounded, rtol=1e-4,
                             atol=1e-4)


def test_reexport_replaces_the_folder_whole_and_keras_needs_its_suffix(
    model, tmp_path):
  target = str(tmp_path / 'sm')
  export.export_saved_model(model, target, small_image=True)
  export.export_saved_model(model, target, small_image=True)
  assert sorted(p.name for p in tmp_path.iterdir()) == ['sm']  # no temp left
  assert export.export_keras(model, str(tmp_path / 'm.keras')).endswith('.keras')
  with pytest.raises(errors.ConfigError, match='m.h5'):
    export.export_keras(model, str(tmp_path / 'm.h5'))
