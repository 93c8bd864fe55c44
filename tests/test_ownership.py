"""One owner for each fact: the checks that keep it so (docs/architecture.md).

Beside the import-graph test, these read every module's source (no import of
the code) and fail when a second module
* loads model files (only `noisy_student/models/loading.py`, with the TF1
  restore in `models/checkpoints.py` under it),
* decides whether a reference is a `.keras` file, or builds, parses or globs
  shard and prediction file names (only `data/layout.py`),
* declares a recipe flag (a `TrainConfig` / `NoiseConfig` field) by hand
  instead of through `noisy_student/cli/config_flags.py`, or a binary
  declares by hand the flag of a field of a config class it builds,
and when importing `data` would run anything but imports.
"""

from __future__ import annotations

import ast
import re
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


def dotted(node: ast.AST) -> str:
  """`a.b.c` of a Name/Attribute chain, '' for anything else."""
  if isinstance(node, ast.Attribute):
    return f'{dotted(node.value)}.{node.attr}'
  if isinstance(node, ast.Name):
    return node.id
  return ''


def _calls(tree: ast.Module):
  for node in ast.walk(tree):
    if isinstance(node, ast.Call):
      yield node, dotted(node.func)


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
  """ids of the string constants inside flag definitions and config fields'
  `doc(default, help)` (help texts)."""
  found = set()
  for call, name in _calls(tree):
    if ('.DEFINE_' in f'.{name.rpartition(".")[2]}'
        or name in ('doc', 'config_lib.doc')):
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


def _binary_configs():
  """{module that declares a binary's flags: the config classes it builds}."""
  from noisy_student import eval_robustness  # pylint: disable=g-import-not-at-top
  from noisy_student.drivers import ablation, beam_inputs, modes, rounds
  from noisy_student.pseudo import filter_files, selection
  c = config_lib
  main = (c.TrainConfig, c.NoiseConfig, c.ModelConfig, c.DataConfig,
          c.ExperimentConfig, modes.PredictConfig)
  return {
      'noisy_student/main.py': main,
      'noisy_student/cli/main_flags.py': main,
      'noisy_student/iterate.py': (rounds.RoundsConfig, c.TrainConfig,
                                   c.NoiseConfig),
      'noisy_student/demo.py': (rounds.RoundsConfig, c.TrainConfig),
      'noisy_student/ablate.py': (ablation.AblationConfig, c.TrainConfig),
      'noisy_student/filter_unlabel.py': (filter_files.FilterConfig,
                                          selection.Settings),
      'noisy_student/cli/filter_flags.py': (filter_files.FilterConfig,
                                            beam_inputs.BeamLabelConfig,
                                            selection.Settings),
      'noisy_student/beam_label.py': (beam_inputs.BeamLabelConfig,
                                      selection.Settings),
      'noisy_student/eval_robustness.py': (eval_robustness.RobustnessConfig,),
  }


def _field_flags(config_class) -> dict[str, str]:
  """{flag: 'Class.field'} of the fields of `config_class` that are flags
  (those with a help text: `core.config.doc`) and the old spellings of those
  flags."""
  out = {}
  for field in dataclasses.fields(config_class):
    if 'help' not in field.metadata:
      continue  # not a flag (e.g. AblationConfig.dataset: --dataset is a name)
    flag = config_flags.flag_name(field.name)
    for name in (flag, *config_flags.OLD_FLAG_NAMES.get(flag, ())):
      out[name] = f'{config_class.__name__}.{field.name}'
  return out


def test_binaries_declare_no_field_of_their_configs_by_hand():
  """A field's flag comes from `config_flags.define` (its help from the
  field), so a field has one flag name and one help text."""
  wrong = []
  for path, classes in _binary_configs().items():
    fields = {}
    for config_class in classes:
      fields.update(_field_flags(config_class))
    for line, flag in _declared_flags(ast.parse((ROOT / path).read_text())):
      if flag in fields:
        wrong.append(f'{path}:{line}: --{flag} is {fields[flag]}, declared by '
                     'hand')
  assert not wrong, '\n'.join(wrong)
  # (Prefixed recipe flags, --teacher_train_steps: the test above.)


def test_one_flag_name_per_field():
  """--deterministic and --deterministic_input were one field's two flags;
  the old spelling is an alias that warns (config_flags.OLD_FLAG_NAMES)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  from noisy_student import ablate, demo, iterate, main  # pylint: disable=g-import-not-at-top
  for binary in (ablate, demo, iterate, main):
    fv = flags.FlagValues()
    binary.define_flags(fv)
    assert 'deterministic_input' in fv, binary.__name__
    assert fv['deterministic'].help.startswith(
        'Old name of --deterministic_input'), binary.__name__


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
  assert _field_flags(config_lib.DataConfig)['deterministic'] == (
      'DataConfig.deterministic')
  assert _field_flags(config_lib.ModelConfig)['input_image_size'] == (
      'ModelConfig.image_size')


# What a model reference is: decided in core/model_refs.py, acted on in models/.
MODEL_KIND_NAMES = ('kind', 'name_kind', 'EFFICIENTNET', 'KERAS_APPLICATION',
                    'KERAS_FILE', 'SAVED_MODEL', 'CHECKPOINT', 'TF1_CHECKPOINT',
                    'SAFETENSORS', 'BUILDABLE', 'is_saved_model')


def test_only_models_branch_on_model_kinds(modules):
  wrong = []
  for path, tree in modules.items():
    if path.startswith('noisy_student/models/') or path == (
        'noisy_student/core/model_refs.py'):
      continue
    for node in ast.walk(tree):
      if (isinstance(node, ast.Attribute) and node.attr in MODEL_KIND_NAMES
          and dotted(node.value).endswith('model_refs')):
        wrong.append(f'{path}:{node.lineno}: model_refs.{node.attr}')
  assert not wrong, '\n'.join(wrong)


# A library error may still show a flag where it names the binary that has it
# ("main --mode=predict", "filter_unlabel --only_get_stats=1", "main:
# --use_tpu=false") or where the value is a Beam pipeline option, which is
# flag-shaped in Python too.
_BINARY_BEFORE_FLAG = re.compile(
    r'\b(main|ablate|filter_unlabel|beam_label|iterate)\b[^;.]*$')
BEAM_OPTIONS = ('--runner', '--direct_num_workers', '--helpfull')


def _library_modules(modules):
  from tests.noisy_student.runtime import test_quiet  # pylint: disable=g-import-not-at-top
  binaries = {str(p.relative_to(ROOT)) for p in test_quiet._binaries()}  # pylint: disable=protected-access
  return {path: tree for path, tree in modules.items()
          if path not in binaries and not path.startswith('noisy_student/cli/')
          and path != 'efficientnet/saved_model.py'}


def test_library_errors_name_fields_not_flags(modules):
  """Raised messages name config fields (`errors.field_name`: the field from
  Python, the flag in a binary), not `--flags` a Python caller never passed."""
  wrong = []
  for path, tree in _library_modules(modules).items():
    for node in ast.walk(tree):
      if not (isinstance(node, ast.Raise) and node.exc is not None):
        continue
      for const in ast.walk(node.exc):
        if not (isinstance(const, ast.Constant) and isinstance(const.value, str)):
          continue
        for found in re.finditer(r'--[a-z][a-z_]*', const.value):
          before = const.value[:found.start()]
          if (found.group() not in BEAM_OPTIONS
              and not _BINARY_BEFORE_FLAG.search(before)):
            wrong.append(f'{path}:{const.lineno}: {found.group()} in '
                         f'{const.value!r}')
  assert not wrong, '\n'.join(wrong)
