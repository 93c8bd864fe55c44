"""Robustness reports: results JSON -> markdown tables and a bar chart (PNG).

`write_report(results_list, output_dir)` takes the dicts returned by
`robust/benchmarks.py`'s `evaluate_*` (or loaded from their JSON files), e.g. a
teacher's and a student's, and writes `<name>.json` (the list),
`<name>.md` and `<name>.png`. Several models on the same benchmark are shown
side by side: one bar per model for each corruption / perturbation.
"""

from __future__ import annotations

import json
import os
from typing import Mapping, Sequence

from matplotlib import figure as figure_lib
import numpy as np
import tensorflow as tf

from data import writers
from noisy_student.runtime import errors
from noisy_student.robust import metrics

_CORRUPTION_BENCHMARKS = ('imagenet_c', 'corrupted')


def load_results(paths: Sequence[str]) -> list[dict]:
  """Results dicts from JSON files (a file may also hold a list of them)."""
  out = []
  for path in paths:
    if not tf.io.gfile.exists(path):
      raise errors.MissingFileError(f'{path}: no such results file')
    with tf.io.gfile.GFile(path) as f:
      try:
        loaded = json.load(f)
      except json.JSONDecodeError as err:
        raise errors.InputError(f'{path}: not a results JSON: {err}') from err
    for results in (loaded if isinstance(loaded, list) else [loaded]):
      if not isinstance(results, Mapping) or 'benchmark' not in results:
        raise errors.InputError(f'{path}: not a results JSON of eval_robustness '
                         '(no `benchmark` key)')
      out.append(dict(results))
  return out


def _pct(value, digits: int = 1) -> str:
  return '-' if value is None else f'{100.0 * value:.{digits}f}'


def _num(value, digits: int = 1) -> str:
  return '-' if value is None else f'{value:.{digits}f}'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
  lines = ['| ' + ' | '.join(header) + ' |',
           '|' + '|'.join('---' for _ in header) + '|']
  lines += ['| ' + ' | '.join(row) + ' |' for row in rows]
  return '\n'.join(lines)


def _names(results_list: Sequence[Mapping]) -> list[str]:
  """Model labels, unique within a benchmark (`model`, `model (2)`, ...)."""
  names, seen = [], {}
  for results in results_list:
    name = str(results.get('model', 'model'))
    key = (results.get('benchmark'), name)
    seen[key] = seen.get(key, 0) + 1
    names.append(name if seen[key] == 1 else f'{name} ({seen[key]})')
  return names


def _ordered(keys, order: Sequence[str]) -> list[str]:
  keys = set(keys)
  return [k for k in order if k in keys] + sorted(keys - set(order))


def _markdown_corruptions(group: Sequence[Mapping], names: list[str]) -> str:
  summary = _table(
      ['model', 'clean error %', 'mean corruption error %', 'mCE %',
       'relative mCE %', 'extra: mean error %', 'extra: mCE %', 'baseline'],
      [[n, _pct(r.get('clean_error')), _pct(r.get('mean_error')),
        _num(r.get('mce')), _num(r.get('relative_mce')),
        _pct(r.get('extra', {}).get('mean_error')),
        _num(r.get('extra', {}).get('mce')), str(r.get('baseline', '-'))]
       for n, r in zip(names, group)])
  corruptions = _ordered(
      set().union(*(r['corruption_error'] for r in group)),
      metrics.ALL_CORRUPTIONS)
  header = ['corruption']
  for n in names:
    header += [f'{n} error %', f'{n} CE %']
  rows = []
  for c in corruptions:
    row = [c + (' (extra)' if c in metrics.EXTRA_CORRUPTIONS else '')]
    for r in group:
      ce = r.get('ce', {}).get(c, r.get('extra', {}).get('ce', {}).get(c))
      row += [_pct(r['corruption_error'].get(c)), _num(ce)]
    rows.append(row)
  severities = _table(
      ['model', 'corruption'] + [f'severity {s} error %'
                                 for s in metrics.SEVERITIES],
      [[n, c] + [_pct(r['errors'][c].get(str(s))) for s in
                 metrics.SEVERITIES]
       for n, r in zip(names, group) for c in _ordered(
           r['errors'], metrics.ALL_CORRUPTIONS)])
  return '\n\n'.join([summary, _table(header, rows), severities])


def _markdown_perturbations(group: Sequence[Mapping], names: list[str]) -> str:
  summary = _table(
      ['model', 'mean flip probability %', 'mFR %', 'mean top-5 distance',
       'mT5D %', 'baseline'],
      [[n, _pct(r.get('mean_flip_probability'), 2), _num(r.get('mfr')),
        _num(r.get('mean_top5_distance'), 3), _num(r.get('mt5d')),
        str(r.get('baseline', '-'))] for n, r in zip(names, group)])
  rows = []
  for n, r in zip(names, group):
    for p in _ordered(r['flip_probability'], metrics.ALL_PERTURBATIONS):
      for d, fp in sorted(r['flip_probability'][p].items()):
        rows.append([n, p, d, _pct(fp, 2),
                     _num(r['top5_distance'].get(p, {}).get(d), 3)])
  return '\n\n'.join([summary, _table(
      ['model', 'perturbation', 'difficulty', 'flip probability %',
       'top-5 distance'], rows)])


def _markdown_fgsm(group: Sequence[Mapping], names: list[str]) -> str:
  epsilons = sorted(set().union(*(r['top_1_accuracy'] for r in group)),
                    key=float)
  return _table(['epsilon (0-255)'] + [f'{n} top-1 %' for n in names],
                [[e] + [_pct(r['top_1_accuracy'].get(e)) for r in group]
                 for e in epsilons])


def _markdown_a(group: Sequence[Mapping], names: list[str]) -> str:
  return _table(['model', 'top-1 accuracy %', 'images'],
                [[n, _pct(r['top_1_accuracy']), str(r['num_images'])]
                 for n, r in zip(names, group)])


_TITLES = {'imagenet_a': 'ImageNet-A (200-class top-1)',
           'imagenet_c': 'ImageNet-C', 'corrupted': 'Corrupted copies',
           'imagenet_p': 'ImageNet-P', 'fgsm': 'FGSM'}


def _groups(results_list: Sequence[Mapping]) -> dict[str, list[int]]:
  groups: dict = {}
  for i, results in enumerate(results_list):
    benchmark = results.get('benchmark')
    if benchmark not in _TITLES:
      raise errors.InputError(f'unknown benchmark {benchmark!r} in results {i}')
    groups.setdefault(benchmark, []).append(i)
  return groups


def markdown_report(results_list: Sequence[Mapping]) -> str:
  """All results as markdown sections, one per benchmark."""
  names = _names(results_list)
  sections = []
  for benchmark, indices in _groups(results_list).items():
    group = [results_list[i] for i in indices]
    group_names = [names[i] for i in indices]
    body = {'imagenet_a': _markdown_a, 'imagenet_c': _markdown_corruptions,
            'corrupted': _markdown_corruptions,
            'imagenet_p': _markdown_perturbations,
            'fgsm': _markdown_fgsm}[benchmark](group, group_names)
    sections.append(f'## {_TITLES[benchmark]}\n\n{body}\n')
  notes = ('Errors and flip probabilities in percent; CE / FR / T5D '
           'normalised by the baseline in percent (100 = the baseline).')
  return '# Robustness report\n\n' + notes + '\n\n' + '\n'.join(sections)


def _bars(axis, categories: Sequence[str], series: Sequence[Sequence[float]],
          labels: Sequence[str], ylabel: str, title: str) -> None:
  width = 0.8 / max(len(series), 1)
  x = np.arange(len(categories))
  for i, (values, label) in enumerate(zip(series, labels)):
    axis.bar(x + (i - (len(series) - 1) / 2) * width,
             [np.nan if v is None else v for v in values], width, label=label)
  axis.set_xticks(x)
  axis.set_xticklabels(categories, rotation=60, ha='right', fontsize=8)
  axis.set_ylabel(ylabel)
  axis.set_title(title)
  axis.legend(fontsize=8)


def plot_report(results_list: Sequence[Mapping], path: str) -> None:
  """A PNG with one panel per benchmark (bars: one per model)."""
  names = _names(results_list)
  groups = _groups(results_list)
  figure = figure_lib.Figure(figsize=(11, 4.5 * len(groups)))
  axes = figure.subplots(len(groups), 1, squeeze=False)
  for axis, (benchmark, indices) in zip(axes[:, 0], groups.items()):
    group = [results_list[i] for i in indices]
    labels = [names[i] for i in indices]
    title = _TITLES[benchmark]
    if benchmark in _CORRUPTION_BENCHMARKS:
      cats = _ordered(set().union(*(r['corruption_error'] for r in group)),
                      metrics.ALL_CORRUPTIONS)
      _bars(axis, cats, [[100 * r['corruption_error'][c]
                          if c in r['corruption_error'] else None
                          for c in cats] for r in group], labels,
            'top-1 error % (mean over severities)', title)
    elif benchmark == 'imagenet_p':
      cats = _ordered(set().union(*(r['flip_probability'] for r in group)),
                      metrics.ALL_PERTURBATIONS)
      _bars(axis, cats, [[100 * float(np.mean(list(
          r['flip_probability'][p].values())))
                          if p in r['flip_probability'] else None
                          for p in cats] for r in group], labels,
            'flip probability % (mean over difficulties)', title)
    elif benchmark == 'fgsm':
      cats = sorted(set().union(*(r['top_1_accuracy'] for r in group)),
                    key=float)
      _bars(axis, [f'eps {e}' for e in cats],
            [[100 * r['top_1_accuracy'][e] if e in r['top_1_accuracy']
              else None for e in cats] for r in group], labels,
            'top-1 accuracy %', title + ' (epsilon in 0-255 pixels)')
    else:
      _bars(axis, ['ImageNet-A'], [[100 * r['top_1_accuracy']]
                                   for r in group], labels,
            'top-1 accuracy %', title)
  figure.tight_layout()
  with writers.atomic_output(path, 'wb') as f:
    figure.savefig(f, format='png', dpi=100)


def write_report(results_list: Sequence[Mapping], output_dir: str,
                 name: str = 'report') -> dict[str, str]:
  """Writes `<name>.json` / `.md` / `.png` to `output_dir`; returns the paths.

  Args:
    results_list: results dicts (one or more models / benchmarks).
    output_dir: destination folder (created).
    name: file stem.
  """
  results_list = [dict(r) for r in results_list]
  if not results_list:
    raise errors.InputError('write_report: no results')
  paths = {ext: os.path.join(output_dir, f'{name}.{ext}')
           for ext in ('json', 'md', 'png')}
  writers.write_json(paths['json'], results_list if len(results_list) > 1
                     else results_list[0])
  writers.write_text(paths['md'], markdown_report(results_list))
  plot_report(results_list, paths['png'])
  return paths
