"""Paired comparisons over seeds: the one statistics helper of results tables.

Every claim in README.md / docs/results.md compares two arms run on the same
seeds (a student and its teacher, two students from the same teacher). Per
seed the difference is taken, then its mean, standard deviation, a Student-t
confidence interval and the two-sided p-value of "the mean difference is 0"
(scipy's `ttest_rel` on the pairs). A difference is claimed only when its
interval excludes zero; otherwise the text says "no measurable difference at
N seeds". `binomial_se` is the sampling error of one accuracy on a test set
of n images, the floor below which no single run can resolve a difference.
All values are in the units given (percentage points for accuracies in %).
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
    low / high: the `confidence` t-interval of the mean (None for one seed).
    t / p_value: the paired t statistic and its two-sided p-value (None for
      one seed, or NaN-free zero spread: t infinite, p 0).
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

  def interval_text(self, digits: int = 2) -> str:
    """'+3.32 [-0.85, +7.50]' (the mean alone for one seed)."""
    text = f'{self.mean:+.{digits}f}'
    if self.low is None:
      return text
    return f'{text} [{self.low:+.{digits}f}, {self.high:+.{digits}f}]'

  def claim(self, what: str, digits: int = 2) -> str:
    """One sentence: the effect with its interval, or that there is none.

    `what` names the comparison ('student - teacher').
    """
    seeds = f'{self.n} seed{"s" if self.n != 1 else ""}'
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
  if se == 0:
    t = math.copysign(math.inf, mean) if mean else 0.0
    p_value = 0.0 if mean else 1.0
    low = high = mean
  else:
    t = mean / se
    p_value = float(2 * scipy_stats.t.sf(abs(t), df=n - 1))
    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * se
    low, high = mean - half, mean + half
  return Paired(tuple(float(d) for d in diff), mean, sd, low, high, float(t),
                p_value, confidence)


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
