"""write_report: JSON + markdown + PNG for several models / benchmarks."""

import json

import numpy as np
from PIL import Image
import pytest

from noisy_student.robust import metrics as rb
from noisy_student.robust import report as rr


def _corrupted(model, scale, baseline=None):
  errors = {c: {str(s): min(1.0, scale * s / 10) for s in (1, 3)}
            for c in ('gaussian_noise', 'fog', 'spatter')}
  results = {'benchmark': 'corrupted', 'model': model, 'errors': errors,
             'clean_error': scale / 20}
  results.update(rb.summarize_corruptions(errors, baseline,
                                          results['clean_error']))
  return results


def _results():
  teacher = _corrupted('teacher', 2.0)
  student = _corrupted('student', 1.0, teacher)
  fgsm = [{'benchmark': 'fgsm', 'model': m, 'epsilons': [0.0, 4.0],
           'top_1_accuracy': {'0': a, '4': a / 2}, 'num_images': 10}
          for m, a in (('teacher', 0.8), ('student', 0.9))]
  flips = {'translate': {'1': 0.1}, 'gaussian_noise': {'1': 0.05}}
  dists = {'translate': {'1': 0.5}, 'gaussian_noise': {'1': 0.2}}
  p = {'benchmark': 'imagenet_p', 'model': 'student',
       'flip_probability': flips, 'top5_distance': dists}
  p.update(rb.summarize_perturbations(flips, dists))
  a = {'benchmark': 'imagenet_a', 'model': 'student', 'top_1_accuracy': 0.837,
       'top_1_error': 0.163, 'num_images': 7500}
  return [teacher, student] + fgsm + [p, a]


def test_write_report(tmp_path):
  results = _results()
  paths = rr.write_report(results, str(tmp_path), name='cmp')
  assert sorted(paths) == ['json', 'md', 'png']
  with open(paths['json']) as f:
    assert json.load(f) == json.loads(json.dumps(results))
  markdown = open(paths['md']).read()
  for title in ('## Corrupted copies', '## FGSM', '## ImageNet-P',
                '## ImageNet-A'):
    assert title in markdown
  # student: mean error over gaussian_noise + fog = (0.1 + 0.3) / 2 = 20%;
  # its CE vs the teacher is 50%.
  assert '| student | 5.0 | 20.0 | 50.0 |' in markdown
  assert '| spatter (extra) | 40.0 | - | 20.0 | 50.0 |' in markdown
  assert '| 4 | 40.0 | 45.0 |' in markdown                  # FGSM row
  assert '| student | 83.7 | 7500 |' in markdown             # ImageNet-A
  image = Image.open(paths['png'])
  assert image.format == 'PNG' and image.size[0] > 500
  pixels = np.asarray(image.convert('L'))
  assert pixels.std() > 10                                 # not blank


def test_single_result_and_load(tmp_path):
  results = _results()[0]
  paths = rr.write_report([results], str(tmp_path))
  with open(paths['json']) as f:
    assert json.load(f)['model'] == 'teacher'              # a dict, not a list
  both = rr.load_results([paths['json'], paths['json']])
  assert [r['model'] for r in both] == ['teacher', 'teacher']
  assert '| teacher (2) |' in rr.markdown_report(both)


def test_bad_inputs(tmp_path):
  with pytest.raises(ValueError, match='no results'):
    rr.write_report([], str(tmp_path))
  with pytest.raises(FileNotFoundError, match='missing.json'):
    rr.load_results([str(tmp_path / 'missing.json')])
  other = tmp_path / 'other.json'
  other.write_text('{"accuracy": 1}')
  with pytest.raises(ValueError, match='other.json.*benchmark'):
    rr.load_results([str(other)])
  with pytest.raises(ValueError, match='imagenet_r'):
    rr.markdown_report([{'benchmark': 'imagenet_r'}])
