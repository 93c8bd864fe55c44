"""TensorFlow's start-up lines are hidden (noisy_student/runtime/quiet.py)."""

import ast
import logging
import os
import pathlib
import subprocess
import sys
import types
from typing import Optional

import pytest

from noisy_student.runtime import quiet
from tests import conftest
from tests import helpers

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

# The Python API is an entry point: importing it installs the filter.
_SNIPPET = ('import noisy_student.api, tensorflow as tf; '
            'tf.config.list_physical_devices(); print(int(tf.constant(2)))')


@pytest.mark.parametrize('line', STARTUP_LINES)
def test_start_up_lines_are_banners(line):
  assert quiet.is_banner(line)


def test_other_lines_are_kept():
  assert not quiet.is_banner('E0000 ... Out of memory while allocating')
  assert not quiet.is_banner('main: error: --train_steps must be in [1, inf)')


def _record(path: str, level: int) -> logging.LogRecord:
  return logging.LogRecord('absl', level, path, 1, 'a line', None, None)


def test_library_info_records_are_dropped_but_their_warnings_kept(
    tmp_path, monkeypatch):
  library = tmp_path / 'some_library'
  monkeypatch.setattr(quiet, 'LIBRARIES', ('some_library',))
  monkeypatch.setitem(sys.modules, 'some_library',
                      types.SimpleNamespace(__path__=[str(library)]))
  keep = quiet.LibraryInfoFilter().filter
  assert not keep(_record(str(library / 'saved_model' / 'save.py'),
                          logging.INFO))
  assert keep(_record(str(library / 'save.py'), logging.WARNING))
  assert keep(_record(str(tmp_path / 'some_library_not' / 'x.py'),
                      logging.INFO))
  assert keep(_record(str(conftest.REPO_ROOT / 'noisy_student' / 'main.py'),
                      logging.INFO))


@pytest.mark.slow
def test_export_prints_no_library_info_lines(digits_dir, tmp_path):
  """main --mode=export of a tiny model: TensorFlow's INFO lines (the
  SavedModel signatures' input names, kilobytes each; the checkpoint's
  sharding time) stay out of the log, our lines stay in."""
  model_dir = str(tmp_path / 'model')
  helpers.run(helpers.main_flags(digits_dir, model_dir, '--mode=train',
                                 steps=1))
  result = helpers.run(helpers.main_flags(digits_dir, model_dir,
                                          '--mode=export', steps=1))
  lines = result.stderr.splitlines()
  assert len(lines) <= 5, result.stderr
  assert max(map(len, lines), default=0) < 500, result.stderr
  assert 'saved_model' in result.stdout


def _run(python: str, snippet: str = _SNIPPET,
         **env) -> subprocess.CompletedProcess:
  full_env = {k: v for k, v in os.environ.items()
              if k not in ('TF_CPP_MIN_LOG_LEVEL', quiet.VERBOSE_ENV)}
  full_env.update(PYTHONPATH=str(conftest.REPO_ROOT), **env)
  return subprocess.run([python, '-c', snippet], env=full_env,
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


def test_importing_the_model_zoo_installs_nothing_and_loads_no_data():
  """`import efficientnet` is the model zoo alone: no `data` package, no
  import hook, no environment change (the entry points install the filter)."""
  snippet = ('import os, sys; import efficientnet; '
             'print(sorted(m for m in sys.modules if m == "data" '
             'or m.startswith("data."))); '
             'print([type(f).__name__ for f in sys.meta_path '
             'if "TensorFlow" in type(f).__name__]); '
             'print(os.environ.get("TF_CPP_MIN_LOG_LEVEL"))')
  result = _run(sys.executable, snippet)
  assert result.returncode == 0, result.stderr
  assert result.stdout.split('\n')[:3] == ['[]', '[]', 'None'], result.stdout


# Imports that load TensorFlow (or may): none may come before a binary's
# `from noisy_student.runtime import entry`, which installs the filter.
def _loads_tensorflow(module: str) -> bool:
  top = module.split('.')[0]
  if top in ('tensorflow', 'keras', 'tensorflow_datasets', 'data',
             'efficientnet'):
    return True
  return top == 'noisy_student' and not module.startswith(
      'noisy_student.runtime')


def _binaries():
  for package in ('data', 'efficientnet', 'noisy_student'):
    for path in sorted((conftest.REPO_ROOT / package).rglob('*.py')):
      tree = ast.parse(path.read_text())
      if any(isinstance(node, ast.FunctionDef) and node.name == 'run'
             and 'entry.run(' in ast.unparse(node) for node in tree.body):
        yield path


def _tensorflow_imports_before_filter(path: pathlib.Path,
                                     quiet_call_counts: bool) -> Optional[list[str]]:
  """The TensorFlow-loading top-level imports of `path` that come before
  `from noisy_student.runtime import entry` (or, with `quiet_call_counts`, a
  `quiet.install()` call); None when neither comes at all."""
  before = []
  for node in ast.parse(path.read_text()).body:
    if (quiet_call_counts and isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and ast.unparse(node.value.func) == 'quiet.install'):
      return before
    if isinstance(node, ast.ImportFrom) and node.module:
      names = [f'{node.module}.{a.name}' for a in node.names]
    elif isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    else:
      continue
    if 'noisy_student.runtime.entry' in names:
      return before
    before += [n for n in names
               if _loads_tensorflow(n) or n.startswith('benchmarks')]
  return None if not before or not quiet_call_counts else before


def _entry_comes_first(path: pathlib.Path) -> list[str]:
  before = _tensorflow_imports_before_filter(path, quiet_call_counts=False)
  return (['(no `from noisy_student.runtime import entry`)'] if before is None
          else before)


def test_every_binary_imports_its_entry_before_tensorflow():
  binaries = list(_binaries())
  assert len(binaries) >= 14
  wrong = {str(p.relative_to(conftest.REPO_ROOT)): _entry_comes_first(p)
           for p in binaries}
  wrong = {path: early for path, early in wrong.items() if early}
  assert not wrong, wrong


def test_a_binary_that_loads_tensorflow_prints_no_banner():
  snippet = ('import sys; sys.argv = ["x"]; '
             'import noisy_student.main, tensorflow as tf; '
             'tf.config.list_physical_devices(); print(int(tf.constant(2)))')
  result = _run(sys.executable, snippet)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == '2'
  assert result.stderr == '', result.stderr


def _scripts():
  """The benchmark and recipe scripts run as programs (not through entry)."""
  for folder in ('benchmarks', 'local_scripts'):
    for path in sorted((conftest.REPO_ROOT / folder).rglob('*.py')):
      if "__name__ == '__main__'" in path.read_text():
        yield path


def _quiet_comes_first(path: pathlib.Path) -> list[str]:
  """TensorFlow-loading imports before `quiet.install()` (or entry's import);
  empty when the script loads nothing of TensorFlow at its top level."""
  return _tensorflow_imports_before_filter(path, quiet_call_counts=True) or []


def test_every_script_filters_the_banner_before_tensorflow():
  scripts = list(_scripts())
  assert len(scripts) >= 5
  wrong = {str(p.relative_to(conftest.REPO_ROOT)): _quiet_comes_first(p)
           for p in scripts}
  wrong = {path: early for path, early in wrong.items() if early}
  assert not wrong, wrong
