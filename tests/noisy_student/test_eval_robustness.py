"""eval_robustness: the binary end to end, and run() for every benchmark."""

import json
import os
import subprocess
import sys

import keras
import pytest

from data import make_corrupted
from data import make_perturbed
from noisy_student import eval_robustness
from tests import robustness_fixtures as fx

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _tiny_cnn(path, seed=0, name='tiny'):
  keras.utils.set_random_seed(seed)
  inputs = keras.Input((32, 32, 3))
  x = keras.layers.Rescaling(1 / 255.0)(inputs)
  x = keras.layers.Conv2D(4, 3, activation='relu')(x)
  x = keras.layers.GlobalAveragePooling2D()(x)
  outputs = keras.layers.Dense(10)(x)
  keras.Model(inputs, outputs, name=name).save(path)
  return path


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
  root = tmp_path_factory.mktemp('eval')
  images, labels = fx.digits(24)
  pattern = fx.write_labeled(str(root / 'digits'), images, labels)
  make_corrupted.make_corrupted(pattern, str(root / 'digits-c'),
                                corruptions=['gaussian_noise', 'zoom_blur',
                                             'saturate'],
                                severities=[1, 4])
  make_perturbed.make_perturbed(pattern, str(root / 'digits-p'),
                                perturbations=['gaussian_noise', 'scale'],
                                max_images=4)
  return {'root': root, 'pattern': pattern,
          'teacher': _tiny_cnn(str(root / 'teacher.keras'), 0, 'teacher'),
          'student': _tiny_cnn(str(root / 'student.keras'), 1, 'student')}


def _config(**kwargs):
  defaults = dict(benchmark=None, model_path=None, model_kwargs={},
                  data_dir=None, batch_size=8)
  defaults.update(kwargs)
  return eval_robustness.RobustnessConfig(**defaults)


def _check_outputs(paths, benchmark):
  assert all(os.path.getsize(p) > 0 for p in paths.values())
  assert open(paths['png'], 'rb').read(8) == b'\x89PNG\r\n\x1a\n'
  with open(paths['json']) as f:
    results = json.load(f)
  assert results['benchmark'] == benchmark
  return results


def test_run_corrupted_with_teacher_baseline_then_compare(workspace):
  root = workspace['root']
  out = {}
  for model in ('teacher', 'student'):
    paths = eval_robustness.evaluate(_config(
        benchmark='corrupted', model_path=workspace[model],
        data_dir=str(root / 'digits-c'), output_dir=str(root / model),
        baseline=(str(root / 'teacher' / 'corrupted.json')
                  if model == 'student' else None)))
    out[model] = _check_outputs(paths, 'corrupted')
  teacher, student = out['teacher'], out['student']
  assert teacher['num_images'] == {c: {'1': 24, '4': 24} for c in
                                   ('gaussian_noise', 'zoom_blur',
                                    'saturate')}
  assert teacher['clean_error'] is not None       # the source, from the info
  assert student['baseline'] == 'teacher.keras'     # the file name
  for c, ce in student['ce'].items():
    expected = 100 * sum(student['errors'][c].values()) / sum(
        teacher['errors'][c].values())
    assert ce == pytest.approx(expected)
  paths = eval_robustness.evaluate(_config(
      output_dir=str(root / 'compare'),
      compare=(str(root / 'teacher' / 'corrupted.json'),
               str(root / 'student' / 'corrupted.json'))))
  with open(paths['json']) as f:
    assert [r['model'] for r in json.load(f)] == ['teacher.keras',
                                                  'student.keras']
  assert '| zoom_blur |' in open(paths['md']).read()


def test_run_imagenet_p_and_fgsm(workspace):
  root = workspace['root']
  results = _check_outputs(eval_robustness.evaluate(_config(
      benchmark='imagenet_p', model_path=workspace['student'],
      data_dir=str(root / 'digits-p'), output_dir=str(root / 'p'),
      label_map='numeric')), 'imagenet_p')
  assert set(results['flip_probability']) == {'gaussian_noise', 'scale'}
  assert results['num_videos']['scale'] == {'1': 4}
  assert 0 <= results['mean_flip_probability'] <= 1
  results = _check_outputs(eval_robustness.evaluate(_config(
      benchmark='fgsm', model_path=workspace['student'],
      data_dir=str(root / 'digits'), output_dir=str(root / 'f'),
      fgsm_epsilons=(0.0, 2.0), max_images=16)), 'fgsm')
  assert results['num_images'] == 16
  assert results['top_1_accuracy']['2'] <= results['top_1_accuracy']['0']


def _binary(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=REPO_ROOT)
  return subprocess.run(
      [sys.executable, '-m', 'noisy_student.eval_robustness', *args],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_binary_end_to_end(workspace):
  root = workspace['root']
  out = str(root / 'binary')
  result = _binary('--benchmark=corrupted',
                   f'--model_path={workspace["teacher"]}',
                   f'--data_dir={root / "digits-c"}', f'--output_dir={out}',
                   '--corruptions=zoom_blur,saturate', '--severities=4',
                   '--max_images=10', '--batch_size=4', '--model_label=T')
  assert result.returncode == 0, result.stderr[-3000:]
  assert sorted(os.listdir(out)) == ['corrupted.json', 'corrupted.md',
                                     'corrupted.png']
  with open(os.path.join(out, 'corrupted.json')) as f:
    results = json.load(f)
  assert results['model'] == 'T'
  assert results['num_images'] == {'zoom_blur': {'4': 10},
                                   'saturate': {'4': 10}}
  assert 'corrupted: 30/30 images' in result.stderr or (
      'corrupted: 30 images in' in result.stderr)
  missing = _binary(f'--output_dir={out}', '--benchmark=fgsm')
  assert missing.returncode != 0
  assert '--model_path is required' in missing.stderr
