"""Pure selection and balancing (noisy_student/pseudo/selection.py), no files."""

from __future__ import annotations

import numpy as np
import pytest

from noisy_student.pseudo import selection


def test_split_quota_largest_remainder():
  quota = selection.split_quota(np.array([5, 0, 3]),
                                   np.array([[3, 1, 1], [3, 0, 1], [1, 0, 2]]))
  np.testing.assert_array_equal(quota.sum(axis=0), [5, 0, 3])
  assert (quota <= np.array([[3, 1, 1], [3, 0, 1], [1, 0, 2]])).all()
  # 5 * [3, 3, 1] / 7 = [2.14, 2.14, 0.71]: floors [2, 2, 0], the leftover
  # goes to the largest remainder (unit 2).
  np.testing.assert_array_equal(quota[:, 0], [2, 2, 1])


def test_bins_compare_like_the_original():
  # float32 0.3 is 0.30000001 and lands in bin 30; 0.29999 in bin 29.
  np.testing.assert_array_equal(
      selection.bin_index(np.float32([0.3, 0.29999, 1.0, 0.0])),
      [30, 29, 100, 0])


def test_top1_takes_the_first_class_on_ties():
  labels, probs = selection.top1(np.float32([[0.2, 0.4, 0.4], [0.9, 0.05, 0.05]]))
  np.testing.assert_array_equal(labels, [1, 0])
  np.testing.assert_allclose(probs, [0.4, 0.9])


def test_eligible_mask_includes_both_edges():
  mask = selection.eligible_mask(np.float32([0.29, 0.3, 0.8, 0.81]), 0.3, 0.8)
  # float32 0.3 is 0.30000001 >= 0.3; float32 0.8 is 0.80000001 > 0.8.
  np.testing.assert_array_equal(mask, [False, True, False, False])
  np.testing.assert_array_equal(
      selection.eligible_mask(np.float64([0.3, 0.8]), 0.3, 0.8), [True, True])


def test_histograms_count_masked_pairs_and_round_trip_through_json():
  labels = np.array([0, 0, 2, 2, 2])
  bins = np.array([10, 10, 99, 100, 5])
  hist = selection.class_bin_counts(labels, bins, 3,
                                    np.array([True, True, True, True, False]))
  assert hist.shape == (3, selection.NUM_BINS)
  assert hist[0, 10] == 2 and hist[2, 99] == 1 and hist[2, 100] == 1
  assert hist[2, 5] == 0 and hist.sum() == 4
  as_json = selection.hist_to_json(hist)
  assert sorted(as_json) == ['0', '2']  # sparse: class 1 has no images
  np.testing.assert_array_equal(selection.hist_from_json(as_json, 3), hist)
  with pytest.raises(ValueError, match='class 5'):
    selection.hist_from_json({'5': [0] * selection.NUM_BINS}, 3)
  with pytest.raises(ValueError, match='3 bins'):
    selection.hist_from_json({'0': [0, 0, 0]}, 3)


def _hist(per_class_probs, num_classes):
  """Eligible histogram [C, NUM_BINS] from {class: [probabilities]}."""
  labels = np.concatenate([[c] * len(p) for c, p in per_class_probs.items()])
  probs = np.concatenate([np.float32(p) for p in per_class_probs.values()])
  return selection.class_bin_counts(labels, selection.bin_index(probs),
                                    num_classes)


@pytest.mark.parametrize('eligible, target, upsample, base, extra', [
    (10, 4, True, 0, 4),     # abundant: the 4 most confident once
    (4, 10, True, 2, 2),     # scarce: every image twice, 2 of them thrice
    (4, 10, False, 1, 0),    # scarce without upsampling: every image once
    (3, 3, True, 0, 3),      # exactly enough
    (0, 5, True, 0, 0),      # no image: nothing to copy
])
def test_class_rules_copies(eligible, target, upsample, base, extra):
  probs = np.linspace(0.5, 0.95, eligible) if eligible else []
  settings = selection.Settings(num_label_classes=2, num_image=target,
                                upsample=upsample)
  rules = selection.class_rules(_hist({0: probs, 1: [0.9]}, 2), settings)
  assert rules.eligible[0] == eligible
  assert (rules.base_copies[0], rules.extra[0]) == (base, extra)
  if eligible:
    assert base * eligible + extra == (target if upsample or eligible >= target
                                       else eligible)


def test_class_rules_boundary_bin_is_where_the_r_most_confident_end():
  # 2 images at 0.95, 3 at 0.75, 5 at 0.40; target 4: the boundary is bin 75
  # (2 above it, 3 candidates for 2 places), threshold 0.75.
  settings = selection.Settings(num_label_classes=1, num_image=4)
  rules = selection.class_rules(
      _hist({0: [0.95] * 2 + [0.75] * 3 + [0.40] * 5}, 1), settings)
  assert rules.boundary_lo[0] == rules.boundary_hi[0] == 75
  assert rules.above[0] == 2 and rules.quota_total[0] == 2
  assert rules.threshold[0] == pytest.approx(0.75)
  # use_all keeps every eligible image once: no boundary.
  rules = selection.class_rules(
      _hist({0: [0.95] * 2 + [0.75] * 3}, 1),
      selection.Settings(num_label_classes=1, num_image=4, use_all=True))
  assert rules.extra[0] == 0 and rules.base_copies[0] == 1
  assert rules.boundary_lo[0] == selection.NO_BOUNDARY


def _units(rng, num_units, per_unit, num_classes):
  """Random per-unit (labels, probs): class c is rarer for larger c."""
  weights = np.arange(num_classes, 0, -1, dtype=np.float64) ** 2
  out = []
  for _ in range(num_units):
    labels = rng.choice(num_classes, per_unit, p=weights / weights.sum())
    probs = np.round(rng.uniform(0.0, 1.0, per_unit), 2).astype(np.float32)
    out.append((labels, probs))
  return out


def _plan(settings, units_data):
  hists = []
  for labels, probs in units_data:
    mask = selection.eligible_mask(probs, settings.min_threshold,
                                   settings.max_prob)
    hists.append(selection.class_bin_counts(
        labels, selection.bin_index(probs), settings.num_label_classes, mask))
  units = [(u, 0) for u in range(len(units_data))]
  return selection.build_plan(settings, units, sum(hists), iter(hists))


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('upsample', [True, False])
def test_exact_balancing_gives_every_class_its_target_from_the_most_confident(
    seed, upsample):
  rng = np.random.default_rng(seed)
  settings = selection.Settings(num_label_classes=5, num_image=40,
                                min_threshold=0.3, upsample=upsample)
  units_data = _units(rng, 4, 120, 5)
  plan = _plan(settings, units_data)
  copies = [selection.unit_copies(labels, probs, plan, u,
                                  np.random.default_rng(u))
            for u, (labels, probs) in enumerate(units_data)]
  for unit, (labels, probs) in enumerate(units_data):
    assert copies[unit].sum() == plan.expected_per_unit[unit]
    for c in range(5):
      eligible = (labels == c) & (probs >= 0.3)
      # Ascending confidence; on equal confidence the earlier record wins.
      order = np.lexsort((-np.arange(eligible.sum()), probs[eligible]))
      # Inside a unit, copies never decrease with confidence (most confident
      # first) and differ by at most one within a class.
      assert (np.diff(copies[unit][eligible][order]) >= 0).all()
      if eligible.any():
        assert np.ptp(copies[unit][eligible]) <= 1
  labels = np.concatenate([d[0] for d in units_data])
  probs = np.concatenate([d[1] for d in units_data])
  bins = selection.bin_index(probs)
  copies = np.concatenate(copies)
  for c in range(5):
    mine = labels == c
    eligible = mine & (probs >= 0.3)
    total = int(copies[mine].sum())
    if upsample or eligible.sum() >= 40:
      assert total == 40, (c, total)
    else:
      assert total == eligible.sum()
    assert copies[mine & ~eligible].sum() == 0  # never below the threshold
    # Across units the most confident 0.01 bins win; inside the one boundary
    # bin the quota is shared among units in proportion.
    more, fewer = eligible & (copies > copies[eligible].min()), eligible & (
        copies == copies[eligible].min())
    if more.any() and fewer.any():
      assert bins[more].min() >= bins[fewer].max()


def test_random_balancing_keeps_images_above_the_class_threshold_only():
  rng = np.random.default_rng(0)
  settings = selection.Settings(num_label_classes=3, num_image=30,
                                min_threshold=0.2, balance='random')
  units_data = _units(rng, 2, 200, 3)
  plan = _plan(settings, units_data)
  totals = np.zeros(3)
  for trial in range(50):
    for u, (labels, probs) in enumerate(units_data):
      copies = selection.unit_copies(labels, probs, plan, u,
                                     np.random.default_rng(trial * 10 + u))
      threshold = plan.rules.threshold[labels]
      assert copies[probs < threshold].sum() == 0
      c = plan.rules.copies[labels]
      kept = copies > 0
      assert ((copies[kept] == np.floor(c[kept]))
              | (copies[kept] == np.floor(c[kept]) + 1)).all()
      totals += np.bincount(labels, weights=copies, minlength=3)
  # The original's rule is random per image, right on average.
  np.testing.assert_allclose(totals / 50, plan.expected_per_class, rtol=0.1)


def test_plan_json_round_trip_and_mismatch_errors():
  rng = np.random.default_rng(3)
  settings = selection.Settings(num_label_classes=4, num_image=25)
  units_data = _units(rng, 3, 80, 4)
  plan = _plan(settings, units_data)
  again = selection.AllocationPlan.from_json(plan.to_json())
  np.testing.assert_array_equal(again.quota, plan.quota)
  np.testing.assert_array_equal(again.rules.boundary_lo, plan.rules.boundary_lo)
  assert again.units == plan.units and again.settings == plan.settings
  labels, probs = units_data[0]
  with pytest.raises(ValueError, match='eligible records'):
    selection.unit_copies(labels[:-5], probs[:-5], plan, 0,
                          np.random.default_rng(0))
  with pytest.raises(ValueError, match='not in the plan'):
    plan.unit_index(9, 0)


def test_split_quota_refuses_more_than_the_candidates():
  with pytest.raises(ValueError, match='class 1'):
    selection.split_quota(np.array([1, 5]), np.array([[1, 2], [0, 2]]))
  # Equal remainders: the earlier unit gets the leftover.
  np.testing.assert_array_equal(
      selection.split_quota(np.array([1]), np.array([[1], [1]]))[:, 0], [1, 0])


@pytest.mark.parametrize('num_samples, num_units', [(10, 3), (7, 7), (2, 5)])
def test_sample_quota_spreads_samples_over_units(num_samples, num_units):
  quotas = [selection.sample_quota(num_samples, num_units, u)
            for u in range(num_units)]
  assert sum(quotas) == num_samples and max(quotas) - min(quotas) <= 1


@pytest.mark.parametrize('field, value', [
    ('num_label_classes', 0), ('num_image', -1), ('min_threshold', 1.5),
    ('balance', 'fair'), ('seed', -1)])
def test_settings_errors_name_the_flag(field, value):
  with pytest.raises(ValueError, match=field):
    selection.Settings(**{'num_label_classes': 3, 'num_image': 5, field: value})


def test_default_images_per_class_spreads_the_predictions_evenly():
  # One rule for iterate's filter and the Python API's filter_pseudo_labels.
  assert selection.default_images_per_class(897, 10) == 89
  assert selection.default_images_per_class(3, 10) == 1
