"""The ablation table: per-arm accuracies over seeds and paired comparisons.

Pure functions of `per_seed` ({seed: {arm or 'teacher': test top-1 in [0, 1]}})
and `mcnemar` ({seed: {'<arm>-<other>': {'only_a', 'only_b', 'p_value'}}}):
`summarize` gives one row per arm (mean +- sd, the paired difference with the
teacher, the full student and the supervised control), `claims` the
pre-declared comparisons with the Holm correction, `markdown` and `plot`
present them. `noisy_student.drivers.ablation` runs the arms and writes the
tables; `ablate --merge` joins tables of other seeds.
"""

from __future__ import annotations

from typing import Optional, Sequence

from data import writers
from noisy_student.analysis import stats

# What the paper reports for each arm, relative to the full noised student.
PAPER_DIRECTION = {
    'teacher': 'the baseline',
    'control': 'below full: the teacher\'s recipe for the student\'s steps',
    'full': 'beats the teacher',
    'no_noise': 'smaller gain than full (Table 6)',
    'data_noise': 'between no_noise and full (Table 6)',
    'model_noise': 'between no_noise and full (Table 6)',
    'hard_labels': 'at most full (soft >= hard)',
    'two_rounds': 'above full (Table 5)',
    'larger_student': 'at least full (equal-or-larger student)',
}
ORDER = tuple(PAPER_DIRECTION)
# The pre-declared claims (Holm-corrected together): the noised student
# against its teacher, the supervised control and the noise-free student.
DECLARED = (('full', 'teacher'), ('full', 'control'), ('full', 'no_noise'))
ALPHA = 0.05


def comparison_key(arm: str, other: str) -> str:
  return f'{arm}-{other}'


def comparison(per_seed: dict, arm: str, other: str,
               mcnemar: Optional[dict] = None,
               confidence: float = 1 - ALPHA) -> Optional[dict]:
  """The paired difference arm - other over the seeds having both (points),
  with each seed's McNemar p where the predictions were compared."""
  both = sorted(s for s, r in per_seed.items() if arm in r and other in r)
  if not both or arm == other:
    return None
  result = stats.paired([100 * per_seed[s][arm] for s in both],
                        [100 * per_seed[s][other] for s in both],
                        confidence=confidence)
  # A pair is stored once (either order); its two-sided p is symmetric.
  keys = (comparison_key(arm, other), comparison_key(other, arm))
  per_seed_test = [next((t for t in (((mcnemar or {}).get(s) or {}).get(k)
                                     for k in keys) if t is not None), None)
                   for s in both]
  return {'against': other, 'seeds': both, 'mean': result.mean,
          'sd': result.sd, 'low': result.low, 'high': result.high,
          'p_value': result.p_value, 'excludes_zero': result.excludes_zero,
          'confidence': confidence, 'text': result.interval_text(),
          'mcnemar_p': [None if t is None else t['p_value']
                        for t in per_seed_test]}


def summarize(per_seed: dict, steps: Optional[dict] = None,
              test_images: Optional[int] = None,
              mcnemar: Optional[dict] = None) -> list[dict]:
  """One row per arm: test top-1 (%) and its paired differences.

  An arm enters with the seeds that finished it and their teacher; `seeds`
  and `seed_ids` say which (a partial ablation is summarised as it stands).
  Each row compares the arm with the teacher (`vs_teacher`), the students
  with the full student (`vs_full`) and the full student with the supervised
  control (`vs_control`): mean, sd, 95% t-interval, p-value over the shared
  seeds and the per-seed McNemar p; `test_se` is one accuracy's binomial
  standard error on `test_images`.
  """
  names = ['teacher'] + [a for a in ORDER[1:]
                         if any(a in r for r in per_seed.values())]
  rows = []
  for name in names:
    done = {seed: r for seed, r in per_seed.items()
            if name in r and 'teacher' in r}
    if not done:
      continue
    accuracy = [100 * r[name] for r in done.values()]
    mean, sd = stats.mean_sd(accuracy)
    row = {
        'arm': name, 'seeds': len(accuracy), 'seed_ids': sorted(done),
        'steps': (steps or {}).get(name),
        'test_top1_mean': mean, 'test_top1_std': sd or 0.0,
        'per_seed': [round(float(a), 2) for a in accuracy],
        'vs_teacher': comparison(done, name, 'teacher', mcnemar),
        'vs_full': (None if name in ('teacher', 'control', 'full')
                    else comparison(done, name, 'full', mcnemar)),
        'vs_control': (comparison(per_seed, name, 'control', mcnemar)
                       if name == 'full' else None),
        'paper': PAPER_DIRECTION[name],
    }
    if row['vs_teacher']:
      row['gain_mean'] = row['vs_teacher']['mean']
      row['gain_std'] = row['vs_teacher']['sd'] or 0.0
    if test_images:
      row['test_se'] = 100 * stats.binomial_se(mean / 100, test_images)
    rows.append(row)
  return rows


def claims(per_seed: dict, mcnemar: Optional[dict] = None,
           declared: Sequence[tuple[str, str]] = DECLARED) -> list[dict]:
  """The pre-declared comparisons that ran, corrected together.

  Each: the paired difference over seeds with its Bonferroni interval
  (confidence 1 - ALPHA / m, m the comparisons made), its p-value and the
  Holm-adjusted one; `effect` is True only where that interval excludes 0.
  """
  made = [(a, b) for a, b in declared
          if any(a in r and b in r for r in per_seed.values())]
  if not made:
    return []
  level = 1 - ALPHA / len(made)
  rows = [dict(comparison(per_seed, a, b, mcnemar, confidence=level),
               name=f'{a} - {b}') for a, b in made]
  for row, adjusted in zip(rows, stats.holm([r['p_value'] for r in rows])):
    row['p_holm'] = adjusted
    row['effect'] = row['excludes_zero']
    row['claim'] = _claim_text(row)
  return rows


def _claim_text(row: dict) -> str:
  seeds = len(row['seeds'])
  if row['low'] is None:
    return (f'{row["name"]}: {row["text"]} at {seeds} seed'
            f'{"s" if seeds != 1 else ""}; no interval')
  interval = (f'[{row["low"]:+.2f}, {row["high"]:+.2f}] '
              f'({100 * row["confidence"]:.1f}% Bonferroni interval, '
              f'Holm p = {row["p_holm"]:.2g})')
  if row['effect']:
    return f'{row["name"]}: {row["mean"]:+.2f} points {interval}'
  return (f'{row["name"]}: no measurable difference at {seeds} seeds, '
          f'{row["mean"]:+.2f} {interval}')


def _spread(mean: float, std: float, seeds: int) -> str:
  """'mean +- std' (std over seeds), just the mean for one seed."""
  return f'{mean:.2f} +- {std:.2f}' if seeds > 1 else f'{mean:.2f}'


def _difference(comparison_row: Optional[dict]) -> str:
  if comparison_row is None:
    return '-'
  text = comparison_row['text']
  if comparison_row['p_value'] is not None:
    text += f', p={comparison_row["p_value"]:.2g}'
  mcnemar_p = [p for p in comparison_row.get('mcnemar_p') or () if p is not None]
  if mcnemar_p:
    text += '; McNemar p ' + '/'.join(f'{p:.2g}' for p in mcnemar_p)
  return text


def markdown(rows: Sequence[dict], title: str,
             claim_rows: Sequence[dict] = ()) -> str:
  """The table: accuracies, paired differences with their 95% intervals,
  then the pre-declared claims with the Holm correction."""
  lines = [f'# {title}', '',
           'Differences are paired over the seeds: mean [95% t-interval], '
           'p-value (two-sided paired t-test), then each seed\'s exact '
           'McNemar p on the test images where predictions were kept; an '
           'interval that contains 0 is no measurable difference at that '
           'many seeds.', '',
           '| arm | steps | test top-1 (mean +- sd) | vs teacher | vs full | '
           'vs control | seeds | per seed | paper (direction) |',
           '|---|---|---|---|---|---|---|---|---|']
  for row in rows:
    accuracy = _spread(row['test_top1_mean'], row['test_top1_std'],
                       row['seeds'])
    lines.append(
        f'| {row["arm"]} | {row.get("steps") or "-"} | {accuracy} | '
        f'{_difference(row.get("vs_teacher"))} | '
        f'{_difference(row.get("vs_full"))} | '
        f'{_difference(row.get("vs_control"))} | '
        f'{",".join(str(i) for i in row["seed_ids"])} | '
        f'{", ".join(f"{a:.2f}" for a in row["per_seed"])} | {row["paper"]} |')
  if rows and rows[0].get('test_se') is not None:
    lines += ['', f'One run\'s test accuracy has a binomial standard error of '
              f'about {rows[0]["test_se"]:.2f} points at the teacher\'s '
              'accuracy.']
  if claim_rows:
    lines += ['', f'Pre-declared claims ({len(claim_rows)} comparisons, '
              'Holm-corrected; an effect only where the corrected interval '
              'excludes 0):', '']
    lines += [f'- {row["claim"]}' for row in claim_rows]
  return '\n'.join(lines) + '\n'


def plot(rows: Sequence[dict], path: str, dataset: str) -> None:
  """ablation.png: mean test top-1 per arm with the seeds' sd."""
  from matplotlib import figure as figure_lib  # pylint: disable=g-import-not-at-top
  fig = figure_lib.Figure(figsize=(6, 3.5))
  ax = fig.subplots()
  names = [r['arm'] for r in rows]
  ax.bar(names, [r['test_top1_mean'] for r in rows],
         yerr=[r['test_top1_std'] for r in rows], capsize=4,
         color=['grey'] + ['tab:blue'] * (len(rows) - 1))
  low = min(r['test_top1_mean'] - r['test_top1_std'] for r in rows)
  ax.set_ylim(max(0.0, low - 5), 100)
  ax.set_ylabel('test top-1 (%), mean +- std')
  seeds = rows[0]['seeds']
  ax.set_title(f'Noisy Student ablations on {dataset} '
               f'({seeds} seed{"s" if seeds != 1 else ""})')
  ax.tick_params(axis='x', rotation=30)
  fig.tight_layout()
  with writers.atomic_output(path) as f:
    fig.savefig(f, format='png', dpi=120)
