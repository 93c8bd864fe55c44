"""Packaging: pyproject.toml, the bootstrap's TensorFlow choice, the import-name
check, and the wheel installed into a fresh virtualenv outside the checkout."""

from __future__ import annotations

import ast
import base64
import hashlib
import os
import pathlib
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from noisy_student.runtime import packages
from tests import conftest

REPO_ROOT = conftest.REPO_ROOT
TF_NAMES = ('tensorflow', 'tensorflow-cpu')


def _pyproject() -> dict:
  tomllib = pytest.importorskip('tomllib')  # Python 3.11+
  return tomllib.loads((REPO_ROOT / 'pyproject.toml').read_text())


def _requirement(text: str):
  return pytest.importorskip('packaging.requirements').Requirement(text)


def _binaries() -> set[str]:
  """Modules with a top-level `def run():` (the binaries, noisy_student/runtime/entry.py)."""
  found = set()
  for package in packages.PACKAGES:
    for path in sorted((REPO_ROOT / package).rglob('*.py')):
      for node in ast.parse(path.read_text()).body:
        if (isinstance(node, ast.FunctionDef) and node.name == 'run' and
            not node.args.args):
          found.add('.'.join(path.relative_to(REPO_ROOT).with_suffix('').parts))
  return found


def _pins(name: str) -> dict[str, str]:
  """{distribution: version} of a pinned requirements file."""
  pins = {}
  for line in (REPO_ROOT / name).read_text().splitlines():
    line = line.split('#')[0].strip()
    if line:
      requirement = _requirement(line)
      (version,) = [s.version for s in requirement.specifier if s.operator == '==']
      pins[requirement.name.lower()] = version
  return pins


# --------------------------------------------------------------------------
# pyproject.toml
# --------------------------------------------------------------------------
def test_every_binary_has_a_console_script():
  scripts = _pyproject()['project']['scripts']
  assert all(name.startswith('noisy-student-') for name in scripts)
  assert all(target.endswith(':run') for target in scripts.values())
  modules = {target.split(':')[0] for target in scripts.values()}
  assert modules == _binaries(), (
      'one [project.scripts] line per binary (module with run())')
  assert scripts['noisy-student-train'] == 'noisy_student.main:run'


def test_dependencies_one_tensorflow_and_no_test_tools():
  project = _pyproject()['project']
  runtime = [_requirement(d) for d in project['dependencies']]
  names = {r.name for r in runtime}
  assert not names & {'pytest', 'pytest-xdist', 'setuptools'}
  assert [r.name for r in runtime if r.name in TF_NAMES] == ['tensorflow']
  extras = project['optional-dependencies']
  (gpu,) = [_requirement(d) for d in extras['gpu']]
  # The same distribution as the base dependency: never next to tensorflow-cpu.
  assert gpu.name == 'tensorflow' and gpu.extras == {'and-cuda'}
  assert {_requirement(d).name for d in extras['test']} == {'pytest', 'pytest-xdist'}
  # importlib-resources: TFDS imports it on its download path but does not
  # declare it (the real-path test in tests/data catches its absence).
  assert {_requirement(d).name for d in extras['tfds']} == {
      'tensorflow-datasets', 'importlib-resources'}


@pytest.mark.parametrize('lock', ['requirements.txt', 'requirements-gpu.txt'])
def test_the_pinned_lock_satisfies_the_declared_ranges(lock):
  project = _pyproject()['project']
  pins = _pins(lock)
  tensorflow = [n for n in TF_NAMES if n in pins]
  assert tensorflow == (['tensorflow'] if 'gpu' in lock else ['tensorflow-cpu'])
  # Every extra but gpu (its tensorflow is the base one): `pip install
  # ".[beam]"` must be able to resolve the versions CI tests with.
  extras = project['optional-dependencies']
  declared = (project['dependencies'] + extras['tfds'] + extras['beam']
              + extras['test'])
  for text in declared:
    requirement = _requirement(text)
    name = tensorflow[0] if requirement.name == 'tensorflow' else requirement.name
    assert name in pins, f'{lock} does not pin {name}'
    assert requirement.specifier.contains(pins[name]), (text, pins[name])


def test_package_data_lists_every_data_file():
  globs = _pyproject()['tool']['setuptools']['package-data']
  for package in packages.PACKAGES:
    for path in (REPO_ROOT / package).rglob('*'):
      if path.is_file() and path.suffix not in ('.py', '.pyc'):
        relative = path.relative_to(REPO_ROOT / package).as_posix()
        assert any(pathlib.PurePosixPath(relative).match(g)
                   for g in globs.get(package, [])), f'{path} is not packaged'


# --------------------------------------------------------------------------
# The import-name check (noisy_student/runtime/packages.py)
# --------------------------------------------------------------------------
def _import_data(pythonpath: str, cwd, **env) -> subprocess.CompletedProcess:
  """`python -c 'import data'` (the working directory comes first on sys.path)."""
  full_env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  full_env.update(PYTHONPATH=pythonpath, **env)
  return subprocess.run([sys.executable, '-c', 'import data'],
                        cwd=cwd, env=full_env, capture_output=True, text=True,
                        timeout=300)


def test_the_import_names_here_are_this_projects():
  assert packages.problems() == []


def test_a_shadowing_package_is_named(tmp_path):
  other = tmp_path / 'other'
  (other / 'efficientnet').mkdir(parents=True)
  (other / 'efficientnet' / '__init__.py').write_text('"""Another one."""\n')
  result = _import_data(f'{REPO_ROOT}{os.pathsep}{other}', tmp_path)
  assert result.returncode == 0, result.stderr   # ours first: fine
  # Another `efficientnet` first on sys.path, or in the working directory.
  result = _import_data(f'{other}{os.pathsep}{REPO_ROOT}', tmp_path)
  assert result.returncode != 0
  here = os.path.realpath(other)
  assert f"'efficientnet' resolves to {here}/efficientnet, not" in result.stderr
  result = _import_data(str(REPO_ROOT), other)
  assert result.returncode != 0
  assert 'PackageConflictError' in result.stderr
  assert f"'efficientnet' resolves to {here}/efficientnet, not" in result.stderr
  result = _import_data(f'{other}{os.pathsep}{REPO_ROOT}', tmp_path,
                        **{packages.SKIP_ENV: '1'})
  assert result.returncode == 0, result.stderr


def test_a_binary_runs_in_a_folder_with_its_own_data_package(tmp_path):
  # An ML project's folder with `data/__init__.py` (and `efficientnet/`) as
  # the working directory of `python -m noisy_student.main`: the binary runs
  # with this project's packages and says so in one line.
  for name in ('data', 'efficientnet'):
    (tmp_path / name).mkdir()
    (tmp_path / name / '__init__.py').write_text('"""The user\'s own."""\n')
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  env.update(PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL='2')
  result = subprocess.run(
      [sys.executable, '-m', 'noisy_student.main', '--mode=eval',
       '--use_tpu=false', '--model_dir=m', '--label_data_dir=nowhere'],
      cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
  lines = result.stderr.strip().splitlines()
  assert lines[0] == (
      'noisy-student: the working directory has its own data/, efficientnet/ '
      "package; using this project's instead (the folder stays importable "
      'after it)'), result.stderr
  assert result.returncode == 2 and lines[-1].startswith('main: error: '), (
      result.stderr)  # the job's own error: the binary ran
  assert 'Traceback' not in result.stderr
  # Imported from Python there, the conflict is an ImportError naming it.
  result = subprocess.run([sys.executable, '-c', 'import noisy_student'],
                          cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode != 0 and 'PackageConflictError' in result.stderr
  assert f"'data' resolves to {os.path.realpath(tmp_path)}/data" in result.stderr


def _record_line(path: pathlib.Path, name: str) -> str:
  digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest())
  return f'{name},sha256={digest.rstrip(b"=").decode()},{path.stat().st_size}\n'


def test_an_overwritten_installed_package_is_named(tmp_path):
  # An installed layout: the packages + our dist-info RECORD, side by side.
  site = tmp_path / 'site'
  for package in packages.PACKAGES:
    shutil.copytree(REPO_ROOT / package, site / package,
                    ignore=shutil.ignore_patterns('__pycache__'))
  dist_info = site / 'noisy_student-0.1.0.dist-info'
  dist_info.mkdir()
  (dist_info / 'RECORD').write_text(''.join(
      _record_line(site / p / '__init__.py', f'{p}/__init__.py')
      for p in packages.PACKAGES))
  assert _import_data(str(site), tmp_path).returncode == 0
  # What `pip install efficientnet` (another project) does to the folder.
  (site / 'efficientnet' / '__init__.py').write_text('"""Another one."""\n')
  result = _import_data(str(site), tmp_path)
  assert result.returncode != 0
  assert (f'{os.path.realpath(site)}/efficientnet/__init__.py is not the file '
          'this project installed') in result.stderr


# --------------------------------------------------------------------------
# tools/bootstrap.sh: which requirements, and never tensorflow-cpu over a GPU build
# --------------------------------------------------------------------------
@pytest.fixture
def fake_venv(tmp_path):
  """A real virtualenv (no pip) whose metadata claims `installed` TF builds."""
  venv_dir = tmp_path / 'venv'
  subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv_dir)],
                 check=True, timeout=120)
  site = subprocess.run(
      [str(venv_dir / 'bin' / 'python'), '-c',
       'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
      check=True, capture_output=True, text=True).stdout.strip()

  def install(*names):
    for name in names:
      info = pathlib.Path(site) / f'{name.replace("-", "_")}-2.21.0.dist-info'
      info.mkdir()
      (info / 'METADATA').write_text(
          f'Metadata-Version: 2.1\nName: {name}\nVersion: 2.21.0\n')
    return venv_dir
  return install


def _bootstrap(venv_dir, tmp_path, *args, gpu=None, nvidia_smi=None):
  """Dry run (pip commands printed); `nvidia_smi`: what a fake one prints."""
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir(exist_ok=True)
  (bin_dir / 'python3').unlink(missing_ok=True)
  (bin_dir / 'python3').symlink_to(sys.executable)
  (bin_dir / 'nvidia-smi').unlink(missing_ok=True)
  if nvidia_smi is not None:
    (bin_dir / 'nvidia-smi').write_text(f'#!/bin/sh\necho "{nvidia_smi}"\n')
    (bin_dir / 'nvidia-smi').chmod(0o755)
  env = {k: v for k, v in os.environ.items() if k != 'NOISY_STUDENT_GPU'}
  env.update(BOOTSTRAP_DRY_RUN='1', VENV=str(venv_dir),
             PATH=f'{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin')
  if gpu is not None:
    env['NOISY_STUDENT_GPU'] = gpu
  result = subprocess.run(['bash', str(REPO_ROOT / 'tools' / 'bootstrap.sh'), *args],
                          env=env, capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr
  return result.stdout


def _tensorflow_line(stdout: str) -> str:
  return re.search(r'^\+ TensorFlow from (.*)$', stdout, re.M).group(1)


def test_bootstrap_keeps_a_gpu_tensorflow(fake_venv, tmp_path):
  venv_dir = fake_venv('tensorflow')
  out = _bootstrap(venv_dir, tmp_path, gpu='0')
  assert 'keeping the GPU-capable tensorflow' in out
  assert _tensorflow_line(out) == 'requirements.txt: tensorflow==2.21.0'
  assert 'uninstall' not in out


def test_bootstrap_gpu_replaces_tensorflow_cpu(fake_venv, tmp_path):
  venv_dir = fake_venv('tensorflow-cpu')
  out = _bootstrap(venv_dir, tmp_path, '--gpu')
  assert '+ pip uninstall --quiet -y tensorflow-cpu tensorflow' in out
  assert _tensorflow_line(out) == 'requirements-gpu.txt: tensorflow[and-cuda]==2.21.0'
  assert '--no-deps --no-build-isolation -e ' in out   # then the project itself


def test_bootstrap_detects_a_gpu_and_can_be_told_otherwise(fake_venv, tmp_path):
  venv_dir = fake_venv()
  gpu_line = 'GPU 0: NVIDIA H200 (UUID: GPU-0)'
  assert _tensorflow_line(_bootstrap(venv_dir, tmp_path, nvidia_smi=gpu_line)
                          ).startswith('requirements-gpu.txt')
  assert _tensorflow_line(_bootstrap(venv_dir, tmp_path, gpu='0',
                                     nvidia_smi=gpu_line)
                          ) == 'requirements.txt: tensorflow-cpu==2.21.0'
  assert _tensorflow_line(_bootstrap(venv_dir, tmp_path, nvidia_smi='')
                          ).startswith('requirements.txt')
  assert _tensorflow_line(_bootstrap(venv_dir, tmp_path, '--gpu')
                          ).startswith('requirements-gpu.txt')


# --------------------------------------------------------------------------
# The wheel, installed outside the checkout
# --------------------------------------------------------------------------
LOAD_SCRIPT = r'''
import sys
import numpy as np
import keras

saved_model, keras_file, images, out = sys.argv[1:]
x = np.load(images)
# The SavedModel with no project code at all.
layer = keras.layers.TFSMLayer(saved_model, call_endpoint='serving_default')
served = layer(x)['logits']
# The .keras file too: it is built from Keras layers only.
model = keras.saving.load_model(keras_file)
keras_logits = np.asarray(model(x, training=False))
assert not {'data', 'efficientnet', 'noisy_student'} & set(sys.modules)
import efficientnet
np.savez(out, served=np.asarray(served), keras=keras_logits,
         efficientnet=efficientnet.__file__)
'''


def _clean_env() -> dict:
  env = {k: v for k, v in os.environ.items()
         if k not in ('PYTHONPATH', 'VIRTUAL_ENV', packages.SKIP_ENV)}
  env['TF_CPP_MIN_LOG_LEVEL'] = '2'
  return env


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_checkout(tmp_path):
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  from noisy_student.models import backbones  # pylint: disable=g-import-not-at-top
  from noisy_student.models import checkpoints  # pylint: disable=g-import-not-at-top
  from noisy_student.models import export  # pylint: disable=g-import-not-at-top
  from tests import helpers  # pylint: disable=g-import-not-at-top

  # 1. Build the wheel from a copy (setuptools writes build/ and *.egg-info).
  source = tmp_path / 'source'
  shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(
      '.git', '.venv', '__pycache__', '*.egg-info', 'build', 'dist',
      'demo_output', 'runs'))
  subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--quiet', '--no-deps',
                  '--no-build-isolation', '-w', str(tmp_path / 'wheels'),
                  str(source)], check=True, timeout=600)
  (wheel,) = (tmp_path / 'wheels').glob('noisy_student-*.whl')
  names = zipfile.ZipFile(wheel).namelist()
  assert {n.split('/')[0] for n in names} == {
      'data', 'efficientnet', 'noisy_student', wheel.name.split('-py3')[0] + '.dist-info'}
  assert 'data/imagenet_wnids.txt' in names

  # 2. A fresh venv; the already-installed dependencies are made visible with
  # a .pth file (no TensorFlow download), the wheel installed with no index.
  venv_dir = tmp_path / 'venv'
  subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv_dir)],
                 check=True, timeout=120)
  python = str(venv_dir / 'bin' / 'python')
  site = subprocess.run([python, '-c', 'import sysconfig; '
                         'print(sysconfig.get_paths()["purelib"])'],
                        check=True, capture_output=True, text=True).stdout.strip()
  import site as site_lib  # pylint: disable=g-import-not-at-top
  pathlib.Path(site, 'outer_dependencies.pth').write_text(
      '\n'.join(site_lib.getsitepackages()) + '\n')
  subprocess.run([sys.executable, '-m', 'pip', '--python', python, 'install',
                  '--quiet', '--no-deps', '--no-index', str(wheel)],
                 check=True, timeout=600)
  work = tmp_path / 'elsewhere'
  work.mkdir()

  # 3. Console scripts, from outside the checkout.
  digits = tmp_path / 'digits'
  result = subprocess.run(
      [str(venv_dir / 'bin' / 'noisy-student-prepare-digits'),
       f'--output_dir={digits}'], cwd=work, env=_clean_env(),
      capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  assert len(list(digits.glob('train-*'))) == 4 and (digits / 'dataset_info.json').exists()
  result = subprocess.run(
      [str(venv_dir / 'bin' / 'noisy-student-train'), '--helpfull'], cwd=work,
      env=_clean_env(), capture_output=True, text=True, timeout=600)
  assert '--train_batch_size' in result.stdout, result.stderr[-3000:]
  assert "Noisy Student training, evaluation" in result.stdout  # --help's docstring

  # 4. Export a tiny model with the project's export (SavedModel + .keras
  # beside it), then load both there, without importing the project.
  config = helpers.tiny_model()
  model = backbones.build_model(config)
  model_dir = str(tmp_path / 'model')
  checkpoints.write_model_config(model_dir, config)
  tf.train.CheckpointManager(tf.train.Checkpoint(model=model), model_dir,
                             1).save(checkpoint_number=1)
  outputs = export.export(model_dir, str(tmp_path / 'serving' / 'student'))
  images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(
      np.float32)
  np.save(tmp_path / 'images.npy', images)
  expected = model(images, training=False).numpy()
  result = subprocess.run(
      [python, '-c', LOAD_SCRIPT, outputs['saved_model'], outputs['keras'],
       str(tmp_path / 'images.npy'), str(tmp_path / 'out.npz')],
      cwd=work, env=_clean_env(), capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  out = np.load(tmp_path / 'out.npz')
  assert str(out['efficientnet']).startswith(site)   # the wheel's copy
  np.testing.assert_allclose(out['served'], expected, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(out['keras'], expected, rtol=1e-4, atol=1e-5)

  # 5. Another distribution writing its own `efficientnet` over ours is named.
  pathlib.Path(site, 'efficientnet', '__init__.py').write_text('"""Other."""\n')
  result = subprocess.run([python, '-c', 'import data'], cwd=work,
                          env=_clean_env(), capture_output=True, text=True,
                          timeout=120)
  assert result.returncode != 0
  assert 'efficientnet/__init__.py is not the file this project installed' in (
      result.stderr)
