"""The README's demo command, end to end with a tiny model and few steps.

60 steps of batch 32 over the 300 labeled images: the demo's final_base_lr
schedule needs more than its 5 warm-up epochs.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from tests import helpers


@pytest.mark.slow
def test_demo_runs_every_stage_and_rerun_skips_them(tmp_path):
  work_dir = str(tmp_path / 'demo')
  command = [sys.executable, '-m', 'noisy_student.demo', f'--work_dir={work_dir}',
             '--seed=3', '--teacher_steps=60', '--student_steps=60',
             '--width_coefficient=0.1', '--depth_coefficient=0.1',
             '--corrupted_images=10',
             # A 60-step tiny teacher is barely above chance (~0.15 top-1
             # probability): keep every pseudo-label so the student has data.
             '--min_threshold=0']
  result = helpers.run(command, timeout=900)
  run_dir = os.path.join(work_dir, 'seed_3')
  with open(os.path.join(run_dir, 'demo_summary.json')) as f:
    summary = json.load(f)
  assert [r['role'] for r in summary['rows']] == ['teacher', 'student']
  assert set(summary['robustness']) == {'teacher (round 0)', 'student (round 1)'}
  # The student's mCE is normalised by the teacher's errors.
  assert summary['robustness']['teacher (round 0)']['mce'] is None
  assert summary['robustness']['student (round 1)']['mce'] > 0
  assert 0 <= summary['example']['predicted'] < 10
  assert 0 < summary['example']['probability'] <= 1
  for name in ('summary.png', 'robustness/digits_c.png',
               'export/saved_model.pb', 'export.keras',
               'example_digit.png'):
    assert os.path.getsize(os.path.join(run_dir, name)) > 0, name
  assert '| teacher (round 0): efficientnet-b0 |' in result.stdout
  # Alive: every stage is announced and training prints progress lines.
  for stage in ('round_0/teacher', 'round_1/predict', 'round_1/filter',
                'round_1/student', 'export'):
    assert f'[{stage}] starting' in result.stderr, stage
  assert ' | loss ' in result.stderr and 'ETA' in result.stderr
  final = json.load(open(os.path.join(run_dir, 'round_1', 'filter', 'stats',
                                      'final_stats.json')))
  assert final['num_written'] > 0 and final['histogram_spread'] == 0

  helpers.run(command, timeout=900)  # the rerun skips every stage
  with open(os.path.join(run_dir, 'demo_summary.json')) as f:
    assert json.load(f)['rows'] == summary['rows']
