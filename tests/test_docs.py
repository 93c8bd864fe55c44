"""The docs as a user reads them: every block accounted for, every command real.

Every fenced block of README.md, BUILD.md and docs/*.md carries a marker on
the line before it (an HTML comment, invisible when rendered):

  <!-- docs-test: run by tests/test_demo.py -->   executed by that test
  <!-- docs-test: not run: <reason> -->          e.g. ImageNet-sized data,
                                                 a GPU/TPU, the network,
                                                 a cluster, your own files

Whether run or not, each block is checked here against the code: every
`python -m <project module>` / console script names a module that exists and
only flags that binary defines (`...` stands for "the flags above"); every
`bash <path>` names a script that exists; every Python block compiles and
imports only names the project has. Every relative link and every
`docs/*.md` named in the code resolves.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import importlib.util
import inspect
import pathlib
import re
import shlex
import subprocess
import sys
from typing import Optional

from absl import flags
import pytest

from tests import helpers
from tests import launcher

ROOT = pathlib.Path(helpers.REPO_ROOT)
DOCS = [ROOT / 'README.md', ROOT / 'BUILD.md',
        *sorted((ROOT / 'docs').glob('*.md'))]
PROJECT_PACKAGES = launcher.PROJECT_PACKAGES
MARKER = re.compile(r'^<!-- docs-test: (run by (?P<test>\S+)|not run: '
                    r'(?P<reason>.+?)) -->$')
FENCE = re.compile(r'^(\s*)```(\S*)\s*$')
SHELL_LANGS = ('bash', 'sh', 'shell')
# Flags every absl binary has.
ABSL_FLAGS = {'help', 'helpfull', 'helpshort', 'helpxml', 'flagfile',
              'undefok', 'only_check_args', 'verbosity', 'v', 'logtostderr',
              'alsologtostderr', 'log_dir', 'stderrthreshold',
              'showprefixforinfo', 'logger_levels', 'pdb', 'pdb_post_mortem',
              'run_with_pdb', 'run_with_profiling', 'profile_file',
              'use_cprofile_for_profiling'}


@dataclasses.dataclass(frozen=True)
class Block:
  doc: pathlib.Path
  line: int              # 1-based line of the opening fence
  lang: str
  text: str
  marker: Optional[str]  # the marker line's text, None when absent

  def __str__(self) -> str:
    return f'{self.doc.relative_to(ROOT)}:{self.line} ({self.lang or "plain"})'


def blocks() -> list[Block]:
  found = []
  for doc in DOCS:
    lines = doc.read_text().splitlines()
    i = 0
    while i < len(lines):
      opening = FENCE.match(lines[i])
      if not opening:
        i += 1
        continue
      end = next(j for j in range(i + 1, len(lines))
                 if lines[j].strip() == '```')
      previous = next((lines[j].strip() for j in range(i - 1, -1, -1)
                       if lines[j].strip()), '')
      found.append(Block(doc, i + 1, opening.group(2),
                         '\n'.join(lines[i + 1:end]),
                         previous if previous.startswith('<!--') else None))
      i = end + 1
  return found


BLOCKS = blocks()


CONSOLE_SCRIPTS = launcher.console_scripts()


def commands(text: str) -> list[list[str]]:
  """The simple commands of a shell block (continuations joined, comments
  dropped, split at && || ; |, `$VAR` of a `VAR="..."` line of the block
  expanded)."""
  joined = re.sub(r'\\\n', ' ', text)
  variables = {}
  for name, value in re.findall(r'^([A-Z_]+)="([^"]*)"$', joined, re.M):
    variables[f'${name}'] = shlex.split(value)
  result = []
  for line in joined.splitlines():
    lexer = shlex.shlex(line, posix=True, punctuation_chars=';&|')
    lexer.whitespace_split = True
    lexer.commenters = '#'
    current = []
    for token in lexer:
      if token in (';', '&&', '||', '|', '&'):
        if current:
          result.append(current)
        current = []
      else:
        current.append(token)
    if current:
      result.append(current)
  return [[word for token in command
           for word in variables.get(token, [token])] for command in result]


def binary_of(command: list[str]) -> Optional[tuple[str, list[str]]]:
  """(project module, its arguments) of a command, None when it runs
  something else (pip, tensorboard, saved_model_cli, ...)."""
  words = list(command)  # VAR=value prefixes already dropped
  if not words:
    return None
  if words[0] in CONSOLE_SCRIPTS:
    return CONSOLE_SCRIPTS[words[0]], words[1:]
  if (re.match(r'^(\S*/)?python3?$', words[0]) and len(words) > 2
      and words[1] == '-m'
      and words[2].split('.')[0] in PROJECT_PACKAGES):
    return words[2], words[3:]
  return None


@functools.cache
def flags_of(module_name: str) -> tuple[frozenset[str], frozenset[str]]:
  """(every flag name, the boolean ones) a project binary defines."""
  module = importlib.import_module(module_name)
  define = getattr(module, 'define_flags', None)
  if define is not None and inspect.signature(define).parameters:
    fv = flags.FlagValues()
    define(fv)
    names = set(fv)
    booleans = {name for name in fv
                if isinstance(fv[name], flags.BooleanFlag)}
  else:  # defines on the global FLAGS (or at import): ask the binary
    out = subprocess.run([sys.executable, '-m', module_name, '--helpfull'],
                         cwd=ROOT, capture_output=True, text=True,
                         timeout=300).stdout
    names = set(re.findall(r'^\s+--(?:\[no\])?(\w+):', out, re.M))
    booleans = set(re.findall(r'^\s+--\[no\](\w+):', out, re.M))
    assert names, f'{module_name} --helpfull listed no flags'
  if module_name == 'noisy_student.beam_label':
    # Flags it does not define go to Beam's PipelineOptions.
    from apache_beam.options import pipeline_options  # pylint: disable=g-import-not-at-top
    names |= set(pipeline_options.PipelineOptions([]).get_all_options())
  absl_booleans = {'logtostderr', 'alsologtostderr', 'showprefixforinfo',
                   'pdb', 'pdb_post_mortem', 'run_with_pdb',
                   'run_with_profiling', 'use_cprofile_for_profiling',
                   'only_check_args', 'help', 'helpfull', 'helpshort',
                   'helpxml'}
  return frozenset(names | ABSL_FLAGS), frozenset(booleans | absl_booleans)


def bad_flags(module_name: str, arguments: list[str]) -> list[str]:
  known, booleans = flags_of(module_name)
  bad = []
  for argument in arguments:
    if argument == '--' or not argument.startswith('-') or argument == '...':
      continue
    name = argument.lstrip('-').split('=', 1)[0]
    if name in known or (name.startswith('no') and name[2:] in booleans
                         and '=' not in argument):
      continue
    bad.append(argument)
  return bad


def _code_strings(path: pathlib.Path) -> str:
  """The string constants of a module's code (docstrings and comments left
  out), joined."""
  tree = ast.parse(path.read_text())
  docstrings = {id(node.value) for node in ast.walk(tree)
                if isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Constant)}
  return '\n'.join(node.value for node in ast.walk(tree)
                   if isinstance(node, ast.Constant)
                   and isinstance(node.value, str)
                   and id(node) not in docstrings)


def test_every_block_is_marked_run_or_not_run_with_a_reason():
  unmarked = [str(b) for b in BLOCKS if b.marker is None]
  assert not unmarked, (
      'blocks without a <!-- docs-test: run by tests/... --> or '
      '<!-- docs-test: not run: <reason> --> line before them: '
      + ', '.join(unmarked))
  for block in BLOCKS:
    match = MARKER.match(block.marker)
    assert match, f'{block}: malformed marker {block.marker!r}'
    if match.group('test'):
      test = ROOT / match.group('test').split('::')[0]
      assert test.exists(), f'{block}: {test} does not exist'
      doc = str(block.doc.relative_to(ROOT))
      assert doc in _code_strings(test), (
          f'{block}: {test.name} does not read {doc} (no string in its code '
          'names it)')


def _runs_project_code(block: Block) -> bool:
  """Shell blocks, and text/plain blocks that show a project command (a
  usage synopsis: `[--flag=...]` brackets are dropped)."""
  return block.lang in SHELL_LANGS or (
      block.lang in ('', 'text') and re.search(
          r'python3? -m (%s)\b' % '|'.join(PROJECT_PACKAGES), block.text))


@pytest.mark.parametrize('block', [b for b in BLOCKS if _runs_project_code(b)],
                         ids=str)
def test_commands_name_real_binaries_scripts_and_flags(block):
  text = block.text
  if block.lang not in SHELL_LANGS:
    text = re.sub(r'\[(-[^\]]*)\]', r'\1', text)
  for command in commands(text):
    while command and re.match(r'^[A-Z_]+=', command[0]):
      command = command[1:]  # VAR=value prefixes
    if not command:
      continue
    if command[0] == 'bash' and len(command) > 1 and command[1].endswith('.sh'):
      assert (ROOT / command[1]).exists(), f'{block}: no script {command[1]}'
      continue
    if (len(command) > 1 and re.match(r'^(\S*/)?python3?$', command[0])
        and command[1].endswith('.py')):
      assert (ROOT / command[1]).exists(), f'{block}: no script {command[1]}'
      continue
    found = binary_of(command)
    if found is None:
      continue
    module, arguments = found
    assert importlib.util.find_spec(module) is not None, (
        f'{block}: no module {module}')
    bad = bad_flags(module, arguments)
    assert not bad, f'{block}: {module} has no flag {", ".join(bad)}'


def _project_imports(tree: ast.AST):
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield alias.name, None
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      for alias in node.names:
        yield node.module, alias.name


@pytest.mark.parametrize(
    'block', [b for b in BLOCKS if b.lang == 'python'], ids=str)
def test_python_blocks_compile_and_import_real_names(block):
  tree = compile(block.text, str(block), 'exec', ast.PyCF_ONLY_AST)
  for module_name, name in _project_imports(tree):
    if module_name.split('.')[0] not in PROJECT_PACKAGES:
      continue
    module = importlib.import_module(module_name)
    if name is not None and not hasattr(module, name):
      importlib.import_module(f'{module_name}.{name}')  # a submodule


LINK = re.compile(r'\]\(([^)\s]+)\)')


@pytest.mark.parametrize('doc', DOCS, ids=lambda d: str(d.relative_to(ROOT)))
def test_relative_links_resolve(doc):
  broken = []
  prose = re.sub(r'```.*?```', '', doc.read_text(), flags=re.S)
  prose = re.sub(r'`[^`\n]*`', '', prose)
  for target in LINK.findall(prose):
    if re.match(r'^[a-z]+:', target) or target.startswith('#'):
      continue
    path = target.split('#', 1)[0]
    if not (doc.parent / path).exists():
      broken.append(target)
  assert not broken, f'{doc.relative_to(ROOT)}: broken links {broken}'


def test_docs_named_in_the_code_exist():
  missing = set()
  for source in ROOT.glob('**/*.py'):
    if '.venv' in source.parts or 'build' in source.parts:
      continue
    for name in re.findall(r'\bdocs/[\w-]+\.md\b', source.read_text()):
      if not (ROOT / name).exists():
        missing.add(f'{source.relative_to(ROOT)}: {name}')
  assert not missing, sorted(missing)


def test_the_error_matrix_lists_every_bad_input_case_once():
  """docs/errors.md: one row per case of tests/test_bad_inputs.py, and the count."""
  from tests import test_bad_inputs  # pylint: disable=g-import-not-at-top
  text = (ROOT / 'docs' / 'errors.md').read_text()
  rows = re.findall(r'^\| (\d+) \| `(\w+)` \| `[^`]+` \| ([^|]+) \|', text,
                    flags=re.MULTILINE)
  names = [name for _, name, _ in rows]
  assert names == [case.__name__ for case in test_bad_inputs.CASES]
  assert [int(n) for n, _, _ in rows] == list(range(1, len(rows) + 1))
  errors = sum(verdict.startswith('clean error') for _, _, verdict in rows)
  assert (f'**{len(rows)} cases: {errors} clean errors (exit 2), '
          f'{len(rows) - errors} ok with a warning') in ' '.join(text.split())
  # The other rows name tests that exist.
  for path, test in re.findall(r'`(tests/[\w/]+\.py)::(\w+)`', text):
    assert f'def {test}(' in (ROOT / path).read_text(), (path, test)


def test_build_md_states_how_many_blocks_run():
  """BUILD.md's count of the blocks that tests execute (and of the others,
  each with its reason) is the docs' own."""
  run = [b for b in BLOCKS if b.marker and MARKER.match(b.marker)
         and MARKER.match(b.marker).group('test')]
  runnable_not_run = [b for b in BLOCKS if b not in run
                      and _runs_project_code(b)]
  sentence = (f'{len(BLOCKS)} fenced blocks: {len(run)} executed by tests, '
              f'{len(BLOCKS) - len(run)} not run, each with its reason '
              f'({len(runnable_not_run)} of them show project commands')
  text = ' '.join((ROOT / 'BUILD.md').read_text().split())
  assert sentence in text, sentence
