"""Small builders shared by the tests: a tiny EfficientNet, digits data, references."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np

from noisy_student.core import config as config_lib
from noisy_student.core import datasets
from tests import launcher

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = datasets.get_builtin('digits')

# A real EfficientNet-B0 small-image network scaled down (7 blocks, 8-16
# channels) so that a training step takes milliseconds on a CPU.
TINY_OVERRIDES = dict(width_coefficient=0.1, depth_coefficient=0.1)


def tiny_model(**changes) -> config_lib.ModelConfig:
  base = config_lib.ModelConfig(
      model_name='efficientnet-b0', num_classes=10, image_size=32,
      small_image=True, mean_rgb=DIGITS.mean_rgb, stddev_rgb=DIGITS.stddev_rgb,
      dropout_rate=0.1, stochastic_depth_rate=0.2, **TINY_OVERRIDES)
  return dataclasses.replace(base, **changes)


def digits_data(directory: str) -> str:
  """Writes the bundled digits TFRecords (idempotent); returns the folder."""
  from data import prepare_digits  # pylint: disable=g-import-not-at-top
  prepare_digits.prepare_digits(directory)
  return directory


def experiment(model_dir: str, data_dir: str, *, steps: int = 20,
               batch: int = 16, model=None, data_changes=None,
               train_changes=None, **changes) -> config_lib.ExperimentConfig:
  """A small digits experiment; `*_changes` replace fields of the sub-configs."""
  model = model or tiny_model()
  data = config_lib.DataConfig(
      label_data_dir=data_dir, image_size=32, small_image=True, flip=False,
      num_classes=10, deterministic=True, use_cache=True, shuffle_buffer=512)
  if data_changes:
    data = dataclasses.replace(data, **data_changes)
  train = config_lib.TrainConfig(
      train_steps=steps, train_last_step_num=steps, train_batch_size=batch,
      eval_batch_size=64, num_train_images=DIGITS.num_train_images,
      iterations_per_loop=10, save_checkpoints_steps=10,
      base_learning_rate=0.064, weight_decay=1e-5, moving_average_decay=0.99)
  if train_changes:
    train = dataclasses.replace(train, **train_changes)
  return config_lib.ExperimentConfig(model_dir=model_dir, model=model,
                                     data=data, train=train, **changes)


def main_flags(data_dir: str, model_dir: str, *extra: str, steps: int = 20):
  """Command line of `python -m noisy_student.main` for a tiny digits run."""
  return [
      sys.executable, '-m', 'noisy_student.main', '--task_name=digits',
      '--use_tpu=false', '--use_bfloat16=false',
      f'--label_data_dir={data_dir}', f'--model_dir={model_dir}',
      f'--train_steps={steps}', '--train_batch_size=16',
      '--iterations_per_loop=5', '--save_checkpoints_steps=5',
      '--base_learning_rate=0.064', '--moving_average_decay=0.99',
      '--width_coefficient=0.1', '--depth_coefficient=0.1',
      '--eval_batch_size=64', *extra]


def _launchable(cmd, cwd: str) -> bool:
  """`python -m <project binary>` from a folder that does not shadow the
  project's packages (tests/launcher.py runs those)."""
  if (len(cmd) < 3 or cmd[0] != sys.executable or cmd[1] != '-m'
      or not launcher.is_project_module(cmd[2])):
    return False
  return os.path.samefile(cwd, REPO_ROOT) or not any(
      os.path.exists(os.path.join(cwd, name))
      for name in launcher.PROJECT_PACKAGES)


def run(cmd, timeout=600, env=None, check=True, cwd: str = REPO_ROOT,
        fresh: bool = False) -> subprocess.CompletedProcess:
  """Runs a command (from the repo root by default); on failure the error
  shows its output.

  `python -m <project module>` runs through tests/launcher.py's server (no
  TensorFlow import per command), and shell scripts get its shims (their
  `$PYTHON`), unless `fresh`: then a new interpreter, for tests of the
  start-up itself.
  """
  full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=REPO_ROOT)
  full_env.update(env or {})
  if not fresh and _launchable(cmd, cwd):
    result = launcher.run(cmd[2], cmd[3:], env=full_env, cwd=cwd,
                          timeout=timeout)
  else:
    if not fresh and cmd[0] == 'bash' and 'PYTHON' not in (env or {}):
      full_env = launcher.shim_env(full_env)
    result = subprocess.run(cmd, cwd=cwd, env=full_env, timeout=timeout,
                            capture_output=True, text=True)
  if check and result.returncode != 0:
    raise AssertionError(f'{cmd} failed ({result.returncode}):\n'
                         f'{result.stdout[-3000:]}\n{result.stderr[-6000:]}')
  return result


def tf1_bicubic_reference(image: np.ndarray, size: int) -> np.ndarray:
  """numpy TF1 resize_bicubic (no half-pixel centres, Keys a=-0.75, 1/1024 lut).

  in = out * in_size / out_size; 4 taps at floor(in) - 1 .. + 2, clamped.
  """
  a, table = -0.75, 1024

  def near(x):
    return ((a + 2) * x - (a + 3)) * x * x + 1

  def far(x):
    x = x + 1.0
    return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

  def taps(in_size, out_size):
    scale = np.float32(in_size) / np.float32(out_size)
    index = np.zeros((out_size, 4), np.int64)
    weight = np.zeros((out_size, 4))
    for out in range(out_size):
      loc = np.float32(out) * scale
      base = int(np.floor(loc))
      t = int(np.rint((loc - base) * table)) / table
      weight[out] = [far(t), near(t), near(1 - t), far(1 - t)]
      index[out] = np.clip(np.arange(base - 1, base + 3), 0, in_size - 1)
    return index, weight

  row_index, row_weight = taps(image.shape[0], size)
  col_index, col_weight = taps(image.shape[1], size)
  pixels = image.astype(np.float64)
  rows = np.einsum('ok,okwc->owc', row_weight, pixels[row_index])
  return np.einsum('ok,hokc->hoc', col_weight, rows[:, col_index])


def tree_hashes(root) -> dict:
  """{relative path: sha256} of every file under `root` ({} when absent)."""
  import hashlib  # pylint: disable=g-import-not-at-top
  out = {}
  for folder, _, names in os.walk(root):
    for name in names:
      path = os.path.join(folder, name)
      with open(path, 'rb') as f:
        out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
  return out
