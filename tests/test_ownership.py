"""One owner for each fact: the checks that keep it so (docs/architecture.md).

Beside the import-graph test, these read every module's source (no import of
the code) and fail when a second module
* loads model files (only `noisy_student/models/loading.py`, with the TF1
  restore in `models/checkpoints.py` under it),
* decides whether a reference is a `.keras` file, or builds, parses or globs
  shard and prediction file names (only `data/layout.py`),
* declares a recipe flag (a `TrainConfig` / `NoiseConfig` field) by hand
  instead of through `noisy_student/cli/config_flags.py`,
and when importing `data` would run anything but imports.
"""

from __future__ import annotations

import ast
import dataclasses

import pytest

from noisy_student.cli import config_flags
from noisy_student.core import config as config_lib
from tests import conftest

ROOT = conftest.REPO_ROOT
LIBRARY = ('data', 'efficientnet', 'noisy_student')
# Calls that read a model file, and the modules allowed to make them.
# (Calls through `loading.` are the loader's own API, fine anywhere.)
MODEL_READERS = {
    'keras.models.load_model': ('noisy_student/models/loading.py',),
    'keras.saving.load_model': ('noisy_student/models/loading.py',),
    'tf.saved_model.load': ('noisy_student/models/loading.py',),
    'restore_model_weights': ('noisy_student/models/loading.py',
                              'noisy_student/models/checkpoints.py'),
    'load_tf1_checkpoint': ('noisy_student/models/checkpoints.py',),
    'load_timm_weights': ('noisy_student/models/loading.py',),
}
LAYOUT = 'data/layout.py'


def _modules(packages=LIBRARY) -> dict[str, ast.Module]:
  return {str(p.relative_to(ROOT)): ast.parse(p.read_text(), str(p))
          for package in packages for p in sorted((ROOT / package).rglob('*.py'))}


def _dotted(node: ast.AST) -> str:
  if isinstance(node, ast.Attribute):
    return f'{_dotted(node.value)}.{node.attr}'
  if isinstance(node, ast.Name):
    return node.id
  return ''


def _calls(tree: ast.Module):
  for node in ast.walk(tree):
    if isinstance(node, ast.Call):
      yield node, _dotted(node.func)


def _docstrings(tree: ast.Module) -> set[int]:
  """ids of the string constants that are docstrings."""
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                         ast.AsyncFunctionDef)) and node.body:
      first = node.body[0]
      if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        found.add(id(first.value))
  return found


def _help_texts(tree: ast.Module) -> set[int]:
  """ids of the string constants inside flag definitions (help texts)."""
  found = set()
  for call, name in _calls(tree):
    if '.DEFINE_' in f'.{name.rpartition(".")[2]}':
      for node in ast.walk(call):
        if isinstance(node, ast.Constant):
          found.add(id(node))
  return found


@pytest.fixture(scope='module')
def modules():
  return _modules()


def test_only_the_loader_reads_model_files(modules):
  wrong = []
  for path, tree in modules.items():
    if not path.startswith(('noisy_student/', 'data/')):
      continue  # efficientnet/ holds the readers the loader calls
    for _, name in _calls(tree):
      if name.startswith('loading.'):
        continue
      for reader, allowed in MODEL_READERS.items():
        if (name == reader or name.endswith('.' + reader)) and path not in allowed:
          wrong.append(f'{path}: {name}()')
  assert not wrong, '\n'.join(wrong)


def test_only_the_layout_names_files(modules):
  """No '-of-' shard names, 5-digit shard numbers or `.keras` tests elsewhere."""
  wrong = []
  for path, tree in modules.items():
    if path == LAYOUT:
      continue
    skip = _docstrings(tree) | _help_texts(tree)
    for node in ast.walk(tree):
      if isinstance(node, ast.Constant) and isinstance(node.value, str):
        if id(node) not in skip and ('-of-' in node.value
                                     or node.value == '.keras'):
          wrong.append(f'{path}:{node.lineno}: {node.value!r}')
      if (isinstance(node, ast.FormattedValue) and node.format_spec
          and any(isinstance(v, ast.Constant) and v.value == '05d'
                  for v in node.format_spec.values)):
        wrong.append(f'{path}:{node.lineno}: a 5-digit shard number')
  assert not wrong, '\n'.join(wrong)


def _recipe_flag_names() -> set[str]:
  # (`seed` is every binary's own, converters' included: not a recipe flag.)
  fields = [f.name for cls in (config_lib.TrainConfig, config_lib.NoiseConfig)
            for f in dataclasses.fields(cls) if f.name != 'seed']
  return {config_flags.flag_name(f) for f in fields}


def _declared_flags(tree: ast.Module):
  for call, name in _calls(tree):
    if name.rpartition('.')[2].startswith('DEFINE_') and call.args and (
        isinstance(call.args[0], ast.Constant)) and name != 'flags.DEFINE_alias':
      yield call.lineno, call.args[0].value


def test_recipe_flags_come_from_the_dataclasses():
  recipe = _recipe_flag_names()
  prefixes = ('', 'teacher_', 'student_', 'larger_student_')
  wrong = []
  for path, tree in _modules(LIBRARY + ('benchmarks',)).items():
    if path == 'noisy_student/cli/config_flags.py':
      continue
    for line, flag in _declared_flags(tree):
      if any(flag == p + r for p in prefixes for r in recipe):
        wrong.append(f'{path}:{line}: --{flag} declared by hand')
  assert not wrong, '\n'.join(wrong)


def test_importing_data_runs_nothing_but_imports():
  tree = ast.parse((ROOT / 'data' / '__init__.py').read_text())
  body = tree.body[1:] if _docstrings(tree) else tree.body
  assert all(isinstance(node, (ast.Import, ast.ImportFrom)) for node in body)


def test_the_checks_see_what_they_look_for():
  tree = ast.parse("import keras\nflags.DEFINE_integer('randaug_mag', 1, 'x')\n"
                   "keras.models.load_model(p)\nname = f'{i:05d}'\n")
  assert [n for _, n in _calls(tree)][-1] == 'keras.models.load_model'
  assert list(_declared_flags(tree)) == [(2, 'randaug_mag')]
  assert 'randaug_mag' in _recipe_flag_names()
  assert 'train_steps' in _recipe_flag_names()
