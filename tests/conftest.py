"""Shared test fixtures and settings.

Tests run on CPU with small models. `SHARED_DIR` points to the optional
`../shared` folder (real datasets/photos); tests that need it skip cleanly when
it is absent, as it is in a user's fresh clone.
"""

import os
import pathlib
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# Keras walks the config of EfficientNet-L2 recursively; under pytest-xdist the
# worker's own frames leave too little of Python's default 1,000 for it.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))

import pytest  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# ../shared next to the checkout; NOISY_STUDENT_SHARED_DIR overrides it (e.g.
# for a git worktree that lives elsewhere).
SHARED_DIR = pathlib.Path(os.environ.get('NOISY_STUDENT_SHARED_DIR',
                                         REPO_ROOT.parent / 'shared'))


def shared_path(*parts: str) -> pathlib.Path:
  """Path under ../shared, or pytest.skip when it is not there."""
  path = SHARED_DIR.joinpath(*parts)
  if not path.exists():
    pytest.skip(f'{path} is not available (only present in the dev workspace)')
  return path


@pytest.fixture(scope='session')
def digits_dir(tmp_path_factory) -> str:
  """The bundled digits as TFRecords (data/prepare_digits.py), written once."""
  from data import prepare_digits  # pylint: disable=g-import-not-at-top
  directory = str(tmp_path_factory.mktemp('digits'))
  prepare_digits.prepare_digits(directory)
  return directory


@pytest.fixture(scope='module')
def fresh_keras_session():
  """Frees the Keras graph and memory after a module that builds many models."""
  yield
  import gc  # pylint: disable=g-import-not-at-top

  import keras  # pylint: disable=g-import-not-at-top
  keras.backend.clear_session()
  gc.collect()

