"""Noisy Student Training in TensorFlow 2 / Keras 3.

The Python API (docs/python_api.md), loaded on first use:

  import noisy_student as ns
  ns.train(ns.experiment('runs/teacher', 'data/digits'))

`dataset`, `experiment`, `train`, `evaluate`, `predict`,
`filter_pseudo_labels`, `run_rounds` and `RoundsConfig` come from
`noisy_student.api`; `defaults` is `noisy_student.core.defaults` (the
recipes). Importing the package makes TensorFlow's first import drop its
start-up banner (through `data`, imported first; `data/quiet.py`).
"""

import importlib

import data  # noqa: F401  pylint: disable=unused-import

_API = ('dataset', 'experiment', 'train', 'evaluate', 'predict',
        'filter_pseudo_labels', 'run_rounds', 'RoundsConfig')
__all__ = list(_API) + ['defaults']


def __getattr__(name: str):
  if name in _API:
    return getattr(importlib.import_module('noisy_student.api'), name)
  if name == 'defaults':
    return importlib.import_module('noisy_student.core.defaults')
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
