"""The resumable stage store of a job: `state.json` in its work_dir.

A job (iterate's rounds, ablate's arms, a tuning script's runs) is a list of
named stages; each one is run through `StageState.run`, which records it when
it starts and when it finishes (result, settings, output folders), skips it on
a rerun with the same settings, refuses other settings (or, forced, redoes it
and every stage that depends on it, moving their old outputs aside), and
resumes a stage an earlier run left unfinished. Which settings can change a
stage's outputs is the caller's rule (`relevant`, by default
`config.settings_that_matter`); the order of stages is `stage_rank`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import re
import time
from typing import Callable, Optional, Sequence

from absl import logging
import tensorflow as tf

from data import layout
from data import writers
from noisy_student.core import config as config_lib
from noisy_student.runtime import errors
from noisy_student.runtime import progress


STATE_LOCK = '.state.lock'


def _jsonable(value):
  return json.loads(json.dumps(value, default=str))


class StageState:
  """state.json: {stage: {'result', 'settings', 'outputs'}} of finished stages.

  Rewritten atomically after every change, with the paths inside the work
  dir relative to it (a moved work dir resumes). A stage is skipped only when its
  settings are unchanged and its outputs (folders it wrote) still exist; a
  stage that is redone (settings changed under `force`, or outputs deleted)
  forgets itself and every later stage, and their earlier outputs are moved
  aside (`<path>.replaced-<time>`) so the redo starts from nothing instead of
  resuming an old model's checkpoints. Logged in one line per folder.
  """

  def __init__(self, work_dir: str, force: bool = False,
               clock: Callable[[], float] = time.time,
               relevant: Callable[[dict], dict] = (
                   config_lib.settings_that_matter)):
    self.path = layout.RoundDirs(work_dir).state
    self.work_dir = work_dir.rstrip('/') or '/'
    self.force = force
    self.clock = clock
    self.relevant = relevant
    self._redo = set()  # stages forgotten in this run: their folders are stale
    self.done = self._read()

  def _read(self) -> dict:
    if not tf.io.gfile.exists(self.path):
      return {}
    with tf.io.gfile.GFile(self.path) as f:
      text = f.read()
    try:
      done = json.loads(text)
    except json.JSONDecodeError as err:
      raise errors.InputError(
          f'{self.path}: not valid JSON ({err}); the file records which '
          'stages finished: delete it to redo every stage, or restore it') from None
    return _map_strings(done, lambda text: _expand(text, self.work_dir))

  def _write(self) -> None:
    """state.json with the paths inside the work dir written relative to it
    (`<work_dir>/...`), so that a moved work dir resumes."""
    roots = {self.work_dir}
    if '://' not in self.work_dir:
      roots.add(os.path.abspath(self.work_dir))
    writers.write_json(self.path, _map_strings(
        self.done, lambda text: _relative(text, roots)))

  @contextlib.contextmanager
  def _updating(self):
    """Holds state.json's lock (local folders) and re-reads it, so that
    processes running other stages of the job at once (ablate --jobs) keep
    each other's entries; the block changes `self.done`, which is written."""
    if '://' in self.path:
      yield
      self._write()
      return
    folder = os.path.dirname(self.path)
    os.makedirs(folder, exist_ok=True)
    fd = os.open(os.path.join(folder, STATE_LOCK), os.O_RDWR | os.O_CREAT,
                 0o644)
    try:
      try:
        fcntl.flock(fd, fcntl.LOCK_EX)
      except OSError as err:  # no flock on this mount: as dir_lock does
        logging.warning('%s: cannot lock (%s); two processes recording '
                        'stages at once could lose one', self.path, err)
      self.done = self._read()
      yield
      self._write()
    finally:
      os.close(fd)  # releases the lock

  def run(self, name: str, fn: Callable[[], object], settings: dict,
          outputs: Sequence[str] = (), needs: Optional[Sequence[str]] = None):
    """`fn()`'s result, or the recorded one when stage `name` already finished.

    Args:
      name: the stage, e.g. 'round_1/student'.
      fn: runs the stage; returns its JSON-able result.
      settings: everything that determines the stage's outputs.
      outputs: the folders the stage writes (checked before skipping, moved
        aside before a redo).
      needs: for a stage built on the rounds (an ablation arm, a tuning run),
        the round stages whose redo makes it stale (with every earlier round
        stage); () for none (a supervised control). None: every round stage.
        Stages that another process may be running (`ablate --jobs`) must
        not be forgotten by a redo they do not depend on.

    Raises:
      ConfigError when the stage finished with other `settings` (unless force).
    """
    settings = _jsonable(settings)
    entry = self.done.get(name)
    if entry is not None and entry.get('finished', True):
      changed = _changed_settings(entry.get('settings'), settings,
                                  self.relevant)
      gone = [p for p in entry.get('outputs', outputs)
              if not tf.io.gfile.exists(p)]
      if gone and not changed and self._later_stage_kept(name):
        logging.warning('[%s] finished earlier; %s is gone, but the stages '
                        'after it finished and keep their outputs: not '
                        'redone', name, gone[0])
        gone = []
      rewritten = [] if gone else _rewritten_outputs(entry)
      if rewritten and not changed and not self.force:
        raise errors.ConfigError(
            f'{self.path}: stage {name} finished, but {rewritten[0]} was '
            'trained again since (its checkpoint file changed): its result '
            'and the stages after it no longer describe it. Restore it, use '
            f'a new {errors.field_name("work_dir")}, or pass '
            f'{errors.field_name("force")} to redo it and every stage after it')
      if rewritten and not changed:
        changed = [f'{rewritten[0]} trained again']
      if not changed and not gone:
        logging.info('[%s] finished earlier; skipping', name)
        return entry['result']
      if changed and not self.force:
        raise errors.ConfigError(
            f'{self.path}: stage {name} finished with other settings '
            f'({"; ".join(changed)}); use a new '
            f'{errors.field_name("work_dir")}, or pass '
            f'{errors.field_name("force")} to redo it and every stage after it')
      if gone and not changed:
        logging.warning('[%s] finished earlier but %s is gone: redoing it '
                        'and every stage after it', name, gone[0])
      self._forget_from(name)
    elif entry is not None:  # started by an earlier run that was interrupted
      if _changed_settings(entry.get('settings'), settings,
                           self.relevant):
        logging.warning('[%s] an interrupted earlier run had other settings: '
                        'starting over', name)
        self._redo.add(name)
      else:
        logging.info('[%s] resuming an interrupted earlier run', name)
    if name in self._redo:
      for path in outputs:
        self._move_aside(name, path)
    logging.info('[%s] starting', name)
    recorded_needs = {} if needs is None else {'needs': list(needs)}
    self._record(name, {'settings': settings, 'outputs': list(outputs),
                        'finished': False, **recorded_needs})
    start = time.time()
    # A step that prints nothing for a while (loading, tracing, saving)
    # still shows it is alive.
    with progress.heartbeat(f'[{name}] running'):
      result = fn()
    self._record(name, {'result': result, 'settings': settings,
                        'outputs': list(outputs),
                        'checkpoints': _checkpoint_states(outputs),
                        'seconds': round(time.time() - start, 1),
                        **recorded_needs})
    logging.info('[%s] done in %.1fs', name, time.time() - start)
    return result

  def finished(self, name: str) -> Optional[dict]:
    """The entry of stage `name` if it finished, else None."""
    entry = self.done.get(name)
    return entry if entry is not None and entry.get('finished', True) else None

  def _record(self, name: str, entry: dict) -> None:
    with self._updating():
      self.done[name] = entry

  def _later_stage_kept(self, name: str) -> bool:
    """Whether a finished round stage after `name` still has its outputs
    (then `name`'s outputs are no longer needed: e.g. predictions deleted to
    save disk once the student trained)."""
    rank = stage_rank(name)
    return is_round_stage(name) and any(
        is_round_stage(other) and stage_rank(other) > rank
        and entry.get('finished', True) and entry.get('outputs')
        and all(tf.io.gfile.exists(p) for p in entry['outputs'])
        for other, entry in self.done.items())

  def _forget_from(self, name: str) -> None:
    """Forgets `name` and every stage that depends on it (a round stage: every
    later stage; an ablation arm or tuning run: itself); moves their outputs
    aside."""
    first = stage_rank(name)
    with self._updating():
      stale = ([n for n in self.done if stage_rank(n) >= first
                and _depends_on(n, self.done[n], first)]
               if is_round_stage(name) else [name])
      for old in sorted(stale, key=stage_rank):
        for path in self.done.get(old, {}).get('outputs', ()):
          self._move_aside(old, path)
        self.done.pop(old, None)
        self._redo.add(old)

  def _move_aside(self, name: str, path: str) -> None:
    if not tf.io.gfile.exists(path):
      return
    stamp = time.strftime('%Y%m%d-%H%M%S', time.gmtime(self.clock()))
    target, n = f'{path}.replaced-{stamp}', 1
    while tf.io.gfile.exists(target):
      n += 1
      target = f'{path}.replaced-{stamp}-{n}'
    tf.io.gfile.rename(path, target)
    logging.warning('[%s] redone from nothing: its earlier output %s was '
                    'moved to %s', name, path, target)


WORK_DIR_MARK = '<work_dir>'


def _map_strings(value, fn):
  """`value` (JSON: dicts, lists, strings, numbers) with fn applied to
  every string, keys of dicts included."""
  if isinstance(value, str):
    return fn(value)
  if isinstance(value, dict):
    return {fn(k): _map_strings(v, fn) for k, v in value.items()}
  if isinstance(value, list):
    return [_map_strings(v, fn) for v in value]
  return value


def _relative(text: str, roots: set) -> str:
  for root in roots:
    if text == root:
      return WORK_DIR_MARK
    if text.startswith(root + '/'):
      return WORK_DIR_MARK + text[len(root):]
  return text


def _expand(text: str, work_dir: str) -> str:
  if text == WORK_DIR_MARK or text.startswith(WORK_DIR_MARK + '/'):
    return work_dir + text[len(WORK_DIR_MARK):]
  return text


def _depends_on(name: str, entry: dict, redone_rank: tuple) -> bool:
  """Whether stage `name` is stale when the round stage of `redone_rank`
  (and every stage after it) is redone: round stages always; a stage built
  on the rounds when it needs one of them at or after that rank (entries
  without `needs`, older ones included, need every round stage)."""
  needs = entry.get('needs')
  if is_round_stage(name) or needs is None:
    return True
  return any(stage_rank(need) >= redone_rank for need in needs)


def _checkpoint_states(outputs: Sequence[str]) -> dict:
  """{output folder: sha256 of its `checkpoint` file} for the folders that
  hold a model (the file names the latest checkpoint, with timestamps)."""
  states = {}
  for path in outputs:
    index = f'{path}/checkpoint'
    if tf.io.gfile.exists(index):
      with tf.io.gfile.GFile(index, 'rb') as f:
        states[path] = hashlib.sha256(f.read()).hexdigest()
  return states


def _rewritten_outputs(entry: dict) -> list[str]:
  """The output folders whose model changed since the stage finished
  (stages recorded before checkpoints were: none)."""
  recorded = {path: state for path, state
              in (entry.get('checkpoints') or {}).items()
              if tf.io.gfile.exists(path)}  # a deleted folder is not retrained
  now = _checkpoint_states(list(recorded))
  return [path for path, state in recorded.items() if now.get(path) != state]


_ROUND_STAGES = ('teacher', 'predict', 'filter_stats', 'filter', 'student')


def stage_rank(name: str) -> tuple:
  """Where stage `name` comes in a job: round by round, each round's stages in
  order, then the export, then stages built on the rounds (ablation arms,
  tuning runs). state.json's keys are sorted by name, not by this order."""
  match = re.fullmatch(r'round_(\d+)/(\w+)', name)
  if match and match.group(2) in _ROUND_STAGES:
    return (int(match.group(1)), _ROUND_STAGES.index(match.group(2)), '')
  return (math.inf, 0 if name == layout.RoundDirs.EXPORT_STAGE else 1, name)


def is_round_stage(name: str) -> bool:
  """A stage of the rounds or the export (others are leaves built on them)."""
  return stage_rank(name)[:2] != (math.inf, 1)


# Config fields renamed since a state.json may have been written, per config
# (recognised by a field only it has): a stage recorded under the old names
# has the same settings. PredictConfig's took their flags' names (2026-12-07).
_RENAMED_FIELDS = (
    ('predict_ckpt_path', {'batch_size': 'predict_batch_size',
                           'num_samples': 'num_samples_per_shard'}),
)


def _current_names(settings):
  """`settings` with the fields of `_RENAMED_FIELDS` under their new names."""
  if not isinstance(settings, dict):
    return settings
  for marker, renamed in _RENAMED_FIELDS:
    if marker in settings:
      settings = {renamed.get(k, k): v for k, v in settings.items()}
  return settings


def _changed_settings(old: Optional[dict], new: dict,
                      relevant: Callable[[dict], dict]) -> list[str]:
  """'key: old -> new' for every differing setting, nested keys dotted.

  `old` None is the state of an older version (no settings recorded).
  """
  if old is None:
    return []
  return [f'{key}: {before!r} -> {after!r}' for key, before, after
          in _differences(relevant(_current_names(old)), relevant(new),
                          prefix='')]


def _differences(old: dict, new: dict, prefix: str):
  for key in sorted(set(old) | set(new)):
    before, after = old.get(key), new.get(key)
    if isinstance(before, dict) and isinstance(after, dict):
      yield from _differences(before, after, prefix=f'{prefix}{key}.')
    elif before != after:
      yield f'{prefix}{key}', before, after
