"""The modes' guards: a model_dir holding another model is refused before any write."""

import dataclasses
import os

import pytest

from data import layout
from noisy_student.runtime import errors
from noisy_student.drivers import modes
from noisy_student.models import checkpoints
from tests import helpers


def test_check_model_dir_names_every_changed_field(tmp_path):
  config = helpers.tiny_model()
  modes.check_model_dir(str(tmp_path), config)  # empty: nothing to compare
  checkpoints.write_model_config(str(tmp_path), config)
  modes.check_model_dir(str(tmp_path), config)  # same model: resume
  before = (tmp_path / layout.MODEL_CONFIG_FILE).read_bytes()
  changed = dataclasses.replace(config, width_coefficient=0.2, num_classes=7)
  with pytest.raises(errors.ConfigError) as error:
    modes.check_model_dir(str(tmp_path), changed)
  message = str(error.value)
  assert 'width_coefficient: 0.1 -> 0.2' in message
  assert 'num_classes: 10 -> 7' in message and 'model_dir' in message
  assert (tmp_path / layout.MODEL_CONFIG_FILE).read_bytes() == before


def test_train_refuses_another_model_before_writing(digits_dir, tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  cfg = helpers.experiment(str(tmp_path / 'run'), digits_dir, steps=2)
  checkpoints.write_model_config(cfg.model_dir, cfg.model)
  other = dataclasses.replace(cfg, model=dataclasses.replace(
      cfg.model, depth_coefficient=0.2))
  with pytest.raises(errors.ConfigError, match='depth_coefficient'):
    modes.train(other, tf.distribute.get_strategy())
  assert sorted(os.listdir(cfg.model_dir)) == [layout.MODEL_CONFIG_FILE]


def test_interrupted_saves_are_removed_and_nothing_else(tmp_path):
  for name in ('ckpt-5_temp', 'ckpt-10_temp', 'my_temp', 'ckpt-x_temp'):
    (tmp_path / name).mkdir()
    (tmp_path / name / 'part-00000').write_text('half')
  (tmp_path / 'ckpt-5.index').write_text('kept')
  removed = modes.remove_interrupted_saves(str(tmp_path))
  assert sorted(os.path.basename(p) for p in removed) == ['ckpt-10_temp',
                                                          'ckpt-5_temp']
  assert sorted(p.name for p in tmp_path.iterdir()) == [
      'ckpt-5.index', 'ckpt-x_temp', 'my_temp']


@pytest.mark.parametrize('value', [-1, 0, 2.5, '5', True])
def test_train_refuses_an_evaluation_cadence_that_is_not_a_step_count(
    digits_dir, tmp_path, value):
  """evaluate_every=-1 used to evaluate step 0 forever; a string or a float
  failed after files were written. Refused first, nothing written."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  config = helpers.experiment(str(tmp_path / 'model'), digits_dir, steps=2)
  with pytest.raises(errors.ConfigError, match=r'evaluate_every='):
    modes.train(config, tf.distribute.get_strategy(), evaluate_every=value)
  assert not (tmp_path / 'model').exists()
