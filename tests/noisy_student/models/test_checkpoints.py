"""Checkpoint resolution, saved architectures and weight restoring (ours and TF1)."""

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf

import efficientnet
from noisy_student.runtime import errors
from noisy_student.models import backbones
from noisy_student.models import checkpoints
from noisy_student.models import ema as ema_lib
from tests import helpers

pytestmark = pytest.mark.usefixtures('fresh_keras_session')


def _save_ours(model_dir, model, steps=(3, 7), ema=True):
  """A model_dir as the trainer writes it: model (+ EMA shadows) per step."""
  config = helpers.tiny_model()
  checkpoints.write_model_config(model_dir, config)
  trackables = {'model': model}
  if ema:
    trackables['ema'] = ema_lib.ExponentialMovingAverage(
        ema_lib.model_ema_weights(model), 0.5)
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(**trackables),
                                       model_dir, max_to_keep=5)
  for step in steps:
    manager.save(checkpoint_number=step)
  return trackables.get('ema')


def test_resolve_takes_a_directory_latest_or_a_prefix(tmp_path):
  model = backbones.build_model(helpers.tiny_model())
  _save_ours(str(tmp_path), model)
  assert checkpoints.resolve_checkpoint(str(tmp_path)).endswith('ckpt-7')
  prefix = str(tmp_path / 'ckpt-3')
  assert checkpoints.resolve_checkpoint(prefix) == prefix
  for missing in (str(tmp_path / 'ckpt-9'), str(tmp_path / 'empty')):
    os.makedirs(str(tmp_path / 'empty'), exist_ok=True)
    with pytest.raises(errors.CheckpointError, match=os.path.basename(missing)):
      checkpoints.resolve_checkpoint(missing)


def test_model_config_round_trip_and_absence(tmp_path):
  config = dataclasses.replace(helpers.tiny_model(), mean_rgb=(1.0, 2.0, 3.0))
  checkpoints.write_model_config(str(tmp_path), config)
  assert checkpoints.read_model_config(str(tmp_path)) == config
  assert checkpoints.read_model_config(str(tmp_path / 'ckpt-1')) == config
  assert checkpoints.read_model_config(str(tmp_path / 'elsewhere/x')) is None


def test_restore_uses_ema_shadows_unless_asked_not_to(tmp_path):
  model = backbones.build_model(helpers.tiny_model())
  ema = _save_ours(str(tmp_path), model, steps=())
  for shadow in ema.shadows:
    shadow.assign(tf.ones_like(shadow) * 0.25)
  tf.train.CheckpointManager(tf.train.Checkpoint(model=model, ema=ema),
                             str(tmp_path), 3).save(checkpoint_number=1)
  fresh = backbones.build_model(helpers.tiny_model())
  prefix = checkpoints.restore_model_weights(fresh, str(tmp_path))
  assert prefix.endswith('ckpt-1')
  np.testing.assert_allclose(fresh.trainable_weights[0].numpy(), 0.25)
  raw = backbones.build_model(helpers.tiny_model())
  checkpoints.restore_model_weights(raw, str(tmp_path), use_ema=False)
  np.testing.assert_array_equal(raw.trainable_weights[0].numpy(),
                                model.trainable_weights[0].numpy())
  assert checkpoints.is_object_based(prefix)


def test_restore_reads_original_tf1_checkpoints(tmp_path):
  original = efficientnet.build_model('efficientnet-b0', num_classes=10,
                                      image_size=32, small_image=True,
                                      **helpers.TINY_OVERRIDES)
  prefix = efficientnet.save_tf1_checkpoint(original, str(tmp_path / 'm.ckpt'))
  assert not checkpoints.is_object_based(prefix)
  model = backbones.build_model(helpers.tiny_model())
  checkpoints.restore_model_weights(model, prefix)
  for a, b in zip(model.weights, original.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_a_checkpoint_of_another_architecture_is_refused_by_name(tmp_path):
  _save_ours(str(tmp_path), backbones.build_model(helpers.tiny_model()))
  wider = backbones.build_model(helpers.tiny_model(width_coefficient=0.2))
  with pytest.raises(errors.CheckpointError, match='ckpt-7: does not fit'):
    checkpoints.restore_model_weights(wider, str(tmp_path))


@pytest.mark.parametrize('part', ['index', 'data-00000-of-00001'])
def test_an_unreadable_latest_checkpoint_falls_back_to_the_previous(
    tmp_path, part, caplog):
  model = backbones.build_model(helpers.tiny_model())
  _save_ours(str(tmp_path), model, ema=False)
  broken = tmp_path / f'ckpt-7.{part}'
  broken.write_bytes(broken.read_bytes()[:len(broken.read_bytes()) // 2])
  fresh = backbones.build_model(helpers.tiny_model())
  with caplog.at_level('WARNING'):
    prefix = checkpoints.restore_model_weights(fresh, str(tmp_path))
  assert prefix.endswith('ckpt-3')
  assert 'ckpt-7 is unreadable' in caplog.text and 'ckpt-3' in caplog.text
  np.testing.assert_array_equal(fresh.weights[0].numpy(),
                                model.weights[0].numpy())
  # The only checkpoint broken: one error naming it.
  with pytest.raises(errors.CheckpointError, match='ckpt-7: unreadable'):
    checkpoints.restore_model_weights(fresh, str(tmp_path / 'ckpt-7'))
