"""TensorFlow without its start-up banner.

TensorFlow's C++ runtime prints a few lines while it loads ("All log messages
before absl::InitializeLog() is called are written to STDERR", "oneDNN custom
operations are on ...", CPU-instruction and CUDA-factory notes) before
`TF_CPP_MIN_LOG_LEVEL` takes effect, so no environment variable silences
them. `import_tensorflow()` imports TensorFlow with file descriptor 2 sent to
a temporary file, then replays every captured line except those banners.
Every package of the project calls it on import, so no command prints them;
`--verbose` on a command line, or NOISY_STUDENT_VERBOSE=1, keeps them (and
TensorFlow's INFO logs). Standard library only.
"""

from __future__ import annotations

import os
import sys
import tempfile

VERBOSE_ENV = 'NOISY_STUDENT_VERBOSE'
# Start-up lines of TensorFlow's runtime that carry no information for a user.
BANNERS = (
    'All log messages before absl::InitializeLog() is called',
    'oneDNN custom operations are on',
    'This TensorFlow binary is optimized to use available CPU instructions',
    'To enable the following instructions',
    'Unable to register cuDNN factory',
    'Unable to register cuFFT factory',
    'Unable to register cuBLAS factory',
    'computation placer already registered',
    'TF-TRT Warning: Could not find TensorRT',
)


def verbose() -> bool:
  """True when the user asked for TensorFlow's own start-up lines."""
  if os.environ.get(VERBOSE_ENV, '').lower() in ('1', 'true', 'yes'):
    return True
  return any(arg in ('--verbose', '--verbose=true', '--verbose=1')
             for arg in sys.argv[1:])


def is_banner(line: str) -> bool:
  return any(banner in line for banner in BANNERS)


def import_tensorflow() -> None:
  """Imports TensorFlow (once), dropping its banner lines from stderr."""
  if 'tensorflow' in sys.modules:
    return
  if verbose():
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '0')
    import tensorflow  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    return
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  try:
    sys.stderr.flush()
    real_stderr = os.dup(2)
  except (OSError, ValueError, AttributeError):  # no fd 2 (some notebooks)
    import tensorflow  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    return
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      import tensorflow  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    finally:
      sys.stderr.flush()
      os.dup2(real_stderr, 2)
      os.close(real_stderr)
      captured.seek(0)
      text = captured.read().decode('utf-8', errors='replace')
  kept = [line for line in text.splitlines() if line and not is_banner(line)]
  if kept:
    sys.stderr.write('\n'.join(kept) + '\n')
    sys.stderr.flush()
