"""Tests for the efficientnet/convert_checkpoint.py binary."""

import os
import subprocess
import sys

from absl import flags
import keras
import numpy as np
import pytest

from noisy_student.runtime import errors
import efficientnet
from efficientnet import convert_checkpoint
from tests import helpers
from tests.conftest import REPO_ROOT

TINY = dict(width_coefficient=0.25, depth_coefficient=0.25)


def _tiny_tf1_checkpoint(path, **build_kwargs):
  model = efficientnet.build_model('efficientnet-b0', 10, small_image=True,
                                   **TINY, **build_kwargs)
  rng = np.random.default_rng(0)
  for w in model.weights:
    w.assign(rng.uniform(0.5, 1.5, w.shape).astype(np.float32)
             if 'variance' in w.path else
             rng.normal(0, 0.3, w.shape).astype(np.float32))
  return model, efficientnet.save_tf1_checkpoint(model, path,
                                                 include_ema=True)


def _run(*args):
  return subprocess.run(
      [sys.executable, '-m', 'efficientnet.convert_checkpoint', *args],
      cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
      env={**os.environ, 'PYTHONPATH': str(REPO_ROOT)})


def test_binary_converts_a_tf1_checkpoint_end_to_end(tmp_path):
  source, prefix = _tiny_tf1_checkpoint(str(tmp_path / 'ckpt' / 'model.ckpt'))
  output = tmp_path / 'out' / 'model.keras'
  result = _run('--model_name=efficientnet-b0', f'--checkpoint={prefix}',
                f'--output={output}', '--num_classes=10', '--small_image',
                '--width_coefficient=0.25', '--depth_coefficient=0.25')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'from EMA shadows' in result.stdout and 'wrote' in result.stdout
  assert sorted(os.listdir(output.parent)) == ['model.keras']  # no temp left
  loaded = keras.models.load_model(str(output))
  assert loaded.input_shape == (None, None, None, 3)  # any size by default
  assert efficientnet.custom_objects(loaded) == []  # loads without us
  x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype(
      np.float32)
  np.testing.assert_array_equal(loaded(x, training=False),
                                source(x, training=False))


def test_saved_model_dir_holding_the_source_checkpoint_is_refused(tmp_path):
  """--saved_model_dir is replaced whole: the folder of the source
  checkpoint (or one above it) is refused before the model is built."""
  _, prefix = _tiny_tf1_checkpoint(str(tmp_path / 'ckpt' / 'model.ckpt'))
  before = helpers.tree_hashes(tmp_path)
  for target in (tmp_path / 'ckpt', tmp_path):
    config = convert_checkpoint.ConvertConfig(
        model_name='efficientnet-b0', checkpoint=prefix,
        output=str(tmp_path / 'out.keras'), num_classes=10, small_image=True,
        width_coefficient=0.25, depth_coefficient=0.25,
        saved_model_dir=str(target))
    with pytest.raises(errors.ConfigError,
                       match=r'--saved_model_dir=.* would replace .*model.ckpt'):
      convert_checkpoint.convert(config)
  assert helpers.tree_hashes(tmp_path) == before


def test_convert_reports_a_mismatch_and_writes_nothing(tmp_path):
  _, prefix = _tiny_tf1_checkpoint(str(tmp_path / 'model.ckpt'))
  output = tmp_path / 'model.keras'
  config = convert_checkpoint.ConvertConfig(
      model_name='efficientnet-b0', checkpoint=prefix, output=str(output),
      num_classes=10, small_image=True)  # full B0, tiny checkpoint
  with pytest.raises(ValueError, match='missing from the checkpoint'):
    convert_checkpoint.convert(config)
  assert sorted(p.name for p in tmp_path.iterdir()) == [
      'model.ckpt.data-00000-of-00001', 'model.ckpt.index']


def _config(*args):
  flag_values = flags.FlagValues()
  convert_checkpoint.define_flags(flag_values)
  flag_values(['convert_checkpoint', *args])
  return convert_checkpoint.config_from_flags(flag_values)


def test_config_from_flags_defaults_and_none_normalisation():
  base = ('--model_name=efficientnet-l2', '--checkpoint=/c/model.ckpt',
          '--output=/o/l2.keras')
  config = _config(*base)
  assert config.use_ema and config.num_classes == 1000
  np.testing.assert_allclose(config.mean_rgb, efficientnet.IMAGENET_MEAN_RGB,
                             rtol=1e-5)
  none = _config(*base, '--mean_rgb=none', '--stddev_rgb=None',
                 '--nouse_ema', '--image_size=475')
  assert none.mean_rgb is None and none.stddev_rgb is None
  assert not none.use_ema and none.image_size == 475


@pytest.mark.parametrize('args, message', [
    (('--checkpoint=c', '--output=o.keras'), '--model_name is required'),
    (('--model_name=efficientnet-b0', '--checkpoint=c', '--output=o.keras',
      '--image_size=0'), r'--image_size must be >= 1 \(unset: any size\), '
     'received: 0'),
    (('--model_name=efficientnet-x', '--checkpoint=c', '--output=o.keras'),
     'efficientnet-x'),
    (('--model_name=efficientnet-b0', '--checkpoint=c', '--output=o.h5'),
     "--output must end in .keras, received: 'o.h5'"),
    (('--model_name=efficientnet-b0', '--checkpoint=c', '--output=o.keras',
      '--mean_rgb=1,2'), "--mean_rgb must be three"),
    (('--model_name=efficientnet-b0', '--checkpoint=c', '--output=o.keras',
      '--mean_rgb=none'), 'both'),
])
def test_config_from_flags_errors_name_the_flag(args, message):
  with pytest.raises(errors.ConfigError, match=message):
    _config(*args)


# --------------------------------------------------------------------------
# timm state dicts (.safetensors).
# --------------------------------------------------------------------------
@pytest.fixture(scope='module')
def timm_b0(tmp_path_factory):
  """(path, state) of a random timm tf_efficientnet_b0 .safetensors file."""
  from tests.efficientnet import timm_state_dicts  # pylint: disable=g-import-not-at-top
  state = timm_state_dicts.random_state_dict(timm_state_dicts.b0_timm_shapes())
  path = tmp_path_factory.mktemp('timm') / 'model.safetensors'
  return timm_state_dicts.write_safetensors(path, state), state


@pytest.mark.slow
def test_binary_converts_a_timm_state_dict_and_saved_model(timm_b0, tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path, state = timm_b0
  output, saved = tmp_path / 'out' / 'b0.keras', tmp_path / 'out' / 'sm'
  result = _run(f'--checkpoint={path}', f'--output={output}',
                '--image_size=64', f'--saved_model_dir={saved}')
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'built efficientnet-b0' in result.stdout  # inferred from the file
  assert 'from timm state dict' in result.stdout
  assert 'wrote SavedModel' in result.stdout
  assert sorted(os.listdir(output.parent)) == ['b0.keras', 'sm']
  expected = efficientnet.build_model('efficientnet-b0', image_size=64)
  efficientnet.load_timm_weights(expected, state)
  x = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype(
      np.float32)
  reference = expected(x, training=False).numpy()
  loaded = keras.models.load_model(str(output))
  np.testing.assert_allclose(loaded(x, training=False), reference,
                             rtol=1e-5, atol=1e-5)
  outputs = tf.saved_model.load(str(saved)).signatures['serving_default'](
      images=tf.constant(x))
  np.testing.assert_allclose(outputs['logits'], reference, rtol=1e-5,
                             atol=1e-5)
  np.testing.assert_array_equal(outputs['classes'], reference.argmax(-1))


def test_binary_names_the_model_name_that_does_not_fit(timm_b0, tmp_path):
  path, _ = timm_b0
  output = tmp_path / 'b1.keras'
  result = _run('--model_name=efficientnet-b1', f'--checkpoint={path}',
                f'--output={output}')
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1].startswith(
      'convert_checkpoint: error: --model_name=efficientnet-b1 does not fit '
      f'--checkpoint={path}: the file has stem 32, head 1280, stages '
      '[1, 2, 2, 3, 3, 4, 1]')
  assert not output.exists()


def test_resolve_model_name_infers_and_checks_timm_files(timm_b0, tmp_path):
  from tests.efficientnet import timm_state_dicts  # pylint: disable=g-import-not-at-top
  path, _ = timm_b0

  def resolve(**kwargs):
    return convert_checkpoint.resolve_model_name(
        convert_checkpoint.ConvertConfig(
            **{'model_name': None, 'checkpoint': path, 'output': 'o.keras',
               **kwargs}))

  assert resolve() == 'efficientnet-b0'
  assert resolve(model_name='efficientnet-b0') == 'efficientnet-b0'
  with pytest.raises(errors.ConfigError, match=(
      r'efficientnet-b1 has stem 32, head 1280, stages \[2, 3, 3, 4, 4, 5, '
      r'2\]')):
    resolve(model_name='efficientnet-b1')
  with pytest.raises(errors.ConfigError, match=(
      r'efficientnet-b0 with the given --width_coefficient/--depth_coefficient '
      r'has stem '
      r'32, head 1280, stages \[2,')):
    resolve(model_name='efficientnet-b0', depth_coefficient=2.0)
  with pytest.raises(errors.ConfigError, match=(
      r'--num_classes=10 does not fit --checkpoint=.*, whose classifier has '
      r'1000 classes')):
    resolve(num_classes=10)
  odd = timm_state_dicts.write_safetensors(tmp_path / 'odd.safetensors', {
      n: np.zeros(s, np.float32) for n, s in
      timm_state_dicts.stage_shapes(32, 1280, [1, 1]).items()})
  with pytest.raises(errors.ConfigError, match=(
      r'--model_name is required: --checkpoint=.*odd.safetensors \(stem 32, '
      r'head 1280, stages \[1, 1\] \(2 blocks\), 1000 classes\) fits no '
      'known size')):
    resolve(checkpoint=odd)
  with pytest.raises(errors.MissingFileError, match='absent.safetensors'):
    resolve(checkpoint=str(tmp_path / 'absent.safetensors'))


def test_config_from_flags_for_timm_files():
  base = ('--checkpoint=/w/model.safetensors', '--output=/o/b0.keras')
  config = _config(*base, '--saved_model_dir=/o/sm')
  assert config.model_name is None and config.is_timm
  assert config.saved_model_dir == '/o/sm'
  for flag in ('--scope=efficientnet-b0', '--nouse_ema'):
    with pytest.raises(errors.ConfigError, match=(
        f'--{flag[2:].split("=")[0].removeprefix("no")} applies to TF1 '
        'checkpoints only')):
      _config(*base, flag)


# --------------------------------------------------------------------------
# The SavedModel: the training export's signatures; any input size.
# --------------------------------------------------------------------------
def _random_weights(model, seed=0):
  rng = np.random.default_rng(seed)
  for w in model.weights:
    w.assign(rng.uniform(0.5, 1.5, w.shape).astype(np.float32)
             if 'variance' in w.path else
             rng.normal(0, 0.3, w.shape).astype(np.float32))


def test_default_conversion_takes_any_size_and_serves_bytes_with_names(
    tmp_path):
  """No --image_size: [N, None, None, 3] like keras.applications; the
  SavedModel has serving_default (any size) and serving_bytes (resized to
  B0's eval resolution, 224), with ImageNet's class names for 1000 classes."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from data import image_codec  # pylint: disable=g-import-not-at-top
  from data import label_maps  # pylint: disable=g-import-not-at-top
  from efficientnet import saved_model  # pylint: disable=g-import-not-at-top
  source = efficientnet.build_model('efficientnet-b0', 1000, image_size=48,
                                    **TINY)
  _random_weights(source)
  prefix = efficientnet.save_tf1_checkpoint(source, str(tmp_path / 'model.ckpt'))
  output, saved = tmp_path / 'b0.keras', tmp_path / 'sm'
  convert_checkpoint.convert(convert_checkpoint.ConvertConfig(
      model_name='efficientnet-b0', checkpoint=prefix, output=str(output),
      saved_model_dir=str(saved), num_classes=1000, **TINY))
  reference = efficientnet.build_model('efficientnet-b0', 1000, any_size=True,
                                       **TINY)
  reference.set_weights(source.get_weights())
  converted = keras.models.load_model(str(output))
  assert converted.input_shape == (None, None, None, 3)
  loaded = tf.saved_model.load(str(saved))
  assert set(loaded.signatures) == {'serving_default', 'serving_bytes'}
  wnids = label_maps.imagenet_wnids()
  assert saved_model.read_class_names(str(saved)) == wnids
  rng = np.random.default_rng(1)
  for side in (40, 57):
    x = rng.uniform(0, 255, (2, side, side, 3)).astype(np.float32)
    expected = reference(x, training=False).numpy()
    np.testing.assert_allclose(converted(x, training=False), expected,
                               rtol=1e-5, atol=1e-5)
    served = loaded.signatures['serving_default'](images=tf.constant(x))
    np.testing.assert_allclose(served['logits'], expected, rtol=1e-4,
                               atol=1e-5)
    assert [n.decode() for n in served['class_names'].numpy()] == [
        wnids[c] for c in served['classes'].numpy()]
  image = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
  by_bytes = loaded.signatures['serving_bytes'](image_bytes=tf.constant(
      [image_codec.encode(image, 'png'), b'']))
  view = saved_model.serving_view(tf.constant(image), 224)
  expected = reference(view[tf.newaxis], training=False).numpy()
  assert by_bytes['valid'].numpy().tolist() == [True, False]
  np.testing.assert_allclose(by_bytes['logits'][:1], expected, rtol=1e-4,
                             atol=1e-5)
  assert by_bytes['class_names'].numpy()[1] == b''
  assert by_bytes['classes'].numpy()[1] == -1


def test_a_fixed_image_size_still_fixes_the_input(tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from efficientnet import saved_model  # pylint: disable=g-import-not-at-top
  source, prefix = _tiny_tf1_checkpoint(str(tmp_path / 'ckpt' / 'model.ckpt'))
  output, saved = tmp_path / 'fixed.keras', tmp_path / 'sm'
  convert_checkpoint.convert(convert_checkpoint.ConvertConfig(
      model_name='efficientnet-b0', checkpoint=prefix, output=str(output),
      saved_model_dir=str(saved), num_classes=10, small_image=True,
      image_size=32, **TINY))
  assert keras.models.load_model(str(output)).input_shape == (None, 32, 32, 3)
  loaded = tf.saved_model.load(str(saved))
  assert saved_model.read_class_names(str(saved)) is None  # 10 classes
  x = np.random.default_rng(2).uniform(0, 255, (2, 32, 32, 3)).astype(
      np.float32)
  served = loaded.signatures['serving_default'](images=tf.constant(x))
  assert 'class_names' not in served
  np.testing.assert_allclose(served['logits'], source(x, training=False),
                             rtol=1e-4, atol=1e-5)
  empty = loaded.signatures['serving_bytes'](
      image_bytes=tf.constant([], tf.string))
  assert empty['logits'].shape == (0, 10)


@pytest.mark.parametrize('shape', [(70, 90), (33, 31), (32, 32), (8, 200)])
@pytest.mark.parametrize('small_image', [False, True])
def test_serving_view_is_the_training_exports(shape, small_image):
  """The converter's serving view (efficientnet/saved_model.py, which cannot
  import the project's preprocessing) equals the training export's."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from efficientnet import saved_model  # pylint: disable=g-import-not-at-top
  from noisy_student.augment import preprocessing  # pylint: disable=g-import-not-at-top
  image = tf.constant(np.random.default_rng(4).integers(
      0, 256, (*shape, 3), dtype=np.uint8))
  size = 32 if small_image else 24
  np.testing.assert_array_equal(
      saved_model.serving_view(image, size, small_image=small_image),
      preprocessing.preprocess_for_serving(image, size,
                                           small_image=small_image))
