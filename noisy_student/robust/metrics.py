"""ImageNet-A / -C / -P metrics as pure numpy functions, with their constants.

Conventions (the same in every results JSON of `eval_robustness`):

* errors and flip probabilities are fractions in [0, 1];
* corruption errors CE, mCE, flip rates FR / mFR and T5D / mT5D normalised by
  a baseline are percentages (100 = as bad as the baseline model);
* severities (ImageNet-C) and difficulties (ImageNet-P) are ints 1..5 / 1..3.

The protocols follow `hendrycks/robustness` (ImageNet-C/test.py,
ImageNet-P/test.py) and `hendrycks/natural-adv-examples` (eval.py); see
docs/robustness.md for the formulas.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from data import corruptions

# ---------------------------------------------------------------------------
# ImageNet-C.
# ---------------------------------------------------------------------------
# The corruption names and severities (data/corruptions.py, which writes them).
CORRUPTIONS = corruptions.BENCHMARK_CORRUPTIONS
EXTRA_CORRUPTIONS = corruptions.EXTRA_CORRUPTIONS
ALL_CORRUPTIONS = corruptions.CORRUPTION_NAMES
SEVERITIES = corruptions.SEVERITIES

# AlexNet top-1 error on ImageNet-C per severity 1..5 (fractions), from the
# hendrycks/robustness README table (up to commit 100bee8); its "Average"
# column is the mean of the five and is kept in ALEXNET_AVERAGE_ERRORS.
ALEXNET_ERRORS: dict[str, tuple[float, ...]] = {
    'gaussian_noise': (0.69528, 0.82542, 0.93554, 0.98138, 0.99452),
    'shot_noise': (0.71224, 0.85108, 0.93574, 0.98182, 0.99146),
    'impulse_noise': (0.78374, 0.89808, 0.94870, 0.98720, 0.99548),
    'defocus_blur': (0.65624, 0.73202, 0.85036, 0.91364, 0.94714),
    'glass_blur': (0.64308, 0.75054, 0.88806, 0.91622, 0.93344),
    'motion_blur': (0.58430, 0.70048, 0.82108, 0.89750, 0.92638),
    'zoom_blur': (0.70008, 0.76992, 0.80784, 0.84198, 0.87198),
    'snow': (0.71726, 0.88392, 0.86468, 0.91870, 0.94952),
    'frost': (0.61390, 0.79734, 0.88790, 0.89942, 0.93430),
    'fog': (0.67474, 0.76050, 0.84378, 0.87260, 0.94500),
    'brightness': (0.45140, 0.48502, 0.54048, 0.62166, 0.72440),
    'contrast': (0.64548, 0.76150, 0.88874, 0.97760, 0.99270),
    'elastic_transform': (0.52596, 0.70116, 0.55686, 0.64076, 0.80554),
    'pixelate': (0.52218, 0.54620, 0.73728, 0.87092, 0.91262),
    'jpeg_compression': (0.51002, 0.54718, 0.57294, 0.65458, 0.74778),
    'speckle_noise': (0.66192, 0.74440, 0.90246, 0.94548, 0.97268),
    'gaussian_blur': (0.54732, 0.70444, 0.82574, 0.89864, 0.95940),
    'spatter': (0.47196, 0.62194, 0.75052, 0.84132, 0.90182),
    'saturate': (0.59342, 0.65514, 0.51174, 0.70834, 0.82260),
}
ALEXNET_AVERAGE_ERRORS: dict[str, float] = {
    'gaussian_noise': 0.886428, 'shot_noise': 0.894468,
    'impulse_noise': 0.922640, 'defocus_blur': 0.819880,
    'glass_blur': 0.826268, 'motion_blur': 0.785948, 'zoom_blur': 0.798360,
    'snow': 0.866816, 'frost': 0.826572, 'fog': 0.819324,
    'brightness': 0.564592, 'contrast': 0.853204,
    'elastic_transform': 0.646056, 'pixelate': 0.717840,
    'jpeg_compression': 0.606500, 'speckle_noise': 0.845388,
    'gaussian_blur': 0.787108, 'spatter': 0.717512, 'saturate': 0.658248,
}
# AlexNet clean ImageNet top-1 error, used only by the relative mCE. The
# ImageNet-C paper prints 43.5%; 0.43478 is the torchvision AlexNet weights
# (top-1 56.522%) that hendrycks' test.py evaluates. Not checked against the
# paper's spreadsheet; any baseline results file overrides it.
ALEXNET_CLEAN_ERROR = 0.43478

# ---------------------------------------------------------------------------
# ImageNet-A: the 200 ImageNet-1k class indices it uses (ascending, so the
# i-th index belongs to the i-th of its sorted wnid folders).
# ---------------------------------------------------------------------------
IMAGENET_A_INDICES = (
    6, 11, 13, 15, 17, 22, 23, 27, 30, 37, 39, 42, 47, 50, 57, 70, 71, 76, 79,
    89, 90, 94, 96, 97, 99, 105, 107, 108, 110, 113, 124, 125, 130, 132, 143,
    144, 150, 151, 207, 234, 235, 254, 277, 283, 287, 291, 295, 298, 301, 306,
    307, 308, 309, 310, 311, 313, 314, 315, 317, 319, 323, 324, 326, 327, 330,
    334, 335, 336, 347, 361, 363, 372, 378, 386, 397, 400, 401, 402, 404, 407,
    411, 416, 417, 420, 425, 428, 430, 437, 438, 445, 456, 457, 461, 462, 470,
    472, 483, 486, 488, 492, 496, 514, 516, 528, 530, 539, 542, 543, 549, 552,
    557, 561, 562, 569, 572, 573, 575, 579, 589, 606, 607, 609, 614, 626, 627,
    640, 641, 642, 643, 658, 668, 677, 682, 684, 687, 701, 704, 719, 736, 746,
    749, 752, 758, 763, 765, 768, 773, 774, 776, 779, 780, 786, 792, 797, 802,
    803, 804, 813, 815, 820, 823, 831, 833, 835, 839, 845, 847, 850, 859, 862,
    870, 879, 880, 888, 890, 897, 900, 907, 913, 924, 932, 933, 934, 937, 943,
    945, 947, 951, 954, 956, 957, 959, 971, 972, 980, 981, 984, 986, 987, 988)

# ---------------------------------------------------------------------------
# ImageNet-P.
# ---------------------------------------------------------------------------
# The 10 benchmark perturbations and the 4 extra ("validation") ones.
PERTURBATIONS = (
    'gaussian_noise', 'shot_noise', 'motion_blur', 'zoom_blur', 'snow',
    'brightness', 'translate', 'rotate', 'tilt', 'scale')
EXTRA_PERTURBATIONS = ('speckle_noise', 'gaussian_blur', 'spatter', 'shear')
ALL_PERTURBATIONS = PERTURBATIONS + EXTRA_PERTURBATIONS
DIFFICULTIES = (1, 2, 3)


def is_noise_perturbation(name: str) -> bool:
  """Noise sequences compare every frame with frame 0 (test.py's rule)."""
  return 'noise' in name


# ---------------------------------------------------------------------------
# Top-k and ImageNet-A.
# ---------------------------------------------------------------------------
def _check_logits(logits, labels=None) -> tuple[np.ndarray, np.ndarray | None]:
  logits = np.asarray(logits)
  if logits.ndim != 2:
    raise ValueError(f'logits must be [batch, classes], got shape '
                     f'{logits.shape}')
  if labels is None:
    return logits, None
  labels = np.asarray(labels).astype(np.int64).reshape(-1)
  if labels.shape[0] != logits.shape[0]:
    raise ValueError(f'{labels.shape[0]} labels for {logits.shape[0]} logits')
  return logits, labels


def top_k_correct(logits, labels, k: int = 1) -> np.ndarray:
  """bool [N]: the label is among the k largest logits (ties: lower index).

  Args:
    logits: float [N, C].
    labels: int [N], 0-based.
    k: 1 <= k <= C.
  """
  logits, labels = _check_logits(logits, labels)
  if not 1 <= k <= logits.shape[1]:
    raise ValueError(f'k must be in [1, {logits.shape[1]}], received: {k}')
  top = np.argsort(-logits, axis=1, kind='stable')[:, :k]
  return np.any(top == labels[:, None], axis=1)


def top_k_error(logits, labels, k: int = 1) -> float:
  """Fraction of examples whose label is not in the top k."""
  correct = top_k_correct(logits, labels, k)
  if correct.size == 0:
    raise ValueError('no examples')
  return float(1.0 - correct.mean())


def imagenet_a_predictions(logits,
                           indices: Sequence[int] = IMAGENET_A_INDICES
                           ) -> np.ndarray:
  """int64 [N]: argmax over `logits[:, indices]`, as 1000-class indices."""
  logits, _ = _check_logits(logits)
  indices = np.asarray(indices, np.int64)
  if indices.max() >= logits.shape[1]:
    raise ValueError(f'ImageNet-A needs {indices.max() + 1}+ logits, the model '
                     f'has {logits.shape[1]}')
  return indices[np.argmax(logits[:, indices], axis=1)]


def imagenet_a_correct(logits, labels,
                       indices: Sequence[int] = IMAGENET_A_INDICES
                       ) -> np.ndarray:
  """bool [N]: the 200-class prediction equals the 1000-class label."""
  _, labels = _check_logits(logits, labels)
  return imagenet_a_predictions(logits, indices) == labels


# ---------------------------------------------------------------------------
# ImageNet-C: CE, mCE, relative mCE.
# ---------------------------------------------------------------------------
def alexnet_baseline() -> dict:
  """The AlexNet ImageNet-C errors in the shape of a results JSON."""
  return {
      'model': 'alexnet',
      'errors': {c: {str(s): e for s, e in zip(SEVERITIES, errs)}
                 for c, errs in ALEXNET_ERRORS.items()},
      'clean_error': ALEXNET_CLEAN_ERROR,
  }


def _by_severity(errors: Mapping) -> dict[int, float]:
  return {int(s): float(e) for s, e in errors.items()}


def corruption_error(errors: Mapping, baseline: Mapping) -> float:
  """CE in percent: 100 * sum_s E_s / sum_s B_s over the severities in `errors`.

  With all five severities this equals 100 * mean_s E_s / (baseline average),
  the augmix / hendrycks definition.

  Args:
    errors: severity (int or str) -> top-1 error of the model (fraction).
    baseline: severity -> top-1 error of the baseline model (fraction).
  """
  errors, baseline = _by_severity(errors), _by_severity(baseline)
  missing = sorted(set(errors) - set(baseline))
  if missing:
    raise ValueError(f'the baseline has no error for severities {missing}')
  denominator = sum(baseline[s] for s in errors)
  if not errors or denominator <= 0:
    raise ValueError('the baseline errors must be positive')
  return 100.0 * sum(errors.values()) / denominator


def relative_corruption_error(errors: Mapping, clean_error: float,
                              baseline: Mapping,
                              baseline_clean_error: float) -> float:
  """Relative CE in percent.

  100 * sum_s (E_s - E_clean) / sum_s (B_s - B_clean) over the severities in
  `errors`: how much the error grows under corruption, relative to how much
  the baseline's grows.
  """
  errors, baseline = _by_severity(errors), _by_severity(baseline)
  missing = sorted(set(errors) - set(baseline))
  if missing:
    raise ValueError(f'the baseline has no error for severities {missing}')
  denominator = sum(baseline[s] - baseline_clean_error for s in errors)
  if not errors or denominator <= 0:
    raise ValueError('the baseline corruption errors must exceed its clean '
                     f'error (denominator {denominator})')
  return 100.0 * sum(e - clean_error for e in errors.values()) / denominator


def _mean(values: Sequence[float]) -> float | None:
  return float(np.mean(values)) if len(values) else None


def _or_none(function, *args) -> float | None:
  """function(*args), or None where it is undefined (a zero denominator)."""
  try:
    return function(*args)
  except ValueError:
    return None


def _mean_or_none(values) -> float | None:
  """The mean, or None if empty or any value is None (undefined)."""
  values = list(values)
  if not values or any(v is None for v in values):
    return None
  return float(np.mean(values))


def summarize_corruptions(errors: Mapping[str, Mapping],
                          baseline: Mapping | None = None,
                          clean_error: float | None = None) -> dict:
  """mCE and friends from per-corruption, per-severity errors.

  Args:
    errors: corruption name -> {severity: top-1 error (fraction)}.
    baseline: a results dict with `errors` in the same shape and optionally
      `clean_error` and `model` (e.g. `alexnet_baseline()` or another run's
      results JSON). None: report unnormalised errors only.
    clean_error: the model's clean top-1 error, for the relative mCE.

  Returns:
    A dict with `corruption_error` (mean over severities, per corruption),
    `mean_error` (over the 15 present, the "unnormalised mCE"), and, with a
    baseline, `ce` / `mce` (percent) and, given both clean errors,
    `relative_ce` / `relative_mce`. The 4 extra corruptions are summarised
    under `extra` the same way. `complete` is False when some of the 15 are
    missing (listed in `missing`); the means are then over those present.
    A CE is None where undefined (the baseline's error, or for the relative
    CE its error increase over clean, is not positive); a mean including an
    undefined CE is None too.
  """
  unknown = sorted(set(errors) - set(ALL_CORRUPTIONS))
  if unknown:
    raise ValueError(f'unknown corruptions {unknown}; expected names from '
                     f'{ALL_CORRUPTIONS}')
  summary: dict = {
      'corruption_error': {c: float(np.mean(list(_by_severity(e).values())))
                           for c, e in errors.items()},
      'missing': [c for c in CORRUPTIONS if c not in errors],
  }
  summary['complete'] = not summary['missing']
  base_errors = baseline.get('errors', {}) if baseline else {}
  base_clean = baseline.get('clean_error') if baseline else None
  if baseline:
    summary['baseline'] = baseline.get('model', 'baseline')
  relative = clean_error is not None and base_clean is not None

  def group(names: Sequence[str]) -> dict:
    present = [c for c in names if c in errors]
    out: dict = {'mean_error': _mean([summary['corruption_error'][c]
                                      for c in present])}
    if baseline:
      normalised = [c for c in present if c in base_errors]
      out['ce'] = {c: _or_none(corruption_error, errors[c], base_errors[c])
                   for c in normalised}
      out['mce'] = _mean_or_none(out['ce'].values())
      if relative:
        out['relative_ce'] = {
            c: _or_none(relative_corruption_error, errors[c], clean_error,
                        base_errors[c], base_clean)
            for c in normalised}
        out['relative_mce'] = _mean_or_none(out['relative_ce'].values())
    return out

  summary.update(group(CORRUPTIONS))
  summary['extra'] = group(EXTRA_CORRUPTIONS)
  return summary


# ---------------------------------------------------------------------------
# ImageNet-P: flip probability, top-5 distance, mFR, mT5D.
# ---------------------------------------------------------------------------
def reference_pairs(num_frames: int, *, noise: bool,
                    difficulty: int = 1) -> list[tuple[int, int]]:
  """(reference frame, frame) pairs compared in one sequence.

  Noise perturbations: every frame j >= 1 against frame 0 (the difficulty
  only picks the `<name>_<d>` folder). Other perturbations: step =
  difficulty; for each offset i < step, consecutive frames of
  i, i + step, i + 2 step, ... are compared.
  """
  if difficulty < 1:
    raise ValueError(f'difficulty must be >= 1, received: {difficulty}')
  if noise:
    return [(0, j) for j in range(1, num_frames)]
  pairs = []
  for offset in range(difficulty):
    frames = list(range(offset, num_frames, difficulty))
    pairs += list(zip(frames[:-1], frames[1:]))
  return pairs


def _pairs_or_raise(num_frames: int, noise: bool, difficulty: int):
  pairs = reference_pairs(num_frames, noise=noise, difficulty=difficulty)
  if not pairs:
    raise ValueError(f'a sequence of {num_frames} frames has no frame pairs at '
                     f'difficulty {difficulty}')
  return pairs


def video_flip_rate(predictions, *, noise: bool, difficulty: int = 1) -> float:
  """Fraction of compared frame pairs whose top-1 predictions differ.

  Args:
    predictions: int [frames], the top-1 class of each frame.
  """
  predictions = np.asarray(predictions).reshape(-1)
  pairs = _pairs_or_raise(len(predictions), noise, difficulty)
  return float(np.mean([predictions[a] != predictions[b] for a, b in pairs]))


def flip_probability(videos: Sequence, *, noise: bool,
                     difficulty: int = 1) -> float:
  """Mean over videos of `video_flip_rate` (each video weighs the same)."""
  if not len(videos):
    raise ValueError('no videos')
  return float(np.mean([video_flip_rate(v, noise=noise, difficulty=difficulty)
                        for v in videos]))


def _ranks(logits: np.ndarray) -> np.ndarray:
  """1-based rank of each class (1 = largest logit; ties by class index)."""
  order = np.argsort(-logits, kind='stable')
  ranks = np.empty_like(order)
  ranks[order] = np.arange(1, logits.shape[-1] + 1)
  return ranks


def top5_rank_distance(reference_logits, logits) -> float:
  """Top-5 distance between two frames' rankings.

  sigma[k] = rank in `logits` of the class ranked k+1 in `reference_logits`;
  distance = sum_{k<5} |k - min(sigma[k] - 1, 5)|: 0 when the top-5 list is
  unchanged, larger the further its members moved (or left the top 5).
  """
  reference_logits = np.asarray(reference_logits).reshape(-1)
  logits = np.asarray(logits).reshape(-1)
  if reference_logits.shape[0] < 5:
    raise ValueError('top-5 distance needs at least 5 classes')
  order = np.argsort(-reference_logits, kind='stable')[:5]
  sigma = _ranks(logits)[order]
  return float(np.sum(np.abs(np.arange(5) - np.minimum(sigma - 1, 5))))


def zipf_rank_distance(reference_logits, logits) -> float:
  """Zipf distance: sum_k |1/(k+1) - 1/sigma[k]| / (k+1) over all classes."""
  reference_logits = np.asarray(reference_logits).reshape(-1)
  order = np.argsort(-reference_logits, kind='stable')
  sigma = _ranks(np.asarray(logits).reshape(-1))[order]
  recip = 1.0 / np.arange(1, len(order) + 1)
  return float(np.sum(np.abs(recip - 1.0 / sigma) * recip))


def video_top5_distance(logits, *, noise: bool, difficulty: int = 1) -> float:
  """Mean top-5 distance over the compared frame pairs of one video.

  Args:
    logits: float [frames, classes].
  """
  logits = np.asarray(logits)
  pairs = _pairs_or_raise(len(logits), noise, difficulty)
  return float(np.mean([top5_rank_distance(logits[a], logits[b])
                        for a, b in pairs]))


def top5_distance(videos: Sequence, *, noise: bool,
                  difficulty: int = 1) -> float:
  """Mean over videos of `video_top5_distance`."""
  if not len(videos):
    raise ValueError('no videos')
  return float(np.mean([video_top5_distance(v, noise=noise,
                                            difficulty=difficulty)
                        for v in videos]))


def _ratio_percent(values: Mapping, baseline: Mapping) -> float | None:
  values = {int(d): float(v) for d, v in values.items()}
  baseline = {int(d): float(v) for d, v in baseline.items()}
  shared = [d for d in values if d in baseline]
  denominator = sum(baseline[d] for d in shared)
  if not shared or denominator <= 0:
    return None
  return 100.0 * sum(values[d] for d in shared) / denominator


def summarize_perturbations(flip_probabilities: Mapping[str, Mapping],
                            top5_distances: Mapping[str, Mapping],
                            baseline: Mapping | None = None) -> dict:
  """mFR / mT5D (normalised by a baseline run) or unnormalised means.

  Args:
    flip_probabilities: perturbation -> {difficulty: flip probability}.
    top5_distances: perturbation -> {difficulty: mean top-5 distance}.
    baseline: another run's results JSON (`flip_probability`,
      `top5_distance`, `model`), e.g. the teacher's. No AlexNet ImageNet-P
      constants are available offline, so without it only the unnormalised
      means are reported.

  Returns:
    `mean_flip_probability` / `mean_top5_distance` over the 10 benchmark
    perturbations present (each perturbation's value averaged over its
    difficulties) and, with a baseline, `fr` / `t5d` per perturbation
    (100 * sum_d FP_d / sum_d FP_baseline_d over the difficulties both have)
    and their means `mfr` / `mt5d`; the 4 extra perturbations under `extra`.
  """
  unknown = sorted(set(flip_probabilities) - set(ALL_PERTURBATIONS))
  if unknown:
    raise ValueError(f'unknown perturbations {unknown}; expected names from '
                     f'{ALL_PERTURBATIONS}')
  summary: dict = {
      'missing': [p for p in PERTURBATIONS if p not in flip_probabilities]}
  summary['complete'] = not summary['missing']
  if baseline:
    summary['baseline'] = baseline.get('model', 'baseline')

  def mean_over_difficulties(table: Mapping) -> float:
    return float(np.mean([float(v) for v in table.values()]))

  def group(names: Sequence[str]) -> dict:
    present = [p for p in names if p in flip_probabilities]
    out: dict = {
        'mean_flip_probability': _mean(
            [mean_over_difficulties(flip_probabilities[p]) for p in present]),
        'mean_top5_distance': _mean(
            [mean_over_difficulties(top5_distances[p]) for p in present
             if p in top5_distances]),
    }
    if baseline:
      for key, table, base_key, mean_key in (
          ('fr', flip_probabilities, 'flip_probability', 'mfr'),
          ('t5d', top5_distances, 'top5_distance', 'mt5d')):
        base = baseline.get(base_key, {})
        values = {p: _ratio_percent(table[p], base[p]) for p in present
                  if p in table and p in base}
        out[key] = {p: v for p, v in values.items() if v is not None}
        out[mean_key] = _mean(list(out[key].values()))
    return out

  summary.update(group(PERTURBATIONS))
  summary['extra'] = group(EXTRA_PERTURBATIONS)
  return summary
