"""TensorFlow's start-up lines are hidden (noisy_student/runtime/quiet.py)."""

import os
import subprocess
import sys

import pytest

from noisy_student.runtime import quiet
from tests import conftest

# Lines seen on 2026-12-05 with TensorFlow 2.21 wheels on a machine without a
# GPU (`tensorflow-cpu`, and the CUDA-capable `tensorflow` that pip install .
# brings).
STARTUP_LINES = [
    'WARNING: All log messages before absl::InitializeLog() is called are '
    'written to STDERR',
    'I0000 00:00:1796475256.702914   32466 port.cc:153] oneDNN custom '
    'operations are on. You may see slightly different numerical results',
    'I0000 00:00:1796475256.703622   32466 cudart_stub.cc:31] Could not find '
    'cuda drivers on your machine, GPU will not be used.',
    'E0000 00:00:1796475264.417229   32466 cuda_platform.cc:52] failed call to '
    'cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)',
]

_SNIPPET = ('import noisy_student, tensorflow as tf; '
            'tf.config.list_physical_devices(); print(int(tf.constant(2)))')


@pytest.mark.parametrize('line', STARTUP_LINES)
def test_start_up_lines_are_banners(line):
  assert quiet.is_banner(line)


def test_other_lines_are_kept():
  assert not quiet.is_banner('E0000 ... Out of memory while allocating')
  assert not quiet.is_banner('main: error: --train_steps must be in [1, inf)')


def _run(python: str, **env) -> subprocess.CompletedProcess:
  full_env = {k: v for k, v in os.environ.items()
              if k not in ('TF_CPP_MIN_LOG_LEVEL', quiet.VERBOSE_ENV)}
  full_env.update(PYTHONPATH=str(conftest.REPO_ROOT), **env)
  return subprocess.run([python, '-c', _SNIPPET], env=full_env,
                        capture_output=True, text=True, timeout=600)


def test_importing_the_project_then_tensorflow_prints_nothing_else():
  result = _run(sys.executable)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == '2'
  assert result.stderr == '', result.stderr
  verbose = _run(sys.executable, **{quiet.VERBOSE_ENV: '1'})
  assert verbose.returncode == 0 and 'oneDNN' in verbose.stderr


@pytest.mark.skipif(not os.environ.get('NOISY_STUDENT_FULL_TF_PYTHON'),
                    reason='needs a Python with the CUDA-capable `tensorflow` '
                    'wheel (NOISY_STUDENT_FULL_TF_PYTHON); CI has tensorflow-cpu')
def test_the_cuda_capable_wheel_is_quiet_too():
  result = _run(os.environ['NOISY_STUDENT_FULL_TF_PYTHON'])
  assert result.returncode == 0, result.stderr
  assert result.stderr == '', result.stderr
