"""Export: the SavedModel's two signatures, loaded back and run; .keras beside it."""

import io
import os
import site
import struct
import subprocess
import sys
import zlib

import keras
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from data import layout
from data import image_codec
from data import writers
import efficientnet
from noisy_student.augment import preprocessing
from noisy_student.runtime import errors
from noisy_student.models import backbones
from noisy_student.models import checkpoints
from noisy_student.models import export
from noisy_student.models import loading
from tests import helpers

pytestmark = pytest.mark.usefixtures('fresh_keras_session')


@pytest.fixture(scope='module')
def model():
  return backbones.build_model(helpers.tiny_model())


@pytest.fixture(scope='module')
def loaded(model, tmp_path_factory):
  """The model exported once as a SavedModel (32x32 small-image), loaded back."""
  path = str(tmp_path_factory.mktemp('export') / 'sm')
  return tf.saved_model.load(
      export.export_saved_model(model, path, small_image=True))


def test_saved_model_signatures_match_the_model(model, loaded):
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


def _png(array: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format='PNG')  # mode from the shape: L, RGB, RGBA
  return buffer.getvalue()


def test_serving_bytes_takes_grayscale_rgba_and_any_size(model, loaded):
  """Each image against the model run on a numpy reference of its view."""
  rng = np.random.default_rng(3)
  gray = rng.integers(0, 256, (32, 32), dtype=np.uint8)
  rgba = rng.integers(0, 256, (32, 32, 4), dtype=np.uint8)
  rgba[..., 3] = rng.integers(0, 256, (32, 32))  # alpha is dropped, not blended
  large = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)   # 64 wide, 48 high
  small = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
  references = np.stack([
      np.repeat(gray[..., None], 3, axis=-1).astype(np.float32),
      rgba[..., :3].astype(np.float32),
      helpers.tf1_bicubic_reference(large, 32).astype(np.float32),
      helpers.tf1_bicubic_reference(small, 32).astype(np.float32)])
  out = loaded.signatures['serving_bytes'](image_bytes=tf.constant(
      [_png(gray), _png(rgba), _png(large), _png(small)]))
  expected = model(references, training=False).numpy()
  np.testing.assert_allclose(out['logits'].numpy(), expected, rtol=1e-4,
                             atol=1e-4)
  np.testing.assert_array_equal(out['classes'].numpy(), expected.argmax(-1))


def test_serving_bytes_flags_bad_elements_and_classifies_the_rest(model,
                                                                  loaded):
  rng = np.random.default_rng(5)
  images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(2)]
  good_png = _png(images[0])
  good_jpeg = image_codec.encode(images[1], 'jpeg', 95)
  batch = [good_png, b'', good_png[:len(good_png) // 2], b'not an image at all',
           good_jpeg, good_jpeg[:-40]]
  out = loaded.signatures['serving_bytes'](image_bytes=tf.constant(batch))
  np.testing.assert_array_equal(out['valid'].numpy(),
                                [True, False, False, False, True, False])
  np.testing.assert_array_equal(out['classes'].numpy()[[1, 2, 3, 5]], -1)
  assert not out['probabilities'].numpy()[[1, 2, 3, 5]].any()
  # The JPEG row is decoded by TensorFlow's decoder, as serving does: two
  # JPEG decoders may differ by a grey level, which moves the logits ~1e-3.
  jpeg_pixels = preprocessing.decode_image(tf.constant(good_jpeg)).numpy()
  decoded = np.stack([images[0], jpeg_pixels]).astype(np.float32)
  expected = model(decoded, training=False).numpy()
  np.testing.assert_allclose(out['logits'].numpy()[[0, 4]], expected,
                             rtol=1e-4, atol=1e-4)
  assert export.looks_whole(tf.constant(good_png)).numpy()


def _png_claiming(good_png: bytes, width: int, height: int) -> bytes:
  """`good_png` with an IHDR that states another size (CRC recomputed)."""
  ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
  chunk = struct.pack('>I', 13) + b'IHDR' + ihdr + struct.pack(
      '>I', zlib.crc32(b'IHDR' + ihdr))
  return good_png[:8] + chunk + good_png[33:]


def test_serving_bytes_isolates_corrupt_data_and_absurd_sizes(model, loaded):
  """What the end-marker check cannot see costs only its own row too."""
  rng = np.random.default_rng(6)
  image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
  good_png = _png(image)
  good_jpeg = image_codec.encode(image, 'jpeg', 95)
  corrupt_png = good_png[:40] + b'x' * (len(good_png) - 52) + good_png[-12:]
  corrupt_jpeg = good_jpeg[:200] + bytes(len(good_jpeg) - 210) + good_jpeg[-10:]
  big = io.BytesIO()
  Image.new('L', (7000, 7000)).save(big, format='PNG')  # 49 MP, a few KB
  batch = [good_png, corrupt_png, _png_claiming(good_png, 100000, 100000),
           big.getvalue(), corrupt_jpeg, good_png]
  assert export.header_pixels(tf.constant(batch[2])).numpy() == 10 ** 10
  assert export.header_pixels(tf.constant(good_jpeg)).numpy() == 32 * 32
  out = loaded.signatures['serving_bytes'](image_bytes=tf.constant(batch))
  np.testing.assert_array_equal(out['valid'].numpy(),
                                [True, False, False, False, False, True])
  np.testing.assert_array_equal(out['classes'].numpy()[1:5], -1)
  expected = model(image[np.newaxis].astype(np.float32), training=False)
  np.testing.assert_allclose(out['logits'].numpy()[[0, 5]],
                             np.repeat(expected.numpy(), 2, axis=0),
                             rtol=1e-4, atol=1e-4)


def test_empty_batches_give_empty_outputs(loaded):
  out = loaded.signatures['serving_bytes'](
      image_bytes=tf.constant([], dtype=tf.string))
  assert out['valid'].shape == (0,) and out['logits'].shape == (0, 10)
  out = loaded.signatures['serving_default'](
      images=tf.zeros([0, 32, 32, 3], tf.float32))
  assert out['classes'].shape == (0,) and out['probabilities'].shape == (0, 10)


def _model_dir(model, path) -> str:
  checkpoints.write_model_config(path, helpers.tiny_model())
  tf.train.CheckpointManager(tf.train.Checkpoint(model=model), path,
                             1).save(checkpoint_number=1)
  return path


def test_export_writes_the_keras_file_beside_the_saved_model(model, tmp_path):
  model_dir = _model_dir(model, str(tmp_path / 'model'))
  outputs = export.export(model_dir, str(tmp_path / 'serving' / 'student'))
  assert outputs['keras'] == str(tmp_path / 'serving' / 'student.keras')
  assert sorted(p.name for p in (tmp_path / 'serving').iterdir()) == [
      'student', 'student.keras']
  assert layout.keras_file_beside('out/sm/') == 'out/sm.keras'
  outputs = export.export(model_dir, str(tmp_path / 'only'), keras_path='')
  assert 'keras' not in outputs and not (tmp_path / 'only.keras').exists()
  # A bad --export_keras_path is refused before anything is written.
  with pytest.raises(errors.ConfigError, match='m.h5'):
    export.export(model_dir, str(tmp_path / 'never'),
                  keras_path=str(tmp_path / 'm.h5'))
  assert not (tmp_path / 'never').exists()


# Run with `python -I -S`: no PYTHON* variables, no working directory and no
# .pth files (the editable install's points at the checkout) on sys.path.
# Only the site-packages folders, given as argv[1], are added.
_NO_PROJECT_SCRIPT = r'''
import importlib.util
import os
import sys

sys.path.extend(sys.argv[1].split(os.pathsep))
unreachable = [m for m in ('data', 'efficientnet', 'noisy_student')
               if importlib.util.find_spec(m) is None]
import keras
import numpy as np
import tensorflow as tf

saved_model, keras_file, images, out = sys.argv[2:]
x = np.load(images)
model = keras.saving.load_model(keras_file)
served = tf.saved_model.load(saved_model).signatures['serving_default'](
    images=tf.constant(x))['logits']
np.savez(out, keras=np.asarray(model(x, training=False)),
         served=np.asarray(served), unreachable=np.asarray(unreachable),
         layers=np.asarray(sorted({type(l).__module__ for l in model.layers})),
         imported=np.asarray(sorted(
             {m.split('.')[0] for m in sys.modules} &
             {'data', 'efficientnet', 'noisy_student'})))
'''


def test_exported_keras_loads_without_the_project(tmp_path):
  """Plain keras.saving.load_model in a process that cannot import the project
  gives the SavedModel's serving_default logits."""
  config = helpers.tiny_model()
  model = backbones.build_model(config)
  rng = np.random.default_rng(7)
  for w in model.weights:  # BN statistics away from 0 / 1, non-zero biases
    w.assign(rng.uniform(0.5, 1.5, w.shape) if 'variance' in w.path else
             rng.normal(0, 0.3, w.shape))
  outputs = export.export(_model_dir(model, str(tmp_path / 'model')),
                          str(tmp_path / 'serving' / 'student'))
  assert efficientnet.custom_objects(
      keras.saving.load_model(outputs['keras'])) == []
  images = rng.uniform(0, 255, (5, 32, 32, 3)).astype(np.float32)
  np.save(tmp_path / 'images.npy', images)
  work = tmp_path / 'elsewhere'
  work.mkdir()
  env = {k: v for k, v in os.environ.items() if not k.startswith('PYTHON')}
  result = subprocess.run(
      [sys.executable, '-I', '-S', '-c', _NO_PROJECT_SCRIPT,
       os.pathsep.join(site.getsitepackages()), outputs['saved_model'],
       outputs['keras'], str(tmp_path / 'images.npy'),
       str(tmp_path / 'out.npz')],
      cwd=work, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  out = np.load(tmp_path / 'out.npz')
  assert list(out['unreachable']) == ['data', 'efficientnet', 'noisy_student']
  assert list(out['imported']) == []
  assert all(m.startswith('keras.') for m in out['layers']), out['layers']
  np.testing.assert_allclose(out['keras'], out['served'], rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(out['keras'], model(images, training=False),
                             rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_export_never_deletes_what_it_did_not_write(model, tmp_path):
  """A folder with the user's files, the model_dir itself, or a folder that
  holds the model_dir is refused before any work; nothing is removed."""
  model_dir = _model_dir(model, str(tmp_path / 'model'))
  mine = tmp_path / 'mine'
  mine.mkdir()
  (mine / 'notes.txt').write_text('keep me')
  before = helpers.tree_hashes(tmp_path)
  with pytest.raises(errors.ConfigError,
                     match=r'export_dir=.*mine holds files this project did '
                     r'not write \(notes.txt\)'):
    export.export(model_dir, str(mine))
  for target in (model_dir, str(tmp_path)):
    with pytest.raises(errors.ConfigError,
                       match=r'export_dir=.* would replace .*model \(the '
                       r'folder is replaced whole\)'):
      export.export(model_dir, target, keras_path='')
  assert helpers.tree_hashes(tmp_path) == before
  # An export of ours (marker) and an empty folder are replaced.
  ours = str(tmp_path / 'ours')
  export.export(model_dir, ours, keras_path='')
  assert writers.OWNED_MARKER in os.listdir(ours)
  export.export(model_dir, ours, keras_path='')
  (tmp_path / 'empty').mkdir()
  export.export(model_dir, str(tmp_path / 'empty'), keras_path='')
  # An older export without the marker (a bare SavedModel) is ours too.
  os.remove(os.path.join(ours, writers.OWNED_MARKER))
  export.export(model_dir, ours, keras_path='')
  # A user's file put into an export, or a folder with only an assets/
  # subfolder, is never replaced.
  with open(os.path.join(ours, 'labels.txt'), 'w') as f:
    f.write('mine')
  site = tmp_path / 'site'
  (site / 'assets').mkdir(parents=True)
  for target in (ours, str(site)):
    with pytest.raises(errors.ConfigError, match='holds files this project '
                       'did not write'):
      export.export(model_dir, target, keras_path='')
  assert os.path.exists(os.path.join(ours, 'labels.txt'))


DIGIT_NAMES = tuple(f'digit {c}' for c in range(10))


def test_export_carries_the_training_datas_class_names(model, tmp_path):
  """model_config.json's names -> assets/class_names.txt and a `class_names`
  output per row ('' for an element serving_bytes cannot classify)."""
  model_dir = str(tmp_path / 'model')
  checkpoints.write_model_config(model_dir,
                                 helpers.tiny_model(class_names=DIGIT_NAMES))
  tf.train.CheckpointManager(tf.train.Checkpoint(model=model), model_dir,
                             1).save(checkpoint_number=1)
  outputs = export.export(model_dir, str(tmp_path / 'sm'), keras_path='')
  assert export.read_class_names(outputs['saved_model']) == DIGIT_NAMES
  # The loader reads them back from either (a teacher's names: beam_label).
  assert loading.reference_class_names(outputs['saved_model']) == DIGIT_NAMES
  assert loading.reference_class_names(model_dir) == DIGIT_NAMES
  assert (tmp_path / 'sm' / 'assets' / export.CLASS_NAMES_FILE).read_text(
      ) == ''.join(f'{n}\n' for n in DIGIT_NAMES)
  loaded = tf.saved_model.load(outputs['saved_model'])
  images = np.random.default_rng(3).uniform(0, 255, (4, 32, 32, 3)).astype(
      np.float32)
  served = loaded.signatures['serving_default'](images=tf.constant(images))
  assert [n.decode() for n in served['class_names'].numpy()] == [
      DIGIT_NAMES[c] for c in served['classes'].numpy()]
  png = image_codec.encode(np.round(images[0]).astype(np.uint8), 'png')
  by_bytes = loaded.signatures['serving_bytes'](
      image_bytes=tf.constant([png, b'not an image']))
  assert by_bytes['valid'].numpy().tolist() == [True, False]
  assert [n.decode() for n in by_bytes['class_names'].numpy()] == [
      DIGIT_NAMES[by_bytes['classes'].numpy()[0]], '']


def test_names_are_imagenets_for_1000_classes_and_absent_when_unknown(
    loaded, tmp_path):
  # `loaded`: 10 classes of unknown names (no asset, no class_names output).
  assert sorted(loaded.signatures['serving_default'].structured_outputs) == [
      'classes', 'logits', 'probabilities']
  assert sorted(loaded.signatures['serving_bytes'].structured_outputs) == [
      'classes', 'logits', 'probabilities', 'valid']
  from data import label_maps  # pylint: disable=g-import-not-at-top
  assert export.export_class_names(1000) == label_maps.imagenet_wnids()
  assert export.export_class_names(1000, DIGIT_NAMES) == DIGIT_NAMES
  assert export.export_class_names(10) is None
  wide = backbones.build_model(helpers.tiny_model(num_classes=1000))
  path = export.export_saved_model(wide, str(tmp_path / 'imagenet'),
                                   small_image=True)
  names = export.read_class_names(path)
  assert names == label_maps.imagenet_wnids() and names[0] == 'n01440764'
  out = tf.saved_model.load(path).signatures['serving_default'](
      images=tf.zeros([2, 32, 32, 3]))
  assert out['class_names'].numpy()[0].decode() == names[
      out['classes'].numpy()[0]]
