"""The import graph: layers point one way, and no module imports itself back.

Reads every module's imports (top-level and function-local) from its source,
so it needs neither TensorFlow nor an import of the code. The layers, from the
bottom (docs/architecture.md):

  noisy_student.runtime < efficientnet (the model zoo) < data
  < efficientnet's converter binary < noisy_student.core < noisy_student.augment
  < noisy_student.models < {training, pseudo, robust} < {drivers, api}
  < noisy_student.cli < the binaries (noisy_student.<binary>) and benchmarks
"""

from __future__ import annotations

import ast
import pathlib

import pytest

from tests import conftest

PACKAGES = ('data', 'efficientnet', 'noisy_student', 'benchmarks')
LAYERS = (
    ('noisy_student.runtime',),  # errors, the binaries' entry, progress, start-up
    ('efficientnet',),  # the model zoo: runtime's errors and temp names only
    ('data',),
    # The zoo's converter binary writes with data's writers.
    ('efficientnet.convert_checkpoint', 'efficientnet.saved_model'),
    ('noisy_student.core',),
    ('noisy_student.augment',),
    ('noisy_student.models',),
    ('noisy_student.training', 'noisy_student.pseudo', 'noisy_student.robust',
     'noisy_student.analysis'),
    ('noisy_student.drivers', 'noisy_student.api'),
    ('noisy_student.cli',),
    ('noisy_student', 'benchmarks'),  # the binaries and benchmark scripts
)


def _module_name(path: pathlib.Path) -> str:
  parts = list(path.relative_to(conftest.REPO_ROOT).with_suffix('').parts)
  if parts[-1] == '__init__':
    parts.pop()
  return '.'.join(parts)


def _modules() -> dict[str, pathlib.Path]:
  return {_module_name(p): p for package in PACKAGES
          for p in sorted((conftest.REPO_ROOT / package).rglob('*.py'))}


def _imports(path: pathlib.Path, modules: set[str]) -> set[str]:
  """Project modules imported anywhere in `path` (function bodies included)."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text(), str(path))):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      names = [f'{node.module}.{alias.name}' for alias in node.names]
      names.append(node.module)
    else:
      continue
    for name in names:
      while name and name not in modules:
        name = name.rpartition('.')[0]
      if name:
        found.add(name)
  return found


def _layer(module: str) -> int:
  best, best_length = None, -1
  for rank, prefixes in enumerate(LAYERS):
    for prefix in prefixes:
      if (module == prefix or module.startswith(prefix + '.')) and len(prefix) > best_length:
        best, best_length = rank, len(prefix)
  assert best is not None, f'{module} is in no layer; add it to LAYERS'
  return best


@pytest.fixture(scope='module')
def graph() -> dict[str, set[str]]:
  modules = _modules()
  return {name: _imports(path, set(modules)) - {name}
          for name, path in modules.items()}


def test_every_module_is_in_a_layer(graph):
  for module in graph:
    _layer(module)


def test_no_import_points_up_a_layer(graph):
  upward = [f'{m} (layer {_layer(m)}) imports {d} (layer {_layer(d)})'
            for m, deps in sorted(graph.items()) for d in sorted(deps)
            if _layer(d) > _layer(m)]
  assert not upward, '\n'.join(upward)


def test_no_import_cycle(graph):
  # Package __init__ files importing their own submodules are not cycles.
  edges = {m: {d for d in deps if not m.startswith(d + '.')}
           for m, deps in graph.items()}
  state, stack, cycles = {}, [], []

  def visit(node):
    state[node] = 'open'
    stack.append(node)
    for dep in sorted(edges.get(node, ())):
      if state.get(dep) == 'open':
        cycles.append(' -> '.join(stack[stack.index(dep):] + [dep]))
      elif dep not in state:
        visit(dep)
    stack.pop()
    state[node] = 'done'

  for node in sorted(edges):
    if node not in state:
      visit(node)
  assert not cycles, '\n'.join(cycles)


def test_the_checker_sees_function_local_imports(tmp_path):
  source = tmp_path / 'm.py'
  source.write_text('def f():\n  from data import records\n  import efficientnet\n')
  assert _imports(source, {'data', 'data.records', 'efficientnet'}) == {
      'data', 'data.records', 'efficientnet'}


def test_the_job_drivers_and_their_binaries_stay_small():
  """The stage store, the rounds and the ablation library are separate
  modules of at most ~400 lines, as is every driver; ablate and iterate are
  thin binaries, main about 400 lines."""
  def lines(name):
    return len((conftest.REPO_ROOT / name).read_text().splitlines())
  drivers = sorted((conftest.REPO_ROOT / 'noisy_student' / 'drivers').glob('*.py'))
  assert len(drivers) > 5
  for path in drivers:
    assert len(path.read_text().splitlines()) <= 400, path.name
  for name in ('ablate', 'iterate'):
    assert lines(f'noisy_student/{name}.py') <= 250, name
  assert lines('noisy_student/main.py') <= 410
