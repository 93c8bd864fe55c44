"""Shared test fixtures and settings.

Tests run on CPU with small models. `SHARED_DIR` points to the optional
`../shared` folder (real datasets/photos); tests that need it skip cleanly when
it is absent, as it is in a user's fresh clone.
"""

import os
import pathlib

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

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
