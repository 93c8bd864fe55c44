"""The progress lines of every long loop: count / total, rate, ETA.

One helper for training, evaluation, prediction, filtering and the
converters. Lines go to absl's log when a binary runs (absl has parsed the
flags), and are printed to stderr otherwise, so a notebook that calls the
Python API sees them too (absl's INFO log is hidden there).
"""

from __future__ import annotations

import sys
import time

from absl import flags
from absl import logging


def emit(line: str) -> None:
  """One progress line: absl INFO inside a binary, stderr elsewhere."""
  if flags.FLAGS.is_parsed():
    logging.info('%s', line)
  else:
    print(line, file=sys.stderr, flush=True)


class Progress:
  """Logs `label: done/total units, rate/s, ETA` at most every `every_s`.

  Call `update(n)` after each piece of work and `finish()` at the end (which
  always logs, with the elapsed time).
  """

  def __init__(self, label: str, total: int | None, unit: str = 'images',
               every_s: float = 10.0):
    self.label = label
    self.total = None if total is None else int(total)
    self.unit = unit
    self.every_s = every_s
    self.done = 0
    self.start = time.time()
    self._last = self.start

  @property
  def elapsed(self) -> float:
    return time.time() - self.start

  def _line(self) -> str:
    rate = self.done / max(self.elapsed, 1e-9)
    if self.total is None:  # a stream of unknown length
      return f'{self.label}: {self.done} {self.unit}, {rate:.1f} {self.unit}/s'
    eta = (self.total - self.done) / rate if rate > 0 else float('inf')
    return (f'{self.label}: {self.done}/{self.total} {self.unit}, '
            f'{rate:.1f} {self.unit}/s, ETA {clock(eta)}')

  def update(self, n: int = 1, note: str = '') -> None:
    self.done += int(n)
    now = time.time()
    if now - self._last >= self.every_s:
      self._last = now
      emit(self._line() + (f' ({note})' if note else ''))

  def finish(self) -> float:
    """Logs the final line; returns the elapsed seconds."""
    elapsed = self.elapsed
    emit(f'{self.label}: {self.done} {self.unit} in {clock(elapsed)}')
    return elapsed


def clock(seconds: float) -> str:
  if seconds == float('inf'):
    return '?'
  seconds = int(round(seconds))
  if seconds < 60:
    return f'{seconds}s'
  if seconds < 3600:
    return f'{seconds // 60}m{seconds % 60:02d}s'
  return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'
