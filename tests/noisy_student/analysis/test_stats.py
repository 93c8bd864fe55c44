"""The paired statistics against scipy's own and against hand values."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from noisy_student.analysis import stats


def test_matches_scipy_ttest_rel_and_t_interval():
  rng = np.random.default_rng(0)
  for n in (2, 3, 5, 8):
    a = rng.normal(50, 2, n)
    b = a - rng.normal(1, 1.5, n)
    result = stats.paired(a, b)
    reference = scipy_stats.ttest_rel(a, b)
    assert result.t == pytest.approx(reference.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    diff = a - b
    low, high = scipy_stats.t.interval(
        0.95, n - 1, loc=diff.mean(), scale=scipy_stats.sem(diff))
    assert (result.low, result.high) == pytest.approx((low, high), rel=1e-12)
    assert result.sd == pytest.approx(diff.std(ddof=1))


def test_the_issues_cifar_numbers():
  # CIFAR-10, 3 seeds (docs/results.md, 2026-12-03): student - teacher.
  teacher = [44.31, 45.39, 49.36]
  student = [49.57, 47.64, 51.82]
  result = stats.paired(student, teacher)
  assert result.mean == pytest.approx(3.3233, abs=1e-4)
  assert result.t == pytest.approx(3.43, abs=0.01)
  assert result.p_value == pytest.approx(0.076, abs=0.001)
  assert (result.low, result.high) == pytest.approx((-0.85, 7.50), abs=0.01)
  assert not result.excludes_zero
  assert 'no measurable difference at 3 seeds' in result.claim('student - teacher')


def test_a_clear_effect_is_claimed_with_its_interval():
  result = stats.paired([10, 11, 12, 13, 14], [1, 2, 3, 4, 4.5])
  assert result.excludes_zero and result.low > 0
  text = result.claim('x - y')
  assert text.startswith('x - y: +9.10 [') and '95% interval' in text


def test_one_seed_and_zero_spread():
  one = stats.paired([3.0], [1.0])
  assert (one.mean, one.sd, one.low, one.p_value) == (2.0, None, None, None)
  assert not one.excludes_zero
  assert 'no measurable difference at 1 seed ' in one.claim('d')
  # Three seeds that each gain the same: an effect with no measured spread
  # gets no interval and no p-value (not "+1.00 [+1.00, +1.00], p = 0").
  flat = stats.paired([2, 3, 4], [1, 2, 3])
  assert flat.sd == 0 and not flat.spread_measured
  assert (flat.low, flat.high, flat.t, flat.p_value) == (None,) * 4
  assert not flat.excludes_zero
  assert flat.interval_text() == '+1.00 (every seed; spread not measured)'
  assert flat.claim('d') == ('d: every one of the 3 seeds gave +1.00; spread '
                             'not measured, no interval')
  # Equal gains that float rounding makes differ by ~1e-14 are spread-free too.
  rounded = stats.paired([100 * 0.57, 100 * 0.58], [100 * 0.29, 100 * 0.30])
  assert not rounded.spread_measured and rounded.p_value is None


def test_bad_inputs():
  with pytest.raises(ValueError, match='equal'):
    stats.paired([1, 2], [1])
  with pytest.raises(ValueError, match='finite'):
    stats.paired([1, float('nan')], [1, 2])


def test_binomial_standard_error():
  # One accuracy near 50% on 932 images: about 1.6 points.
  assert 100 * stats.binomial_se(0.5, 932) == pytest.approx(1.638, abs=1e-3)
  assert stats.binomial_se(1.0, 10) == 0.0
  with pytest.raises(ValueError):
    stats.binomial_se(1.5, 10)


def test_mcnemar_matches_the_exact_binomial_test():
  # 10 images: A alone right on 6, B alone right on 1, both right on 2.
  a = [1, 1, 1, 1, 1, 1, 0, 1, 1, 0]
  b = [0, 0, 0, 0, 0, 0, 1, 1, 1, 0]
  result = stats.mcnemar(a, b)
  assert (result.only_a, result.only_b, result.both, result.neither) == (
      6, 1, 2, 1)
  assert result.num_images == 10 and result.discordant == 7
  # P(X <= 1 | n=7, p=1/2) = 8/128, two-sided 16/128.
  assert result.p_value == pytest.approx(16 / 128)
  assert stats.mcnemar(a, a).p_value == 1.0
  with pytest.raises(ValueError, match='equal'):
    stats.mcnemar([1, 0], [1])


def test_holm_adjusts_in_order_and_keeps_missing_values():
  # m = 3: sorted 0.01, 0.02, 0.04 -> 0.03, 0.04, 0.04 (monotone).
  assert stats.holm([0.04, 0.01, None, 0.02]) == pytest.approx(
      [0.04, 0.03, None, 0.04])
  assert stats.holm([0.5, 0.6]) == [1.0, 1.0]
  assert stats.holm([]) == []
  with pytest.raises(ValueError):
    stats.holm([1.5])
