"""Fine-tuning from published weights into another class count, via the binary.

The 1000-class weights are a timm `tf_efficientnet_b0` state dict (random
values, written as `.safetensors` the way the model hubs ship them); a
10-class digits model starts from them with `--init_model_path`.
"""

import pathlib
import re

import numpy as np
import pytest

from efficientnet import timm_weights
from noisy_student.models import loading
from tests import helpers
from tests.efficientnet import timm_state_dicts


@pytest.mark.slow
def test_a_10_class_model_trains_from_a_1000_class_checkpoint(
    digits_dir, tmp_path):
  state = timm_state_dicts.random_state_dict(
      timm_state_dicts.b0_timm_shapes(num_classes=1000), seed=5)
  weights = timm_state_dicts.write_safetensors(tmp_path / 'model.safetensors',
                                               state)
  model_dir = str(tmp_path / 'model')
  command = helpers.main_flags(digits_dir, model_dir, '--mode=train',
                               '--init_model=true',
                               f'--init_model_path={weights}',
                               '--moving_average_decay=0', steps=2)
  # Full-size B0 (the published architecture), not the tiny test scaling.
  command = [a for a in command if not a.startswith(('--width_coefficient',
                                                     '--depth_coefficient'))]
  result = helpers.run(command)
  log = result.stderr
  assert (f'from {weights}; the classifier head_dense was re-initialised '
          '(1000 classes there, 10 here)') in log, log[-3000:]
  # docs/pretrained.md shows this line for the same architecture.
  documented = re.search(r'```text\n(Initialised .*?)\n```',
                         pathlib.Path(helpers.REPO_ROOT, 'docs/pretrained.md')
                         .read_text(), re.S).group(1)
  assert documented.replace('models/ns_b0.keras', str(weights)) in log, (
      documented, log[-3000:])
  restored = re.search(r'Initialised (\d+) weights from', log)
  assert restored, log[-3000:]

  trained = loading.load_model(model_dir)
  assert trained.output_shape[-1] == 10
  targets = timm_weights.timm_variable_map(trained)
  # The body starts from the file: after two small steps the stem kernel
  # still is the file's (a fresh init would be uncorrelated with it).
  stem = targets['conv_stem.weight']
  source = np.transpose(state['conv_stem.weight'], stem.perm)
  now = np.asarray(stem.variable)
  assert np.corrcoef(source.ravel(), now.ravel())[0, 1] > 0.99
  assert np.abs(now - source).max() < 0.05 * np.abs(source).max()
  # Every weight but the classifier's kernel and bias came from the file.
  assert int(restored.group(1)) == len(trained.weights) - 2
  head = targets['classifier.weight']
  assert tuple(head.variable.shape) == (1280, 10)
