"""benchmarks/benchmark.py: the FLOP count and the binary end to end (tiny).

These check that the benchmark measures and reports; the speed numbers
themselves belong in BUILD.md, never in assertions.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from benchmarks import benchmark
import efficientnet
from tests import helpers


def test_forward_flops_of_b0_match_the_paper():
  # The paper's 0.39B FLOPs for B0 at 224 are multiply-adds; ours counts 2 per
  # multiply-add (convolutions and dense layers only).
  model = efficientnet.build_model('efficientnet-b0', num_classes=1000,
                                   image_size=224)
  multiply_adds = benchmark.forward_flops(model) / 2
  assert 0.38e9 < multiply_adds < 0.40e9


def test_forward_flops_grow_with_the_image():
  small = benchmark.forward_flops(efficientnet.build_model(
      'efficientnet-b0', num_classes=10, image_size=32,
      **helpers.TINY_OVERRIDES))
  large = benchmark.forward_flops(efficientnet.build_model(
      'efficientnet-b0', num_classes=10, image_size=64,
      **helpers.TINY_OVERRIDES))
  # 4x the pixels: convolutions 4x, the classifier unchanged.
  assert 3.5 * small < large < 4.0 * small


@pytest.mark.slow
def test_benchmark_binary_prints_every_row(tmp_path):
  out = tmp_path / 'results'
  command = [sys.executable, '-m', 'benchmarks.benchmark', '--sizes=32',
             '--steps=2', '--repeats=1', '--warmup_steps=1', '--variants=',
             '--skip_filter', '--predict_images=64', '--input_batches=2',
             '--width_coefficient=0.1', '--depth_coefficient=0.1',
             f'--output_dir={out}']
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  result = subprocess.run(command, cwd=helpers.REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-4000:]
  with open(out / 'benchmark.json') as f:
    listed = json.load(f)
  rows = {row['what']: row for row in listed}
  assert len(rows) == len(listed), [row['what'] for row in listed]  # no repeats
  label = '32x32 small-image width 0.1 depth 0.1'
  expected = [f'train B0 {label}: our loop',
              f'train B0 {label}: model.fit (same network)',
              f'train B0 {label}: model.fit + EMA + weight decay '
              '(Keras optimizer options)',
              f'B0 {label}: forward FLOPs / image',
              f'predict B0 {label}: our predict path',
              f'input {label}: decode + RandAugment M=5',
              f'input {label}: decode + RandAugment M=27']
  for name in expected:
    value = float(re.match(r'[\d.]+', rows[name]['value']).group())
    assert value > 0, rows[name]
  assert re.search(r'ours / fit = \d+\.\d\d',
                   rows[f'train B0 {label}: model.fit (same network)']['note'])
  assert (out / 'benchmark.md').read_text() in result.stdout


def test_own_data_trial_writes_readme_style_folders(tmp_path):
  from benchmarks import own_data_trial  # pylint: disable=g-import-not-at-top
  own_data_trial.write_photos(str(tmp_path))
  count = lambda d: sum(len(f) for _, _, f in os.walk(tmp_path / d))
  assert [count(split) for split, _ in own_data_trial.SPLITS] == [
      300, 100, 100, 500]
  assert len(os.listdir(tmp_path / 'train')) == 10  # class folders
  assert all(name.endswith('.png') for name in os.listdir(
      tmp_path / 'unlabeled'))  # one flat folder


def test_own_data_trial_reports_the_largest_gap_between_lines(tmp_path):
  from benchmarks import own_data_trial  # pylint: disable=g-import-not-at-top
  seconds, gap, after = own_data_trial.timed(
      [sys.executable, '-c',
       'import time; print("a", flush=True); time.sleep(0.5); print("b")'],
      str(tmp_path))
  assert seconds >= gap >= 0.5  # lower bounds only: the machine may be slow
  assert after == 'b'
