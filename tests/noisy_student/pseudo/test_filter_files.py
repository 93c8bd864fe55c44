"""The filter's two passes over real files: selection, balancing, reruns, errors."""

from __future__ import annotations

import collections
import dataclasses
import json
import os

import numpy as np
import pytest

from data import layout
from data import records
from data import writers
from noisy_student.runtime import errors
from noisy_student.pseudo import filter_files
from noisy_student.pseudo import filter_passes
from noisy_student.pseudo import selection
from tests.noisy_student.pseudo import filter_inputs as fi


def test_selection_keeps_most_confident_above_threshold_and_balances(tmp_path):
  root = str(tmp_path)
  truth = fi.write_inputs(root)
  config = fi.filter_config(root)
  final = fi.run_both(config)

  # Flat histogram: every class has exactly num_image records.
  assert final['per_class'] == [30] * fi.NUM_CLASSES
  out = fi.read_output(config)
  assert len(out) == final['num_written'] == 30 * fi.NUM_CLASSES
  source = fi.source_of(truth)
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
  total = json.load(open(filter_files.total_counts_path(config)))
  eligible_total = selection.hist_from_json(total['eligible'], fi.NUM_CLASSES)
  plan = json.load(open(filter_files.plan_path(config)))
  assert plan['expected_total'] == len(out)
  assert eligible_total.sum() == sum(
      1 for _, p in truth.values() if p.max() >= 0.5)
  # Samples are saved per class as the original image files.
  sample_files = os.listdir(os.path.join(config.output_dir, 'samples', '0'))
  assert len(sample_files) == 2 and sample_files[0].endswith('.png')


def test_rerun_is_idempotent_and_interrupted_unit_is_redone(tmp_path):
  root = str(tmp_path)
  fi.write_inputs(root)
  config = fi.filter_config(root)
  fi.run_both(config)
  paths = [filter_files.output_shard_path(config, s, t) for s, t in config.units]
  before = {p: open(p, 'rb').read() for p in paths}
  mtimes = {p: os.path.getmtime(p) for p in paths}
  fi.run_both(config)
  assert {p: os.path.getmtime(p) for p in paths} == mtimes
  # A unit whose shard was left half-written is redone, with the same bytes.
  with open(paths[1], 'r+b') as f:
    f.truncate(len(before[paths[1]]) // 2)
  filter_passes.run_pass(config, config.units, only_get_stats=False)
  assert {p: open(p, 'rb').read() for p in paths} == before


@pytest.mark.parametrize('finished', [False, True],
                         ids=['after_statistics', 'after_selection'])
def test_a_rerun_after_the_predictions_were_redone_is_refused_by_name(
    tmp_path, finished):
  """Statistics or shards filtered from one teacher's predictions are never
  taken as another's: the rerun names the file and what changed."""
  root = str(tmp_path)
  fi.write_inputs(root)
  config = fi.filter_config(root)
  if finished:
    fi.run_both(config)
  else:
    filter_passes.run_pass(config, config.units, only_get_stats=True)
  outputs = {p: open(p, 'rb').read() for p in _files(config.output_dir)}
  # Another teacher predicted shard 1 again (same count, another origin).
  info = layout.info_path(f'{root}/info', 1, fi.NUM_SHARDS, 0)
  writers.write_json(info, {'image_num': fi.PER_SHARD,
                            'made_from': {'teacher': 'sha256:other'}})
  with pytest.raises(errors.FilterError,
                     match=r'was written from other predictions \(made_from: '
                     r"None -> \{'teacher': 'sha256:other'\}\) of shard 1 "
                     r'\(task 0\).*new output_dir'):
    fi.run_both(config)
  assert {p: open(p, 'rb').read() for p in _files(config.output_dir)} == outputs


def test_statistics_of_an_earlier_version_are_still_taken(tmp_path):
  """Files written before the filter recorded its predictions: a rerun
  takes them as they are (nothing to compare), as it did before."""
  root = str(tmp_path)
  fi.write_inputs(root)
  config = fi.filter_config(root)
  fi.run_both(config)
  for shard, task in config.units:
    for path in (filter_files.unit_stats_path(config, shard, task),
                 filter_files.prelim_stats_path(config, shard, task)):
      stats = filter_files.load_json(path)
      del stats['predictions']
      writers.write_json(path, stats)
  assert fi.run_both(config)['num_written'] > 0


def _files(folder):
  return sorted(os.path.join(d, f) for d, _, names in os.walk(folder)
                for f in names)


def test_bucketed_shuffle_and_split_workers_give_the_same_records(tmp_path):
  whole = str(tmp_path / 'whole')
  truth = fi.write_inputs(whole)
  fi.run_both(fi.filter_config(whole))
  expected = collections.Counter(
      e['image/encoded'] for e in fi.read_output(fi.filter_config(whole)))
  # The same predictions split over two workers per shard, each unit filtered
  # by its own job, with a shuffle buffer small enough to use bucket files.
  split = str(tmp_path / 'split')
  split_truth = fi.write_inputs(split, total_replicas=2)
  assert {k: v[0] for k, v in split_truth.items()} == {
      k: v[0] for k, v in truth.items()}
  config = fi.filter_config(split, total_replicas=2, shuffle_buffer_bytes=300)
  for unit in config.units:
    filter_passes.run_pass(config, [unit], only_get_stats=True)
  assert os.path.exists(filter_files.total_counts_path(config))
  for unit in reversed(config.units):
    filter_passes.run_pass(config, [unit], only_get_stats=False)
  got = fi.read_output(config)
  assert collections.Counter(e['image/encoded'] for e in got) == expected
  assert not [n for n in os.listdir(os.path.join(split, 'out', 'data'))
              if n.startswith('.')]
  # Shuffled: not in the input order.
  first = [truth_key for truth_key in
           (fi.source_of(truth)[e['image/encoded']] for e in got[:20])]
  assert first != sorted(first)


def test_without_upsampling_and_use_all(tmp_path):
  root = str(tmp_path)
  truth = fi.write_inputs(root)
  eligible = collections.Counter(
      int(np.argmax(p)) for _, p in truth.values() if p.max() >= 0.5)
  final = fi.run_both(fi.filter_config(root, upsample=False))
  assert final['per_class'] == [min(30, eligible[c]) for c in range(fi.NUM_CLASSES)]
  assert final['num_duplicates'] == 0
  final = fi.run_both(dataclass_replace_out(fi.filter_config(root, use_all=True), 'all'))
  assert final['per_class'] == [eligible[c] for c in range(fi.NUM_CLASSES)]


def dataclass_replace_out(config, name):
  return dataclasses.replace(config, output_dir=f'{config.output_dir}_{name}',
                             prelim_stats_dir=f'{config.output_dir}_{name}/ps')


def test_random_balance_mode_keeps_images_above_class_threshold(tmp_path):
  root = str(tmp_path)
  truth = fi.write_inputs(root)
  final = fi.run_both(fi.filter_config(root, balance='random'))
  # Random copies: about num_image per class, never an image below 0.5.
  assert sum(final['per_class']) > 0
  out = fi.read_output(fi.filter_config(root, balance='random'))
  assert all(e['prob'] >= 0.5 for e in out)
  assert len(out) == final['num_written']
  assert set(e['image/encoded'] for e in out) <= {img for img, _ in
                                                   truth.values()}


@pytest.mark.parametrize('fault', ['missing', 'count', 'length', 'above_one',
                                   'negative', 'nan', 'sum_two'])
def test_bad_prediction_shards_stop_with_error_naming_the_shard(tmp_path, fault):
  root = str(tmp_path)
  fi.write_inputs(root)
  config = fi.filter_config(root)
  pred = layout.prediction_path(f'{root}/pred', 1, fi.NUM_SHARDS, 0)
  info = layout.info_path(f'{root}/info', 1, fi.NUM_SHARDS, 0)
  if fault == 'missing':
    os.remove(pred)
    error, named = FileNotFoundError, pred
  elif fault == 'count':
    writers.write_json(info, {'image_num': fi.PER_SHARD + 1})
    error, named = errors.FilterError, info
  else:
    bad = {'length': np.full(fi.NUM_CLASSES + 1, 0.2),
           'above_one': np.array([1.5, -0.5] + [0.0] * (fi.NUM_CLASSES - 2)),
           'negative': np.array([0.6, 0.6, -0.2] + [0.0] * (fi.NUM_CLASSES - 3)),
           'nan': np.array([np.nan] + [0.5] * (fi.NUM_CLASSES - 1)),
           'sum_two': np.full(fi.NUM_CLASSES, 0.5)}[fault]
    rows = [records.serialize_prediction(np.full(fi.NUM_CLASSES, 0.25))] * 7
    rows.append(records.serialize_prediction(bad))
    rows += rows[:1] * (fi.PER_SHARD - 8)
    writers.write_records(pred, rows)
    error, named = records.RecordError, pred
  with pytest.raises(error) as info_err:
    filter_passes.run_pass(config, config.units, only_get_stats=True)
  assert named in str(info_err.value)
  if fault not in ('missing', 'count'):
    assert 'record 7' in str(info_err.value)
  if fault not in ('missing', 'count', 'length'):
    assert 'not a distribution' in str(info_err.value)
  assert not os.path.exists(filter_files.prelim_stats_path(config, 1, 0))


def test_selection_before_all_statistics_names_the_missing_files(tmp_path):
  root = str(tmp_path)
  fi.write_inputs(root)
  config = fi.filter_config(root)
  filter_passes.run_pass(config, [(0, 0)], only_get_stats=True)
  with pytest.raises(errors.FilterError, match='prelim_stats_00001_0.json'):
    filter_passes.run_pass(config, [(0, 0)], only_get_stats=False)
  # Changed settings against existing statistics are refused by name.
  filter_passes.run_pass(config, config.units, only_get_stats=True)
  other = fi.filter_config(root, min_threshold=0.7)
  with pytest.raises(errors.FilterError, match='min_threshold') as error:
    filter_passes.run_pass(other, other.units, only_get_stats=False)
  # The library names its arguments; a binary (errors.naming) its flags.
  assert 'this run has min_threshold=0.7' in str(error.value)
  assert '--' not in str(error.value)
  with errors.naming(lambda field: f'--{field}'):
    with pytest.raises(errors.FilterError,
                       match='this run has --min_threshold=0.7'):
      filter_passes.run_pass(other, other.units, only_get_stats=False)


def test_softmax_rows_accepts_rounded_softmaxes_only():
  rounded = np.array([[0.333, 0.333, 0.333], [1.0, 0.0, 0.0]], np.float32)
  assert filter_files.softmax_rows(rounded).tolist() == [True, True]
  bad = np.array([[0.5, 0.5, 0.5], [1.2, -0.1, -0.1], [np.inf, 0, 0],
                  [0.9, 0.2, -1e-3]], np.float32)
  assert filter_files.softmax_rows(bad).tolist() == [False] * 4
