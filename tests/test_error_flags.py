"""Errors name only flags the binary has.

A binary prints a library error as `<binary>: error: <message>`
(docs/errors.md), so every `--flag` in a message that can reach a binary must
be one of its flags, or be qualified by the binary it belongs to
(`run the teacher (main --mode=predict)`). Statically: for each binary of
pyproject.toml's [project.scripts], the project modules it imports (the
closure of its imports over noisy_student/, data/ and efficientnet/; of
another binary's module only the functions it uses) are read without being
imported; every string of a `raise`, an error constructor, `fail(...)` or a
log warning/error call, of the strings those name (a local or module
constant, a parameter's default) and every flag-shaped argument
(`flag='--work_dir'`) is searched for `--name`. Config fields named through
`errors.field_name` read as the binary's own flags, or as the field where the
binary has no such flag (`entry.defined_flag_namer`); the last tests run
three binaries on bad input and check the flags of the line they print.
"""

from __future__ import annotations

import ast
import functools
import os
import pathlib
import re
import subprocess
import sys
from typing import Iterator, Optional
from unittest import mock

import pytest

from noisy_student.cli import config_flags
from noisy_student.runtime import entry
from tests import helpers
from tests import test_docs
from tests import test_ownership

ROOT = pathlib.Path(helpers.REPO_ROOT)
PACKAGES = ('noisy_student', 'data', 'efficientnet')
BINARIES = tuple(sorted(set(test_docs.CONSOLE_SCRIPTS.values())))
# How a message names another binary: its module's last name or its script.
BINARY_NAMES = {**{module.rpartition('.')[2]: module for module in BINARIES},
                **test_docs.CONSOLE_SCRIPTS}
_QUALIFIER = re.compile(
    r'(?<![\w-])(' + '|'.join(sorted(map(re.escape, BINARY_NAMES),
                                     key=len, reverse=True))
    + r')(?![\w-])[^;.()]*$')
FLAG = re.compile(r'(?<![\w-])--([A-Za-z]\w*)')
# Flags every binary has beyond its define_flags and absl's own.
ALWAYS = {
    'verbose',  # entry.run defines it for every binary that does not
}
_LOG_CALL = re.compile(r'(^|\.)(warning|warn|error|exception|fatal|critical)$')


# ---------------------------------------------------------------------------
# Reading the modules.
# ---------------------------------------------------------------------------
def _path(module: str) -> Optional[pathlib.Path]:
  base = ROOT / module.replace('.', '/')
  for path in (base.with_suffix('.py'), base / '__init__.py'):
    if path.is_file():
      return path
  return None


@functools.lru_cache(maxsize=None)
def _tree(module: str) -> ast.Module:
  path = _path(module)
  return ast.parse(path.read_text(), str(path))


_dotted = test_ownership.dotted


def _walk_code(tree: ast.AST) -> Iterator[ast.AST]:
  """ast.walk, leaving out `if TYPE_CHECKING:` blocks (never run)."""
  todo = [tree]
  while todo:
    node = todo.pop()
    yield node
    for child in ast.iter_child_nodes(node):
      if not (isinstance(child, ast.If)
              and _dotted(child.test).endswith('TYPE_CHECKING')):
        todo.append(child)


def _imports(module: str) -> set[str]:
  """The project modules `module` imports (anywhere in it), with the
  packages above them (their __init__ runs first)."""
  named = set()
  for node in _walk_code(_tree(module)):
    if isinstance(node, ast.Import):
      named |= {alias.name for alias in node.names}
    elif isinstance(node, ast.ImportFrom) and node.module:
      named.add(node.module)
      named |= {f'{node.module}.{alias.name}' for alias in node.names}
  found = set()
  for name in named:
    parts = name.split('.')
    if parts[0] in PACKAGES:
      found |= {'.'.join(parts[:i]) for i in range(1, len(parts) + 1)
                if _path('.'.join(parts[:i]))}
  return found


@functools.lru_cache(maxsize=None)
def closure(binary: str) -> frozenset[str]:
  seen, todo = set(), [binary]
  while todo:
    module = todo.pop()
    if module not in seen:
      seen.add(module)
      todo.extend(_imports(module) - seen)
  return frozenset(seen)


def _top_level(module: str) -> dict[str, list[ast.AST]]:
  """The module's functions and classes by name; '' for the rest."""
  units: dict[str, list[ast.AST]] = {'': []}
  for node in _tree(module).body:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
      units[node.name] = [node]
    elif not (isinstance(node, ast.If) and '__main__' in ast.unparse(node.test)):
      # (`if __name__ == '__main__': run()` runs only as that binary.)
      units[''].append(node)
  return units


def _units(binary: str) -> Iterator[tuple[str, ast.AST]]:
  """(module, top-level node) whose messages can reach `binary`.

  Every module of the closure whole, except another binary's module (demo
  uses data.make_corrupted's make_corrupted, not its main): of that only the
  functions the closure names, and the functions those call.
  """
  modules = closure(binary)
  for module in sorted(modules):
    units = _top_level(module)
    if module == binary or module not in BINARIES:
      wanted = set(units)
    else:
      last = module.rpartition('.')[2]
      wanted = {''}
      for other in modules - {module}:
        for node in _walk_code(_tree(other)):
          if (isinstance(node, ast.Attribute)
              and isinstance(node.value, ast.Name) and node.value.id == last):
            wanted.add(node.attr)
          elif isinstance(node, ast.ImportFrom) and node.module == module:
            wanted |= {alias.name for alias in node.names}
      todo = list(wanted & set(units))
      while todo:
        for node in units[todo.pop()]:
          for name in ast.walk(node):
            if (isinstance(name, ast.Name) and name.id in units
                and name.id not in wanted):
              wanted.add(name.id)
              todo.append(name.id)
    for name in sorted(wanted & set(units)):
      for node in units[name]:
        yield module, node


# ---------------------------------------------------------------------------
# The text of messages.
# ---------------------------------------------------------------------------
def _is_message(node: ast.AST) -> bool:
  if isinstance(node, ast.Raise):
    return node.exc is not None
  if not isinstance(node, ast.Call):
    return False
  name = _dotted(node.func)
  last = name.rpartition('.')[2]
  return (last == 'fail' or last.endswith(('Error', 'Exception'))
          or (_LOG_CALL.search(name) is not None and 'log' in name.lower()))


def _texts(node: ast.AST) -> Iterator[tuple[int, str]]:
  """(line, text) of each string in `node`; an f-string's values read `{}`."""
  inner = set()
  for sub in ast.walk(node):
    if isinstance(sub, ast.JoinedStr):
      inner |= {id(n) for n in ast.walk(sub) if n is not sub}
      yield sub.lineno, ''.join(
          part.value if isinstance(part, ast.Constant) else '{}'
          for part in sub.values)
  for sub in ast.walk(node):
    if (isinstance(sub, ast.Constant) and isinstance(sub.value, str)
        and id(sub) not in inner):
      yield sub.lineno, sub.value


@functools.lru_cache(maxsize=None)
def _parents(module: str) -> dict[int, ast.AST]:
  return {id(child): node for node in ast.walk(_tree(module))
          for child in ast.iter_child_nodes(node)}


def _defaults(function) -> dict[str, ast.AST]:
  args = function.args
  positional = args.posonlyargs + args.args
  found = dict(zip([a.arg for a in positional[len(positional)
                                               - len(args.defaults):]],
                   args.defaults))
  found.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults)
                if d is not None})
  return found


# id(scope) -> (scope, {name: values}); the scope is kept so its id stays its own.
_ASSIGNED: dict[int, tuple[ast.AST, dict[str, list[ast.AST]]]] = {}


def _assigned(scope: ast.AST, name: str) -> list[ast.AST]:
  """The values assigned to `name` in `scope` (a function or module)."""
  if _ASSIGNED.get(id(scope), (None,))[0] is not scope:
    found: dict[str, list[ast.AST]] = {}
    for node in ast.walk(scope):
      targets = (node.targets if isinstance(node, ast.Assign) else
                 [node.target] if isinstance(node, (ast.AnnAssign,
                                                    ast.AugAssign)) else [])
      for target in targets:
        if isinstance(target, ast.Name) and node.value is not None:
          found.setdefault(target.id, []).append(node.value)
    _ASSIGNED[id(scope)] = scope, found
  return _ASSIGNED[id(scope)][1].get(name, [])


def _message_texts(module: str, unit: ast.AST) -> Iterator[tuple[int, str]]:
  """(line, text) of what the unit's messages can say: their strings, the
  strings of the names they use (assigned in the function or the module, a
  parameter's default), and each flag-shaped string the unit passes on."""
  tree = _tree(module)
  parents = _parents(module)
  for node in ast.walk(unit):
    if (isinstance(node, ast.Constant) and isinstance(node.value, str)
        and re.fullmatch(r'--[A-Za-z]\w*', node.value)):
      yield node.lineno, node.value  # e.g. flag='--work_dir', a default
    if not _is_message(node):
      continue
    yield from _texts(node)
    scopes = [tree]
    parent = parents.get(id(node))
    while parent is not None:
      if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)):
        scopes.append(parent)
      parent = parents.get(id(parent))
    todo = [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]
    seen = set()
    while todo:
      name = todo.pop()
      if name in seen:
        continue
      seen.add(name)
      for scope in scopes:
        values = list(_assigned(scope, name))
        if scope is not tree and name in _defaults(scope):
          values.append(_defaults(scope)[name])
        for value in values:
          yield from _texts(value)
          todo.extend(n.id for n in ast.walk(value) if isinstance(n, ast.Name))


# ---------------------------------------------------------------------------
# Flags.
# ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def binary_flags(binary: str) -> tuple[frozenset[str], frozenset[str]]:
  """(every flag, the boolean ones) of `binary` (tests/test_docs.py's:
  absl's own included, beam_label's Beam options too)."""
  names, booleans = test_docs.flags_of(binary)
  return names | ALWAYS, booleans


def _has(binary: str, flag: str) -> bool:
  names, booleans = binary_flags(binary)
  return flag in names or (flag.startswith('no') and flag[2:] in booleans)


def named_flags(text: str, binary: str) -> Iterator[tuple[str, str]]:
  """(flag, the binary it belongs to) of each `--flag` in `text` read by
  `binary`: a flag after another binary's name in the same clause
  (`filter_unlabel --only_get_stats=1`, `(main: --use_tpu=false`) is that
  binary's."""
  for found in FLAG.finditer(text):
    qualifier = _QUALIFIER.search(text[:found.start()])
    owner = BINARY_NAMES[qualifier.group(1)] if qualifier else binary
    yield found.group(1), owner


def unknown_flags(binary: str) -> list[str]:
  wrong = set()
  for module, unit in _units(binary):
    for line, text in _message_texts(module, unit):
      for flag, owner in named_flags(text, binary):
        if not _has(owner, flag):
          where = _path(module).relative_to(ROOT)
          wrong.add(f'{binary}: --{flag}'
                    + (f' (of {owner})' if owner != binary else '')
                    + f' at {where}:{line}: {text[:120]!r}')
  return sorted(wrong)


@pytest.mark.parametrize('binary', BINARIES)
def test_messages_name_only_the_flags_of_the_binary_they_reach(binary):
  wrong = unknown_flags(binary)
  assert not wrong, '\n'.join(wrong)


# ---------------------------------------------------------------------------
# The checks see what they look for.
# ---------------------------------------------------------------------------
def test_the_closure_follows_imports_and_other_binaries_functions():
  demo = closure('noisy_student.demo')
  assert {'noisy_student.drivers.rounds', 'data.make_corrupted',
          'noisy_student.runtime.dir_lock'} <= demo
  units = {(m, getattr(u, 'name', '')) for m, u in _units('noisy_student.demo')}
  assert ('data.make_corrupted', 'make_corrupted') in units
  assert ('data.make_corrupted', 'main') not in units  # make_corrupted's own
  assert ('data.make_corrupted', 'main') in {
      (m, getattr(u, 'name', ''))
      for m, u in _units('data.make_corrupted')}


def test_the_scan_finds_flags_in_strings_defaults_and_arguments():
  source = '''
PREFIX = 'lower --min_threshold'
def f(path, flag='--model_dir'):
  advice = f'or pass --force={path}'
  if path:
    raise errors.ConfigError(f'{path}: {PREFIX}; {advice}; pass another {flag}')
  logging.warning('%s: see main --mode=predict', path)
  g(path, name='--output_dir')
'''
  tree = ast.parse(source)
  with mock.patch(f'{__name__}._tree', lambda module: tree):
    texts = [text for unit in tree.body
             for _, text in _message_texts('fake.module', unit)]
  flags_named = {flag for text in texts
                 for flag, _ in named_flags(text, 'noisy_student.iterate')}
  assert flags_named == {'min_threshold', 'force', 'model_dir', 'mode',
                         'output_dir'}
  owners = dict(named_flags('see main --mode=predict; --force',
                            'noisy_student.iterate'))
  assert owners == {'mode': 'noisy_student.main',
                    'force': 'noisy_student.iterate'}
  assert _has('noisy_student.main', 'nouse_tpu')
  assert not _has('noisy_student.iterate', 'model_dir')


def test_config_fields_are_named_as_flags_the_binary_has():
  names, _ = binary_flags('noisy_student.eval_robustness')
  namer = entry.defined_flag_namer(config_flags.as_flag, names)
  # eval_robustness spells them its own way: not --input_image_size.
  assert namer('image_size') == '--image_size'
  assert namer('num_classes') == '--num_classes'
  assert namer('model_name') == '--model_name'
  names, _ = binary_flags('noisy_student.iterate')
  namer = entry.defined_flag_namer(config_flags.as_flag, names)
  assert namer('image_size') == '--input_image_size'
  assert namer('small_image') == 'small_image'  # iterate has no such flag
  assert namer('model_dir') == 'model_dir'


# ---------------------------------------------------------------------------
# Through the binaries: the flags of the one line they print.
# ---------------------------------------------------------------------------
def _error_line(command: list[str], binary: str) -> str:
  result = subprocess.run(
      [sys.executable, '-m', binary, *command], cwd=ROOT, timeout=600,
      capture_output=True, text=True,
      env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '2',
           'PYTHONPATH': str(ROOT)})
  line = result.stderr.strip().splitlines()[-1]
  assert result.returncode == 2, result.stderr[-3000:]
  name = binary.rpartition('.')[2]
  assert line.startswith(f'{name}: error: '), line
  return line


def _check_line(line: str, binary: str) -> list[str]:
  named = list(named_flags(line, binary))
  assert named, line
  return [f'--{flag} ({owner})' for flag, owner in named
          if not _has(owner, flag)]


@pytest.mark.slow
def test_eval_robustness_names_its_own_flags_for_a_checkpoint_without_config(
    tmp_path):
  (tmp_path / 'ckpt-1.index').write_bytes(b'')
  line = _error_line(['--benchmark=fgsm', f'--model_path={tmp_path}/ckpt-1',
                      f'--data_dir={tmp_path}', f'--output_dir={tmp_path}/o'],
                     'noisy_student.eval_robustness')
  assert '--model_name' in line and '--num_classes' in line, line
  assert not _check_line(line, 'noisy_student.eval_robustness'), line


@pytest.mark.slow
def test_iterate_and_filter_name_flags_they_have(tmp_path, digits_dir):
  line = _error_line([f'--work_dir={tmp_path}/work',
                      f'--label_data_dir={tmp_path}',
                      f'--unlabel_data_dir={tmp_path}'],
                     'noisy_student.iterate')
  assert not _check_line(line, 'noisy_student.iterate'), line
  line = _error_line([f'--input_dir={digits_dir}/unlabeled',
                      f'--prediction_dir={tmp_path}/p',
                      f'--info_dir={tmp_path}/i', f'--output_dir={tmp_path}/o',
                      '--num_shards=8', '--file_prefix=extra',
                      '--shard_id=all', '--only_get_stats=1'],
                     'noisy_student.filter_unlabel')
  assert not _check_line(line, 'noisy_student.filter_unlabel'), line
