"""Noisy Student Training in TensorFlow 2 / Keras 3.

The Python API (docs/python_api.md), loaded on first use:

  import noisy_student as ns
  ns.train(ns.experiment('runs/teacher', 'data/digits'))

`dataset`, `experiment`, `train`, `evaluate`, `predict`,
`filter_pseudo_labels`, `run_rounds` and `RoundsConfig` come from
`noisy_student.api`; `defaults` is `noisy_student.core.defaults` (the
recipes).

Importing any module of the project (`data.*` and `efficientnet.*` import
`noisy_student.runtime`, and so this package, first) checks that the three
import names are this project's (`noisy_student/runtime/packages.py`), and
does nothing else. TensorFlow's start-up banner is filtered
(`noisy_student/runtime/quiet.py`) by the entry points only: every binary
(`noisy_student/runtime/entry.py`), the Python API (`noisy_student.api`, loaded
on first use of `ns.train` and the rest) and the Beam workers. A notebook
hides them by importing `noisy_student.api` before TensorFlow
(docs/python_api.md); once TensorFlow is loaded they have been printed.
"""

import importlib

from noisy_student.runtime import packages as _packages

_packages.check()

_API = ('dataset', 'experiment', 'train', 'evaluate', 'predict',
        'filter_pseudo_labels', 'run_rounds', 'RoundsConfig')
__all__ = list(_API) + ['defaults']


def __getattr__(name: str):
  if name in _API:
    return getattr(importlib.import_module('noisy_student.api'), name)
  if name == 'defaults':
    return importlib.import_module('noisy_student.core.defaults')
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
