"""Paired comparisons over seeds: the one statistics helper of results tables.

Every claim in README.md / docs/results.md compares two arms run on the same
seeds (a student and its teacher, two students from the same teacher). Per
seed the difference is taken, then its mean, standard deviation, a Student-t
confidence interval and the two-sided p-value of "the mean difference is 0"
(scipy's `ttest_rel` on the pairs). A difference is claimed only when its
interval excludes zero; otherwise the text says "no measurable difference at
N seeds". When every seed gave the same difference the spread is not
measured (no interval, no p-value: "every seed gave +x"), never a zero-width
interval. `binomial_se` is the sampling error of one accuracy on a test set
of n images, the floor below which no single run can resolve a difference.
`mcnemar` compares two classifiers on the same images (one seed), `holm`
corrects the p-values of several pre-declared comparisons. All values are in
the units given (percentage points for accuracies in %).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import numpy as np
from scipy import stats as scipy_stats


@dataclasses.dataclass(frozen=True)
class Paired:
  """The paired difference `a - b` over seeds.

  Attributes:
    differences: per seed, in the inputs' units.
    mean / sd: over seeds (sd with n - 1; None for one seed).
    low / high: the `confidence` t-interval of the mean (None for one seed,
      and when every difference is the same: the spread is not measured).
    t / p_value: the paired t statistic and its two-sided p-value (None in
      the same two cases).
    confidence: e.g. 0.95.
  """
  differences: tuple[float, ...]
  mean: float
  sd: Optional[float]
  low: Optional[float]
  high: Optional[float]
  t: Optional[float]
  p_value: Optional[float]
  confidence: float = 0.95

  @property
  def n(self) -> int:
    return len(self.differences)

  @property
  def excludes_zero(self) -> bool:
    """True when the interval lies entirely above or below zero."""
    return (self.low is not None and self.high is not None
            and (self.low > 0 or self.high < 0))

  @property
  def spread_measured(self) -> bool:
    """False for one seed or when every seed gave the same difference."""
    return self.sd is not None and self.sd > 0

  def interval_text(self, digits: int = 2) -> str:
    """'+3.32 [-0.85, +7.50]'; the mean alone for one seed; '+0.25 (every
    seed; spread not measured)' when the differences do not vary."""
    text = f'{self.mean:+.{digits}f}'
    if self.low is not None:
      return f'{text} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]'
    if self.n > 1:
      return f'{text} (every seed; spread not measured)'
    return text

  def claim(self, what: str, digits: int = 2) -> str:
    """One sentence: the effect with its interval, or that there is none.

    `what` names the comparison ('student - teacher').
    """
    seeds = f'{self.n} seed{"s" if self.n != 1 else ""}'
    if self.n > 1 and not self.spread_measured:
      return (f'{what}: every one of the {seeds} gave {self.mean:+.{digits}f}; '
              'spread not measured, no interval')
    if not self.excludes_zero:
      return (f'{what}: no measurable difference at {seeds} '
              f'({self.interval_text(digits)}'
              + (f', p = {self.p_value:.2g}' if self.p_value is not None
                 else '') + ')')
    return (f'{what}: {self.interval_text(digits)} '
            f'({100 * self.confidence:.0f}% interval, p = {self.p_value:.2g}, '
            f'{seeds})')


def paired(a: Sequence[float], b: Sequence[float],
           confidence: float = 0.95) -> Paired:
  """The paired difference a - b (same seeds, same order).

  Raises:
    ValueError when the lengths differ or are 0, or a value is not finite.
  """
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
    raise ValueError(f'paired: need two equal, non-empty lists, received '
                     f'{len(a)} and {len(b)} values')
  if not (np.isfinite(a).all() and np.isfinite(b).all()):
    raise ValueError('paired: values must be finite')
  if not 0 < confidence < 1:
    raise ValueError(f'confidence must be in (0, 1), received {confidence}')
  diff = a - b
  mean = float(diff.mean())
  n = len(diff)
  if n < 2:
    return Paired(tuple(float(d) for d in diff), mean, None, None, None, None,
                  None, confidence)
  sd = float(diff.std(ddof=1))
  se = sd / math.sqrt(n)
  # Every seed the same (up to float rounding of the inputs' differences):
  # no spread to build an interval from.
  if sd <= 1e-9 * max(1.0, abs(mean)):
    return Paired(tuple(float(d) for d in diff), mean, 0.0, None, None, None,
                  None, confidence)
  t = mean / se
  p_value = float(2 * scipy_stats.t.sf(abs(t), df=n - 1))
  half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * se
  return Paired(tuple(float(d) for d in diff), mean, sd, mean - half,
                mean + half, float(t), p_value, confidence)


def mean_sd(values: Sequence[float]) -> tuple[float, Optional[float]]:
  """(mean, sample standard deviation; None for one value)."""
  values = np.asarray(values, np.float64)
  if len(values) == 0:
    raise ValueError('mean_sd: no values')
  return (float(values.mean()),
          float(values.std(ddof=1)) if len(values) > 1 else None)


def binomial_se(accuracy: float, num_images: int) -> float:
  """Standard error of one accuracy (a fraction in [0, 1]) on `num_images`.

  sqrt(p (1 - p) / n), in the same units as `accuracy`.
  """
  if not 0 <= accuracy <= 1 or num_images < 1:
    raise ValueError(f'binomial_se: accuracy in [0, 1] and num_images >= 1, '
                     f'received {accuracy}, {num_images}')
  return math.sqrt(accuracy * (1 - accuracy) / num_images)


@dataclasses.dataclass(frozen=True)
class McNemar:
  """Two classifiers on the same images: who is right where the other is not.

  Attributes:
    only_a / only_b: images only A (only B) classifies correctly.
    both / neither: images both (neither) classify correctly.
    p_value: exact two-sided McNemar test (binomial on the discordant
      images, p = 0.5); 1.0 when there is no discordant image.
  """
  only_a: int
  only_b: int
  both: int
  neither: int
  p_value: float

  @property
  def num_images(self) -> int:
    return self.only_a + self.only_b + self.both + self.neither

  @property
  def discordant(self) -> int:
    return self.only_a + self.only_b


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> McNemar:
  """Exact McNemar test of A vs B from per-image correctness (same order).

  Raises:
    ValueError when the lengths differ or are 0.
  """
  a = np.asarray(correct_a, bool)
  b = np.asarray(correct_b, bool)
  if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
    raise ValueError(f'mcnemar: need two equal, non-empty lists, received '
                     f'{len(a)} and {len(b)} values')
  only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
  discordant = only_a + only_b
  p_value = (1.0 if discordant == 0 else float(
      scipy_stats.binomtest(only_a, discordant, 0.5).pvalue))
  return McNemar(only_a, only_b, int((a & b).sum()), int((~a & ~b).sum()),
                 min(1.0, p_value))


def holm(p_values: Sequence[Optional[float]]) -> list[Optional[float]]:
  """Holm-adjusted p-values (same order; None stays None and is not counted).

  With m p-values sorted ascending, the i-th (0-based) becomes
  max over j <= i of min(1, (m - j) p_(j)): reject where adjusted < alpha
  controls the family-wise error at alpha.
  """
  known = [(p, i) for i, p in enumerate(p_values) if p is not None]
  m = len(known)
  adjusted: list[Optional[float]] = [None] * len(p_values)
  running = 0.0
  for rank, (p, i) in enumerate(sorted(known)):
    if not 0 <= p <= 1:
      raise ValueError(f'holm: p-values must be in [0, 1], received {p}')
    running = max(running, min(1.0, (m - rank) * p))
    adjusted[i] = running
  return adjusted
