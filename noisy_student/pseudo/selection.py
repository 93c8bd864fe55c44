"""Confident pseudo-label selection and class balancing (pure NumPy, no files).

The teacher's top-1 class of an unlabeled image is its pseudo label and the
top-1 probability its confidence. Filtering (the original's filter_unlabel.py)
runs in two passes over the prediction shards:

1. statistics: per unit (one prediction file = one shard and worker), a
   histogram `[num_classes, NUM_BINS]` of how many images of each pseudo class
   fall in each confidence bin. Bin b holds probabilities in
   [THRESHOLDS[b], THRESHOLDS[b + 1]); the last bin holds p >= 1.0.
2. selection: from the summed histograms, one `AllocationPlan` fixes for every
   class how many copies each of its images gets, so that each class ends with
   exactly `num_image` output records, and how the images of the one bin that
   is only partly kept are shared among the units. Each unit then decides its
   records' copy counts alone (`unit_copies`), without seeing other units.

Exact balancing (the default). For a class with T eligible images
(min_threshold <= p <= max_prob) and target K:
* T >= K: the K most confident images are kept once (q = 0 base copies, r = K
  extra copies);
* T < K with upsampling: every image gets q = K // T copies and the r = K % T
  most confident get one more;
* without upsampling or with use_all: every eligible image is kept once.
"Most confident" works on the 0.01 bins: all images above the boundary bin get
the extra copy; the boundary bin's remaining quota is split among units in
proportion to their images in that bin (largest remainder, ties in unit order),
and inside a unit the most confident images (ties: file order) take it.

Random balancing (`balance='random'`, the original's rule): the threshold is the
highest bin edge whose cumulative count reaches K, and each image above it gets
int(c) + Bernoulli(c - int(c)) copies with c = K / T_above.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping, Sequence

import numpy as np

from noisy_student.core import config as config_lib
from noisy_student.runtime import errors

# Bin edges of the original: 0.00, 0.01, ..., 1.00 (float64, i / 100).
THRESHOLDS = np.arange(101, dtype=np.float64) / 100.0
NUM_BINS = len(THRESHOLDS)
BALANCE_MODES = ('exact', 'random')
# `boundary_lo/hi` of a class that has no partly kept bin.
NO_BOUNDARY = NUM_BINS


@dataclasses.dataclass(frozen=True)
class Settings:
  """The selection settings a plan is built for (the filter flags)."""
  num_label_classes: int = config_lib.doc(
      dataclasses.MISSING, 'Classes C of the teacher\'s softmax.')
  num_image: int = config_lib.doc(
      dataclasses.MISSING, 'Images per class K after balancing.')
  min_threshold: float = config_lib.doc(
      0.0, 'Keep images whose top-1 probability is >= this.')
  max_prob: float = config_lib.doc(
      2.0, 'Keep images whose top-1 probability is <= this (it can exceed 1 '
      'by rounding).')
  upsample: bool = config_lib.doc(
      True, 'Duplicate images of classes with fewer than num_image images.')
  use_top: bool = config_lib.doc(
      True, 'Keep the most confident images of abundant classes; false: a '
      'seeded random choice.')
  use_all: bool = config_lib.doc(
      False, 'Keep every image above the threshold once, without balancing.')
  balance: str = config_lib.doc(
      'exact', 'exact: every class gets exactly num_image records '
      '(deterministic); random: the original rule (each image above the '
      'class threshold gets a random number of copies with mean num_image / '
      'count).', choices=BALANCE_MODES)
  seed: int = config_lib.doc(12345, 'Seed of shuffling and random choices.')

  def __post_init__(self):
    config_lib.check_ranges(self, {'num_label_classes': (1, None),
                                   'num_image': (0, None),
                                   'min_threshold': (0.0, 1.0),
                                   'max_prob': (0.0, None), 'seed': (0, None)})
    if self.max_prob < self.min_threshold:
      raise errors.ConfigError(
          f'{errors.field_name("max_prob")}={self.max_prob} is below '
          f'{errors.field_name("min_threshold")}={self.min_threshold}')
    config_lib.check_choice(self, 'balance', BALANCE_MODES)

  def to_json(self) -> dict:
    return dataclasses.asdict(self)


# --------------------------------------------------------------------------
# Per-record quantities.
# --------------------------------------------------------------------------
def default_images_per_class(num_images: int, num_classes: int) -> int:
  """The balance target when none is given: the predicted images spread
  evenly over the classes (at least 1)."""
  return max(1, int(num_images) // int(num_classes))


def top1(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Pseudo labels and confidences of a batch of softmax rows.

  Args:
    probabilities: float32 [n, C].

  Returns:
    labels int32 [n] (argmax, first index on ties, as records.serialize_*) and
    probs float32 [n] (the top-1 probability).
  """
  probabilities = np.asarray(probabilities)
  labels = np.argmax(probabilities, axis=1).astype(np.int32)
  probs = probabilities[np.arange(len(labels)), labels].astype(np.float32)
  return labels, probs


def bin_index(probs: np.ndarray) -> np.ndarray:
  """Confidence bin of each probability: int64 [n] in [0, NUM_BINS).

  Compares like the original (a float32 probability against the float64 edge
  i / 100), so p = 0.3 (float32 0.30000001) falls in bin 30. Probabilities are
  expected finite and >= 0 (checked by the caller); negatives clip to bin 0.
  """
  bins = np.searchsorted(THRESHOLDS, np.asarray(probs, np.float64),
                         side='right') - 1
  return np.maximum(bins, 0)


def eligible_mask(probs: np.ndarray, min_threshold: float,
                  max_prob: float) -> np.ndarray:
  """bool [n]: min_threshold <= p <= max_prob (float64 comparison)."""
  probs = np.asarray(probs, np.float64)
  return (probs >= min_threshold) & (probs <= max_prob)


def class_bin_counts(labels: np.ndarray, bins: np.ndarray, num_classes: int,
                     mask: np.ndarray | None = None) -> np.ndarray:
  """Histogram int64 [num_classes, NUM_BINS] of (label, bin) pairs.

  Args:
    labels: int [n] in [0, num_classes).
    bins: int [n] in [0, NUM_BINS), from `bin_index`.
    num_classes: C.
    mask: optional bool [n]; only True records are counted.
  """
  labels = np.asarray(labels, np.int64)
  bins = np.asarray(bins, np.int64)
  if mask is not None:
    labels, bins = labels[mask], bins[mask]
  flat = np.bincount(labels * NUM_BINS + bins,
                     minlength=num_classes * NUM_BINS)
  return flat.reshape(num_classes, NUM_BINS).astype(np.int64)


# --------------------------------------------------------------------------
# Histogram JSON (sparse: only classes that have images).
# --------------------------------------------------------------------------
def hist_to_json(hist: np.ndarray) -> dict[str, list[int]]:
  """{'<class>': [NUM_BINS counts]} for the classes with a nonzero row."""
  return {str(c): [int(v) for v in row]
          for c, row in enumerate(np.asarray(hist)) if row.any()}


def hist_from_json(obj: Mapping[str, Sequence[int]],
                   num_classes: int) -> np.ndarray:
  """Inverse of `hist_to_json`; a ValueError names the bad class or row."""
  hist = np.zeros((num_classes, NUM_BINS), np.int64)
  for key, row in obj.items():
    c = int(key)
    if not 0 <= c < num_classes:
      raise ValueError(f'class {key} is outside [0, {num_classes})')
    if len(row) != NUM_BINS:
      raise ValueError(f'class {key} has {len(row)} bins, expected {NUM_BINS}')
    hist[c] = row
  return hist


# --------------------------------------------------------------------------
# Per-class rules from the merged histogram.
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ClassRules:
  """What every class gets, from the summed eligible histogram. Arrays [C].

  Attributes:
    eligible: T, eligible images of the class (all units).
    base_copies: q, copies of every eligible image.
    extra: r, how many images get one copy more (exact mode).
    boundary_lo, boundary_hi: inclusive bin range whose images compete for the
      extra copies; images in bins above boundary_hi all get one. NO_BOUNDARY
      when there is none. In random mode: lo is the threshold bin, hi = 100.
    above: eligible images in bins above boundary_hi (all units); random
      mode: images at or above the threshold (the original's T).
    threshold: lowest probability that can be kept (bin edge or min_threshold).
    copies: random mode: expected copies c of an image at or above threshold.
  """
  eligible: np.ndarray
  base_copies: np.ndarray
  extra: np.ndarray
  boundary_lo: np.ndarray
  boundary_hi: np.ndarray
  above: np.ndarray
  threshold: np.ndarray
  copies: np.ndarray

  @property
  def quota_total(self) -> np.ndarray:
    """Extra copies handed out inside the boundary bins: r - above. [C]."""
    return self.extra - self.above


def _exact_copies(t: int, k: int, settings: Settings) -> tuple[int, int]:
  """(q, r) for a class with t eligible images and target k."""
  if t == 0:
    return 0, 0
  if settings.use_all:
    return 1, 0
  if t >= k:
    return 0, k
  if settings.upsample:
    return k // t, k % t
  return 1, 0


def class_rules(eligible_hist: np.ndarray, settings: Settings) -> ClassRules:
  """Per-class copies and boundary bins from the summed eligible histogram.

  Args:
    eligible_hist: int64 [C, NUM_BINS], eligible images only, all units.
    settings: the selection settings.
  """
  hist = np.asarray(eligible_hist, np.int64)
  num_classes = hist.shape[0]
  k = settings.num_image
  min_bin = int(bin_index([settings.min_threshold])[0])
  out = {name: np.zeros(num_classes, np.int64) for name in
         ('eligible', 'base_copies', 'extra', 'above')}
  out['boundary_lo'] = np.full(num_classes, NO_BOUNDARY, np.int64)
  out['boundary_hi'] = np.full(num_classes, NO_BOUNDARY, np.int64)
  out['threshold'] = np.full(num_classes, settings.min_threshold, np.float64)
  out['copies'] = np.zeros(num_classes, np.float64)
  for c in range(num_classes):
    row = hist[c]
    t = int(row.sum())
    out['eligible'][c] = t
    # at_or_above[b]: eligible images in bins >= b; nonincreasing in b.
    at_or_above = np.cumsum(row[::-1])[::-1]
    if settings.balance == 'random':
      thr_bin = min_bin
      if settings.use_top and not settings.use_all:
        reached = np.nonzero(at_or_above[min_bin:] >= k)[0]
        if len(reached) and k > 0:
          thr_bin = min_bin + int(reached[-1])
      total = int(at_or_above[thr_bin])
      copies = 0.0
      if total:
        copies = 1.0 if settings.use_all else k / total
        if not settings.upsample:
          copies = min(copies, 1.0)
      out['boundary_lo'][c], out['boundary_hi'][c] = thr_bin, NUM_BINS - 1
      out['threshold'][c] = max(THRESHOLDS[thr_bin], settings.min_threshold)
      out['copies'][c] = copies
      out['above'][c] = total
      continue
    q, r = _exact_copies(t, k, settings)
    out['base_copies'][c], out['extra'][c] = q, r
    out['copies'][c] = q + (r / t if t else 0.0)
    if r == 0:
      continue
    if not settings.use_top:
      out['boundary_lo'][c], out['boundary_hi'][c] = 0, NUM_BINS - 1
      continue
    # The boundary bin b: fewer than r images above it, at least r from it up.
    b = int(np.nonzero(at_or_above >= r)[0][-1])
    out['boundary_lo'][c] = out['boundary_hi'][c] = b
    out['above'][c] = int(at_or_above[b + 1]) if b + 1 < NUM_BINS else 0
    if q == 0:
      out['threshold'][c] = max(THRESHOLDS[b], settings.min_threshold)
  return ClassRules(**out)


def boundary_counts(unit_hist: np.ndarray, rules: ClassRules
                    ) -> tuple[np.ndarray, np.ndarray]:
  """One unit's eligible images inside / above each class's boundary bins.

  Args:
    unit_hist: int64 [C, NUM_BINS], the unit's eligible histogram.
    rules: from `class_rules`.

  Returns:
    (inside, above): int64 [C] each.
  """
  hist = np.asarray(unit_hist, np.int64)
  bins = np.arange(NUM_BINS)[None, :]
  lo, hi = rules.boundary_lo[:, None], rules.boundary_hi[:, None]
  inside = np.where((bins >= lo) & (bins <= hi), hist, 0).sum(axis=1)
  above = np.where(bins > hi, hist, 0).sum(axis=1)
  return inside, above


def split_quota(totals: np.ndarray, counts: np.ndarray) -> np.ndarray:
  """Splits each class's quota among units in proportion to their counts.

  Largest-remainder rounding: unit u gets floor(total * n_u / N) and the
  leftover goes one each to the largest remainders, ties to the earlier unit.
  Never gives a unit more than its count.

  Args:
    totals: int64 [C], quota per class, 0 <= totals[c] <= sum_u counts[u, c].
    counts: int64 [U, C], candidates per unit and class.

  Returns:
    int64 [U, C] summing to `totals` over units.
  """
  counts = np.asarray(counts, np.int64)
  totals = np.asarray(totals, np.int64)
  n = counts.sum(axis=0)
  if np.any(totals > n) or np.any(totals < 0):
    bad = int(np.nonzero((totals > n) | (totals < 0))[0][0])
    raise ValueError(f'class {bad}: quota {totals[bad]} is outside '
                     f'[0, {n[bad]}] candidates')
  safe_n = np.maximum(n, 1)
  product = totals[None, :] * counts
  quota = product // safe_n[None, :]
  remainder = product % safe_n[None, :]
  leftover = totals - quota.sum(axis=0)
  num_units = counts.shape[0]
  for c in np.nonzero(leftover)[0]:
    # Sort units by remainder (descending), then unit index (ascending).
    order = np.lexsort((np.arange(num_units), -remainder[:, c]))
    quota[order[:leftover[c]], c] += 1
  return quota


# --------------------------------------------------------------------------
# The allocation plan.
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class AllocationPlan:
  """Global allocation: every unit can write exactly its share from this.

  Attributes:
    settings: the selection settings.
    units: (shard_id, task) of every unit, in the fixed order used for ties.
    rules: per-class rules (`class_rules`).
    quota: int64 [U, C], boundary images of unit u and class c that get the
      extra copy (exact mode; zeros in random mode).
    unit_eligible: int64 [U, C], eligible images per unit and class (a check
      that the unit's predictions are those the plan was built from).
    expected_per_unit: int64 [U], output records of each unit (exact mode).
  """
  settings: Settings
  units: tuple[tuple[int, int], ...]
  rules: ClassRules
  quota: np.ndarray
  unit_eligible: np.ndarray
  expected_per_unit: np.ndarray

  @property
  def expected_per_class(self) -> np.ndarray:
    """Output records per class: int64 [C] (exact), float64 (random: mean)."""
    r = self.rules
    if self.settings.balance == 'random':
      return r.copies * r.above
    return r.base_copies * r.eligible + r.extra

  def unit_index(self, shard_id: int, task: int) -> int:
    try:
      return self.units.index((shard_id, task))
    except ValueError:
      raise ValueError(f'unit (shard {shard_id}, task {task}) is not in the '
                       'plan') from None

  def to_json(self) -> dict:
    r = self.rules
    return {
        'settings': self.settings.to_json(),
        'units': [list(u) for u in self.units],
        'thresholds': THRESHOLDS.tolist(),
        'classes': {
            name: getattr(r, name).tolist() for name in
            ('eligible', 'base_copies', 'extra', 'boundary_lo', 'boundary_hi',
             'above', 'threshold', 'copies')},
        'quota': self.quota.tolist(),
        'unit_eligible': self.unit_eligible.tolist(),
        'expected_per_unit': self.expected_per_unit.tolist(),
        'expected_per_class': self.expected_per_class.tolist(),
        'expected_total': float(self.expected_per_class.sum())
                          if self.settings.balance == 'random'
                          else int(self.expected_per_class.sum()),
    }

  @classmethod
  def from_json(cls, obj: Mapping) -> 'AllocationPlan':
    classes = obj['classes']
    rules = ClassRules(**{
        name: np.asarray(classes[name],
                         np.float64 if name in ('threshold', 'copies')
                         else np.int64)
        for name in ('eligible', 'base_copies', 'extra', 'boundary_lo',
                     'boundary_hi', 'above', 'threshold', 'copies')})
    num_classes = len(rules.eligible)
    num_units = len(obj['units'])
    return cls(
        settings=Settings(**obj['settings']),
        units=tuple((int(s), int(t)) for s, t in obj['units']),
        rules=rules,
        quota=np.asarray(obj['quota'], np.int64).reshape(num_units,
                                                         num_classes),
        unit_eligible=np.asarray(obj['unit_eligible'], np.int64).reshape(
            num_units, num_classes),
        expected_per_unit=np.asarray(obj['expected_per_unit'], np.int64))


def build_plan(settings: Settings, units: Sequence[tuple[int, int]],
               total_eligible: np.ndarray,
               unit_eligible_hists: Iterable[np.ndarray]) -> AllocationPlan:
  """Builds the allocation plan.

  Args:
    settings: the selection settings.
    units: (shard_id, task) per unit, in the order of `unit_eligible_hists`.
    total_eligible: int64 [C, NUM_BINS], the sum of all units' histograms.
    unit_eligible_hists: each unit's eligible histogram [C, NUM_BINS], read
      once, in `units` order (a generator keeps only one in memory).
  """
  units = tuple((int(s), int(t)) for s, t in units)
  rules = class_rules(total_eligible, settings)
  num_classes = rules.eligible.shape[0]
  inside = np.zeros((len(units), num_classes), np.int64)
  above = np.zeros((len(units), num_classes), np.int64)
  eligible = np.zeros((len(units), num_classes), np.int64)
  seen = 0
  for u, hist in enumerate(unit_eligible_hists):
    if u >= len(units):
      raise ValueError(f'more unit histograms than the {len(units)} units')
    inside[u], above[u] = boundary_counts(hist, rules)
    eligible[u] = np.asarray(hist).sum(axis=1)
    seen += 1
  if seen != len(units):
    raise ValueError(f'{seen} unit histograms for {len(units)} units')
  if not np.array_equal(eligible.sum(axis=0), rules.eligible):
    raise ValueError('the unit histograms do not sum to the total histogram')
  if settings.balance == 'random':
    quota = np.zeros_like(inside)
    expected = np.zeros(len(units), np.int64)
  else:
    quota = split_quota(rules.quota_total, inside)
    expected = (eligible * rules.base_copies[None, :] + above + quota).sum(1)
  return AllocationPlan(settings=settings, units=units, rules=rules,
                        quota=quota, unit_eligible=eligible,
                        expected_per_unit=expected)


# --------------------------------------------------------------------------
# Per-record decisions inside one unit.
# --------------------------------------------------------------------------
def unit_copies(labels: np.ndarray, probs: np.ndarray, plan: AllocationPlan,
                unit: int, rng: np.random.Generator) -> np.ndarray:
  """How many times each record of one unit is written.

  Args:
    labels: int [n], pseudo labels of the unit's records in file order.
    probs: float32 [n], their top-1 probabilities.
    plan: the allocation plan.
    unit: index of this unit in `plan.units`.
    rng: used by random mode and by exact mode with use_top=False; seed it
      from (seed, shard, task) so reruns repeat.

  Returns:
    int64 [n] copy counts; in exact mode they sum per class to the plan's
    quota for this unit.

  Raises:
    ValueError: the records do not match the histogram the plan was built from.
  """
  s, r = plan.settings, plan.rules
  labels = np.asarray(labels, np.int64)
  probs = np.asarray(probs, np.float32)
  elig = eligible_mask(probs, s.min_threshold, s.max_prob)
  bins = bin_index(probs)
  num_classes = len(r.eligible)
  have = np.bincount(labels[elig], minlength=num_classes)
  if not np.array_equal(have, plan.unit_eligible[unit]):
    c = int(np.nonzero(have != plan.unit_eligible[unit])[0][0])
    raise ValueError(
        f'class {c} has {have[c]} eligible records here but the plan counted '
        f'{plan.unit_eligible[unit][c]} for unit {plan.units[unit]}')
  lo, hi = r.boundary_lo[labels], r.boundary_hi[labels]
  if s.balance == 'random':
    draws = rng.random(len(labels))
    c = r.copies[labels]
    whole = np.floor(c)
    picked = elig & (bins >= lo)
    return np.where(picked, whole + (draws < c - whole), 0).astype(np.int64)

  copies = np.where(elig, r.base_copies[labels], 0).astype(np.int64)
  copies += (elig & (bins > hi)).astype(np.int64)
  idx = np.nonzero(elig & (bins >= lo) & (bins <= hi))[0]
  quota = plan.quota[unit]
  short = np.bincount(labels[idx], minlength=num_classes) < quota
  if short.any():
    c = int(np.nonzero(short)[0][0])
    raise ValueError(f'class {c}: the plan gives unit {plan.units[unit]} '
                     f'{quota[c]} boundary copies but it has fewer images '
                     'in the boundary bins')
  if s.use_top:
    key = -probs[idx].astype(np.float64)   # most confident first
  else:
    key = rng.random(len(idx))
  # Group by class; inside a class by key, then file order.
  order = idx[np.lexsort((idx, key, labels[idx]))]
  grouped = labels[order]
  rank = np.arange(len(order)) - np.searchsorted(grouped, grouped, 'left')
  copies[order[rank < quota[grouped]]] += 1
  return copies


def sample_quota(num_samples: int, num_units: int, unit: int) -> int:
  """Sample images per class that unit `unit` saves, so all units save
  `num_samples` per class in total (evenly spread)."""
  return (num_samples * (unit + 1)) // num_units - (num_samples * unit) // num_units
