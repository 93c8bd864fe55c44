"""TensorFlow without its start-up banner.

TensorFlow's C++ runtime prints a few lines while it loads ("All log messages
before absl::InitializeLog() is called are written to STDERR", "oneDNN custom
operations are on ...", CPU-instruction and CUDA-factory notes) before
`TF_CPP_MIN_LOG_LEVEL` takes effect, so no environment variable silences
them. `install()` (called by the entry points: `runtime/entry.py`, which every
binary imports first, `noisy_student.api` and the Beam workers' module; not
by importing `noisy_student`, `data` or `efficientnet`) puts a one-shot import hook in front of `tensorflow`: whenever it is
first imported, by our code or by Keras, file descriptor 2 goes to a temporary
file for the duration of the import, and every captured line except those
banners is replayed. Nothing is imported until then, so processes that never
use TensorFlow (image-corruption workers) stay light.

`install()` also keeps the libraries' INFO lines (`LIBRARIES`) out of a
binary's log, which shows INFO: they are for the libraries' developers (an
export's SavedModel signatures list every input name, kilobytes per line; a
checkpoint logs its sharding time; Beam logs every worker channel). Their
own Python loggers show WARNING and above, and absl's logger (which
TensorFlow also logs through) drops INFO records from the libraries'
files. Their warnings and errors still show.

`--verbose` on a command line, or NOISY_STUDENT_VERBOSE=1, keeps all of
these lines (and TensorFlow's C++ INFO logs); `--verbose` also sets the
variable, so processes a binary starts (Beam's workers) keep them too.
Standard library only.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys
import tempfile
from typing import Iterator

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
    # The `tensorflow` wheel (CUDA-capable) on a machine without a GPU driver:
    'Could not find cuda drivers on your machine',
    'failed call to cuInit',
    'Cannot dlopen some GPU libraries',
)


# Packages whose INFO lines are for their developers (their Python loggers
# have these names); a binary shows their WARNING and above.
LIBRARIES = ('tensorflow', 'apache_beam')


def verbose() -> bool:
  """True when the user asked for TensorFlow's own start-up lines."""
  if os.environ.get(VERBOSE_ENV, '').lower() in ('1', 'true', 'yes'):
    return True
  return any(arg in ('--verbose', '--verbose=true', '--verbose=1')
             for arg in sys.argv[1:])


def is_banner(line: str) -> bool:
  return any(banner in line for banner in BANNERS)


@contextlib.contextmanager
def banners_filtered() -> Iterator[None]:
  """Sends fd 2 to a temporary file; replays its lines but the banners."""
  try:
    sys.stderr.flush()
    real_stderr = os.dup(2)
  except (OSError, ValueError, AttributeError):  # no fd 2 (some notebooks)
    yield
    return
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(real_stderr, 2)
      os.close(real_stderr)
      captured.seek(0)
      text = captured.read().decode('utf-8', errors='replace')
      kept = [line for line in text.splitlines()
              if line and not is_banner(line)]
      if kept:
        sys.stderr.write('\n'.join(kept) + '\n')
        sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
  """Runs another loader's `exec_module` with the banners filtered."""

  def __init__(self, inner):
    self._inner = inner

  def create_module(self, spec):
    return self._inner.create_module(spec)

  def exec_module(self, module):
    with banners_filtered():
      self._inner.exec_module(module)
      # The CUDA-capable wheel reports a missing GPU driver when the devices
      # are first listed, not on import: list them here, inside the filter
      # (physical devices only; logical devices can still be configured).
      try:
        module.config.list_physical_devices()
      except Exception:  # pylint: disable=broad-except
        pass

  def __getattr__(self, name):  # is_package, get_resource_reader, ...
    return getattr(self._inner, name)


class _TensorFlowHook(importlib.abc.MetaPathFinder):
  """Wraps the loader of `tensorflow` the first time it is imported."""

  def find_spec(self, name, path=None, target=None):
    del path, target
    if name != 'tensorflow':
      return None
    sys.meta_path.remove(self)  # one shot, and no recursion below
    spec = importlib.util.find_spec(name)
    if spec is not None and spec.loader is not None:
      spec.loader = _QuietLoader(spec.loader)
    return spec


def _library_folders() -> tuple[str, ...]:
  """The folders of the `LIBRARIES` imported so far (with a separator)."""
  folders = []
  for name in LIBRARIES:
    module = sys.modules.get(name)
    for folder in getattr(module, '__path__', None) or ():
      folders.append(os.path.join(os.path.realpath(folder), ''))
  return tuple(folders)


class LibraryInfoFilter(logging.Filter):
  """Drops records below WARNING logged from a file of the `LIBRARIES`
  (absl's logger: TensorFlow's modules log through absl as well)."""

  def filter(self, record: logging.LogRecord) -> bool:
    if record.levelno >= logging.WARNING:
      return True
    path = os.path.realpath(record.pathname or '')
    return not path.startswith(_library_folders())


def library_logs_to_warnings() -> None:
  """The `LIBRARIES`' loggers show WARNING and above (those no one set a
  level on), and absl's logger drops their INFO records."""
  for name in LIBRARIES:
    logger = logging.getLogger(name)
    if logger.level == logging.NOTSET:
      logger.setLevel(logging.WARNING)
  absl_logger = logging.getLogger('absl')
  if not any(isinstance(f, LibraryInfoFilter) for f in absl_logger.filters):
    absl_logger.addFilter(LibraryInfoFilter())


def install() -> None:
  """Filters TensorFlow's banner from its first import on and the libraries'
  INFO logs (unless verbose)."""
  if verbose():
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '0')
    os.environ.setdefault(VERBOSE_ENV, '1')
    return
  library_logs_to_warnings()
  if 'tensorflow' in sys.modules or any(
      isinstance(f, _TensorFlowHook) for f in sys.meta_path):
    return
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  sys.meta_path.insert(0, _TensorFlowHook())
