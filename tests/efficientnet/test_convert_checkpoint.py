"""Tests for the efficientnet/convert_checkpoint.py binary."""

import os
import subprocess
import sys

from absl import flags
import keras
import numpy as np
import pytest

from data import errors
import efficientnet
from efficientnet import convert_checkpoint
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
  assert loaded.input_shape == (None, 32, 32, 3)
  assert efficientnet.custom_objects(loaded) == []  # loads without us
  x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype(
      np.float32)
  np.testing.assert_array_equal(loaded(x, training=False),
                                source(x, training=False))


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
