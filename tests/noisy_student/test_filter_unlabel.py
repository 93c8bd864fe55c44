"""filter_unlabel on real TFRecords: statistics, selection, balancing, errors."""

from __future__ import annotations

import collections
import dataclasses
import io
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from data import records
from data import writers
from noisy_student import filter_unlabel
from noisy_student import filtering
from noisy_student import prediction_files
from noisy_student import pseudo_label
from tests import helpers

NUM_CLASSES = 4
NUM_SHARDS = 3
PER_SHARD = 50


def _png(index: int) -> bytes:
  """A unique 4x4 PNG per index, so every output image traces to its source."""
  pixels = np.zeros((4, 4, 3), np.uint8)
  pixels[0, 0] = [index % 256, index // 256 % 256, 7]
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format='PNG')
  return buffer.getvalue()


def _probabilities(rng: np.random.Generator, n: int) -> np.ndarray:
  """Softmax rows whose class frequencies are uneven (class 3 is scarce)."""
  labels = rng.choice(NUM_CLASSES, size=n, p=[0.4, 0.3, 0.25, 0.05])
  top = rng.uniform(0.26, 1.0, size=n).astype(np.float32)
  probs = np.zeros((n, NUM_CLASSES), np.float32)
  rest = (1.0 - top) / (NUM_CLASSES - 1)
  probs[:] = rest[:, None]
  probs[np.arange(n), labels] = top
  return probs


def _write_inputs(root: str, total_replicas: int = 1, seed: int = 0):
  """Unlabeled shards + prediction files + info files as --mode=predict would.

  Returns {(shard, record index in shard): (png bytes, probabilities)}.
  """
  rng = np.random.default_rng(seed)
  truth = {}
  for shard in range(NUM_SHARDS):
    images = [_png(shard * PER_SHARD + i) for i in range(PER_SHARD)]
    writers.write_records(
        prediction_files.input_shard_path(f'{root}/unl', 'extra', shard, NUM_SHARDS),
        [records.serialize_unlabeled(img) for img in images])
    probs = _probabilities(rng, PER_SHARD)
    for i in range(PER_SHARD):
      truth[(shard, i)] = (images[i], probs[i])
    for task in range(total_replicas):
      mine = list(range(task, PER_SHARD, total_replicas))
      writers.write_records(
          prediction_files.prediction_path(f'{root}/pred', shard, NUM_SHARDS, task),
          [records.serialize_prediction(probs[i]) for i in mine])
      writers.write_json(prediction_files.info_path(f'{root}/info', shard, NUM_SHARDS,
                                           task), {'image_num': len(mine)})
  return truth


def _config(root: str, **settings) -> filtering.FilterConfig:
  total_replicas = settings.pop('total_replicas', 1)
  buffer = settings.pop('shuffle_buffer_bytes', 512 << 20)
  base = dict(num_label_classes=NUM_CLASSES, num_image=30, min_threshold=0.5)
  base.update(settings)
  return filtering.FilterConfig(
      input_dir=f'{root}/unl', prediction_dir=f'{root}/pred',
      info_dir=f'{root}/info', output_dir=f'{root}/out',
      settings=pseudo_label.Settings(**base), file_prefix='extra',
      num_shards=NUM_SHARDS, total_replicas=total_replicas,
      num_samples_per_class=2, shuffle_buffer_bytes=buffer, batch_size=16)


def _run_both(config: filtering.FilterConfig) -> dict:
  filter_unlabel.run(config, config.units, only_get_stats=True)
  return filter_unlabel.run(config, config.units, only_get_stats=False)


def _read_output(config: filtering.FilterConfig) -> list[dict]:
  out = []
  for shard, task in config.units:
    path = filtering.output_shard_path(config, shard, task)
    for serialized in tf.data.TFRecordDataset(path).as_numpy_iterator():
      out.append(records.read_example(serialized))
  return out


def _source_of(truth):
  return {img: key for key, (img, _) in truth.items()}


def test_selection_keeps_most_confident_above_threshold_and_balances(tmp_path):
  root = str(tmp_path)
  truth = _write_inputs(root)
  config = _config(root)
  final = _run_both(config)

  # Flat histogram: every class has exactly num_image records.
  assert final['per_class'] == [30] * NUM_CLASSES
  out = _read_output(config)
  assert len(out) == final['num_written'] == 30 * NUM_CLASSES
  source = _source_of(truth)
  copies = collections.Counter()
  for example in out:
    key = source[example['image/encoded']]   # whole image bytes, unchanged
    image, probs = truth[key]
    np.testing.assert_array_equal(example['probabilities'], probs)
    assert example['label'] == int(np.argmax(probs))
    assert example['prob'] == pytest.approx(float(probs.max()))
    copies[key] += 1

  by_class = collections.defaultdict(list)
  for key, (_, probs) in truth.items():
    by_class[int(np.argmax(probs))].append((float(probs.max()), key))
  for cls, members in by_class.items():
    eligible = [(p, k) for p, k in members if p >= 0.5]
    kept = {k for k in copies if k in {m[1] for m in members}}
    assert all(p >= 0.5 for p, k in members if k in kept)
    if len(eligible) >= 30:
      # Abundant class: the 30 most confident, once each.
      assert kept == {k for _, k in sorted(eligible, reverse=True)[:30]}
      assert all(copies[k] == 1 for k in kept)
    else:
      # Scarce class: every eligible image, duplicated q or q+1 times, the
      # extra copies going to the most confident.
      assert kept == {k for _, k in eligible}
      q = 30 // len(eligible)
      counts = sorted(((p, copies[k]) for p, k in eligible), reverse=True)
      assert [c for _, c in counts] == sorted([c for _, c in counts],
                                              reverse=True)
      assert {c for _, c in counts} <= {q, q + 1}
  assert any(c > 1 for c in copies.values())

  # The output count matches the statistics pass.
  total = json.load(open(filtering.total_counts_path(config)))
  eligible_total = pseudo_label.hist_from_json(total['eligible'], NUM_CLASSES)
  plan = json.load(open(filtering.plan_path(config)))
  assert plan['expected_total'] == len(out)
  assert eligible_total.sum() == sum(
      1 for _, p in truth.values() if p.max() >= 0.5)
  # Samples are saved per class as the original image files.
  sample_files = os.listdir(os.path.join(config.output_dir, 'samples', '0'))
  assert len(sample_files) == 2 and sample_files[0].endswith('.png')


def test_rerun_is_idempotent_and_interrupted_unit_is_redone(tmp_path):
  root = str(tmp_path)
  _write_inputs(root)
  config = _config(root)
  _run_both(config)
  paths = [filtering.output_shard_path(config, s, t) for s, t in config.units]
  before = {p: open(p, 'rb').read() for p in paths}
  mtimes = {p: os.path.getmtime(p) for p in paths}
  _run_both(config)
  assert {p: os.path.getmtime(p) for p in paths} == mtimes
  # A unit whose shard was left half-written is redone, with the same bytes.
  with open(paths[1], 'r+b') as f:
    f.truncate(len(before[paths[1]]) // 2)
  filter_unlabel.run(config, config.units, only_get_stats=False)
  assert {p: open(p, 'rb').read() for p in paths} == before


def test_bucketed_shuffle_and_split_workers_give_the_same_records(tmp_path):
  whole = str(tmp_path / 'whole')
  truth = _write_inputs(whole)
  _run_both(_config(whole))
  expected = collections.Counter(
      e['image/encoded'] for e in _read_output(_config(whole)))
  # The same predictions split over two workers per shard, each unit filtered
  # by its own job, with a shuffle buffer small enough to use bucket files.
  split = str(tmp_path / 'split')
  split_truth = _write_inputs(split, total_replicas=2)
  assert {k: v[0] for k, v in split_truth.items()} == {
      k: v[0] for k, v in truth.items()}
  config = _config(split, total_replicas=2, shuffle_buffer_bytes=300)
  for unit in config.units:
    filter_unlabel.run(config, [unit], only_get_stats=True)
  assert os.path.exists(filtering.total_counts_path(config))
  for unit in reversed(config.units):
    filter_unlabel.run(config, [unit], only_get_stats=False)
  got = _read_output(config)
  assert collections.Counter(e['image/encoded'] for e in got) == expected
  assert not [n for n in os.listdir(os.path.join(split, 'out', 'data'))
              if n.startswith('.')]
  # Shuffled: not in the input order.
  first = [truth_key for truth_key in
           (_source_of(truth)[e['image/encoded']] for e in got[:20])]
  assert first != sorted(first)


def test_without_upsampling_and_use_all(tmp_path):
  root = str(tmp_path)
  truth = _write_inputs(root)
  eligible = collections.Counter(
      int(np.argmax(p)) for _, p in truth.values() if p.max() >= 0.5)
  final = _run_both(_config(root, upsample=False))
  assert final['per_class'] == [min(30, eligible[c]) for c in range(NUM_CLASSES)]
  assert final['num_duplicates'] == 0
  final = _run_both(dataclass_replace_out(_config(root, use_all=True), 'all'))
  assert final['per_class'] == [eligible[c] for c in range(NUM_CLASSES)]


def dataclass_replace_out(config, name):
  return dataclasses.replace(config, output_dir=f'{config.output_dir}_{name}',
                             prelim_stats_dir=f'{config.output_dir}_{name}/ps')


def test_random_balance_mode_keeps_images_above_class_threshold(tmp_path):
  root = str(tmp_path)
  truth = _write_inputs(root)
  final = _run_both(_config(root, balance='random'))
  # Random copies: about num_image per class, never an image below 0.5.
  assert sum(final['per_class']) > 0
  out = _read_output(_config(root, balance='random'))
  assert all(e['prob'] >= 0.5 for e in out)
  assert len(out) == final['num_written']
  assert set(e['image/encoded'] for e in out) <= {img for img, _ in
                                                   truth.values()}


@pytest.mark.parametrize('fault', ['missing', 'count', 'length'])
def test_bad_prediction_shards_stop_with_error_naming_the_shard(tmp_path, fault):
  root = str(tmp_path)
  _write_inputs(root)
  config = _config(root)
  pred = prediction_files.prediction_path(f'{root}/pred', 1, NUM_SHARDS, 0)
  info = prediction_files.info_path(f'{root}/info', 1, NUM_SHARDS, 0)
  if fault == 'missing':
    os.remove(pred)
    error, named = FileNotFoundError, pred
  elif fault == 'count':
    writers.write_json(info, {'image_num': PER_SHARD + 1})
    error, named = filtering.FilterError, info
  else:
    rows = [records.serialize_prediction(np.full(NUM_CLASSES, 0.25))] * 7
    rows.append(records.serialize_prediction(np.full(NUM_CLASSES + 1, 0.2)))
    rows += rows[:1] * (PER_SHARD - 8)
    writers.write_records(pred, rows)
    error, named = records.RecordError, pred
  with pytest.raises(error) as info_err:
    filter_unlabel.run(config, config.units, only_get_stats=True)
  assert named in str(info_err.value)
  if fault == 'length':
    assert 'record 7' in str(info_err.value)
  assert not os.path.exists(filtering.prelim_stats_path(config, 1, 0))


def test_selection_before_all_statistics_names_the_missing_files(tmp_path):
  root = str(tmp_path)
  _write_inputs(root)
  config = _config(root)
  filter_unlabel.run(config, [(0, 0)], only_get_stats=True)
  with pytest.raises(filtering.FilterError, match='prelim_stats_00001_0.json'):
    filter_unlabel.run(config, [(0, 0)], only_get_stats=False)
  # Changed settings against existing statistics are refused by name.
  filter_unlabel.run(config, config.units, only_get_stats=True)
  other = _config(root, min_threshold=0.7)
  with pytest.raises(filtering.FilterError, match='min_threshold'):
    filter_unlabel.run(other, other.units, only_get_stats=False)


def test_binary_flags_run_both_passes(tmp_path):
  root = str(tmp_path)
  _write_inputs(root)
  common = [sys.executable, '-m', 'noisy_student.filter_unlabel',
            f'--input_dir={root}/unl', f'--prediction_dir={root}/pred',
            f'--info_dir={root}/info', f'--output_dir={root}/out',
            f'--prelim_stats_dir={root}/ps', f'--num_shards={NUM_SHARDS}',
            f'--num_label_classes={NUM_CLASSES}', '--file_prefix=extra',
            '--min_threshold=0.5', '--num_image=20', '--task=0']
  for stats, shards in (('1', '0-1'), ('1', '2'), ('0', 'all')):
    result = subprocess.run(common + [f'--only_get_stats={stats}',
                                      f'--shard_id={shards}'],
                            cwd=helpers.REPO_ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
  final = json.load(open(f'{root}/out/stats/final_stats.json'))
  assert final['per_class'] == [20] * NUM_CLASSES
  bad = subprocess.run(common + ['--shard_id=5'], cwd=helpers.REPO_ROOT,
                       capture_output=True, text=True, timeout=300)
  assert bad.returncode != 0 and '--shard_id=5' in bad.stderr


def test_split_quota_largest_remainder():
  quota = pseudo_label.split_quota(np.array([5, 0, 3]),
                                   np.array([[3, 1, 1], [3, 0, 1], [1, 0, 2]]))
  np.testing.assert_array_equal(quota.sum(axis=0), [5, 0, 3])
  assert (quota <= np.array([[3, 1, 1], [3, 0, 1], [1, 0, 2]])).all()
  # 5 * [3, 3, 1] / 7 = [2.14, 2.14, 0.71]: floors [2, 2, 0], the leftover
  # goes to the largest remainder (unit 2).
  np.testing.assert_array_equal(quota[:, 0], [2, 2, 1])


def test_bins_compare_like_the_original():
  # float32 0.3 is 0.30000001 and lands in bin 30; 0.29999 in bin 29.
  np.testing.assert_array_equal(
      pseudo_label.bin_index(np.float32([0.3, 0.29999, 1.0, 0.0])),
      [30, 29, 100, 0])
