"""Checkpoints: finding them, their saved architecture, restoring weights.

Two kinds of checkpoint are recognised from their contents:
* a training checkpoint of ours (a `model_dir` or a `ckpt-N` prefix written by
  `main --mode=train`; object-based, with the EMA shadows under `ema/`), whose
  architecture is read from `model_config.json` in the same folder;
* an original TF1 name-based checkpoint (tensorflow/tpu EfficientNet, the
  published noisy_student_efficientnet-* files, the original SVHN teacher),
  loaded through `efficientnet.load_tf1_checkpoint`.
`copy_weights` copies a loaded model's weights in order (a `.keras` file's,
read by `noisy_student.models.loading`, the one loader, which also turns any
other model file into a model or a classifier). Weights are the exponential
moving average by default (`use_ema=True`), as the original's eval and
predict used.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
from typing import Callable, Optional

from absl import logging
import keras
import tensorflow as tf

from data import layout
from data import writers
import efficientnet
from noisy_student.core import config as config_lib
from noisy_student.runtime import errors
from noisy_student.models import ema as ema_lib

_OBJECT_GRAPH_KEY = '_CHECKPOINTABLE_OBJECT_GRAPH'




def resolve_checkpoint(path: str) -> str:
  """The checkpoint prefix for a directory (its latest) or a prefix; else raises."""
  try:
    return efficientnet.resolve_checkpoint(path)
  except efficientnet.CheckpointNotFoundError as err:
    raise errors.CheckpointError(str(err)) from None


def is_object_based(prefix: str) -> bool:
  """True for TF2 object-based checkpoints (ours), False for TF1 name-based."""
  return any(name == _OBJECT_GRAPH_KEY
             for name, _ in tf.train.list_variables(prefix))


def model_config_path(path: str) -> str:
  return layout.model_dir_file(path, layout.MODEL_CONFIG_FILE)


def write_model_config(model_dir: str, config: config_lib.ModelConfig) -> None:
  """Writes `<model_dir>/model_config.json` (atomically), the class names
  included when known (`ModelConfig.class_names`)."""
  writers.write_text(os.path.join(model_dir, layout.MODEL_CONFIG_FILE),
                     config.to_json() + '\n')


def read_model_config(path: str) -> Optional[config_lib.ModelConfig]:
  """The ModelConfig saved next to a checkpoint of ours, or None.

  A file written before models carried their class names reads with
  `class_names` None (unknown); so do names that do not fit the file's
  `num_classes` (an edited file), with a warning naming it.
  """
  config_file = model_config_path(path)
  if not tf.io.gfile.exists(config_file):
    return None
  with tf.io.gfile.GFile(config_file) as f:
    values = json.load(f)
  names = values.get('class_names') if isinstance(values, dict) else None
  if names is not None and (not isinstance(names, list)
                            or len(names) != values.get('num_classes')):
    logging.warning('%s: its class_names do not fit its num_classes (%s); '
                    'the class names are treated as unknown', config_file,
                    values.get('num_classes'))
    values = dict(values, class_names=None)
  return config_lib.ModelConfig.from_dict(values)


def unreadable(error: BaseException) -> bool:
  """True for a checkpoint file that cannot be read (truncated, corrupt).

  TensorFlow reports them as OpErrors ("not an sstable", "Read less bytes
  than requested", as IndexError); an InvalidArgumentError is a shape
  mismatch instead, which no older checkpoint would fix.
  """
  if isinstance(error, IndexError):
    return True
  return (isinstance(error, tf.errors.OpError)
          and not isinstance(error, tf.errors.InvalidArgumentError))


def first_line(error: BaseException) -> str:
  text = str(getattr(error, 'message', None) or error).strip()
  return text.splitlines()[0][:300] if text else type(error).__name__


def candidates(path: str) -> list[str]:
  """Checkpoint prefixes to try for `path`: a prefix alone, or a directory's
  checkpoints newest first (a truncated latest one falls back to older ones).

  Raises:
    CheckpointError naming `path` when it holds no checkpoint.
  """
  latest = resolve_checkpoint(path)
  if not tf.io.gfile.isdir(path):
    return [latest]
  state = tf.train.get_checkpoint_state(path)
  older = [p if os.path.isabs(p) else os.path.join(path, p)
           for p in (state.all_model_checkpoint_paths if state else [])]
  return [latest] + [p for p in reversed(older)
                     if p != latest and tf.io.gfile.exists(p + '.index')]


def with_fallback(path: str, restore: Callable[[str], None]) -> str:
  """Calls `restore(prefix)` on `candidates(path)` until one is readable.

  Returns the prefix restored. A skipped checkpoint is named in a warning,
  with the one used instead.

  Raises:
    CheckpointError naming the last prefix when none is readable.
  """
  prefixes = candidates(path)
  for i, prefix in enumerate(prefixes):
    try:
      restore(prefix)
      return prefix
    except Exception as err:  # pylint: disable=broad-except
      if not unreadable(err):
        raise
      if i + 1 == len(prefixes):
        raise errors.CheckpointError(
            f'{prefix}: unreadable checkpoint ({first_line(err)}) and no older '
            'readable one in its folder') from None
      logging.warning('%s is unreadable (%s); falling back to the previous '
                      'checkpoint %s', prefix, first_line(err), prefixes[i + 1])
  raise AssertionError('unreachable')


def restore_model_weights(model: keras.Model, path: str, *,
                          use_ema: bool = True,
                          tf1_scope: Optional[str] = None) -> str:
  """Loads checkpoint `path` (ours or TF1) into `model`; returns the prefix.

  For a directory, an unreadable latest checkpoint falls back to the previous
  one (with a warning naming both).

  Raises:
    CheckpointError naming the path when nothing matches, shapes differ or no
    checkpoint is readable.
  """
  return with_fallback(path, lambda prefix: _restore_prefix(
      model, prefix, use_ema=use_ema, tf1_scope=tf1_scope))


def copy_weights(source: keras.Model, model: keras.Model, path: str) -> str:
  """Copies the weights of `source` (loaded from `path`) into `model`, in order.

  `source` must have the same weights in the same order: a model of the same
  architecture, or its portable export (whose SE weights sit under other
  layer names, `efficientnet.to_portable`).

  Raises:
    CheckpointError naming `path` when it does not fit.
  """
  pairs = list(zip(source.weights, model.weights))
  mismatch = [(a, b) for a, b in pairs if tuple(a.shape) != tuple(b.shape)
              or a.path.split('/')[-1] != b.path.split('/')[-1]]
  if len(source.weights) != len(model.weights) or mismatch:
    detail = (f'{mismatch[0][0].path} {tuple(mismatch[0][0].shape)} vs '
              f'{mismatch[0][1].path} {tuple(mismatch[0][1].shape)}' if mismatch
              else f'{len(source.weights)} weights vs {len(model.weights)}')
    raise errors.CheckpointError(
        f'{path}: does not fit the {model.name} model being loaded (check '
        f'{errors.field_name("model_name")} and the sizes): {detail}')
  for src, dst in pairs:
    dst.assign(src)
  return path


@contextlib.contextmanager
def _quiet_failed_restore():
  """Silences TF's warnings about a restore that failed mid-way.

  Such a restore never returned its status, so nothing can call
  `expect_partial()`; when it is freed (as the exception is), TensorFlow logs
  one "Value in checkpoint could not be found" line per unmatched value,
  hundreds, before our one-line error.
  """
  tf_logger = tf.get_logger()
  level = tf_logger.level
  tf_logger.setLevel('ERROR')
  try:
    yield
  finally:
    gc.collect()  # free it here, while quiet
    tf_logger.setLevel(level)


def _restore_prefix(model: keras.Model, prefix: str, *, use_ema: bool,
                    tf1_scope: Optional[str]) -> None:
  if not is_object_based(prefix):
    efficientnet.load_tf1_checkpoint(model, prefix, use_ema=use_ema,
                                     scope=tf1_scope)
    return
  names = [name for name, _ in tf.train.list_variables(prefix)]
  has_ema = any(name.startswith('ema/') for name in names)
  trackables = {'model': model}
  if has_ema:
    ema = ema_lib.ExponentialMovingAverage(ema_lib.model_ema_weights(model),
                                           decay=0.5)
    trackables['ema'] = ema
  failure = None
  with _quiet_failed_restore():
    try:
      status = tf.train.Checkpoint(**trackables).restore(prefix)
      status.expect_partial()  # no deferred-restore warnings after a failure
      status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.InvalidArgumentError) as err:
      failure = first_line(err)
  if failure is not None:
    raise errors.CheckpointError(
        f'{prefix}: does not fit the {model.name} model being loaded '
        f'(check {errors.field_name("model_name")} / model_config.json): {failure}')
  if use_ema and has_ema:
    ema.copy_to(ema_lib.model_ema_weights(model))
