"""A progress line for long loops: count / total, rate, ETA (absl logging)."""

from __future__ import annotations

import time

from absl import logging


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
            f'{rate:.1f} {self.unit}/s, ETA {_clock(eta)}')

  def update(self, n: int = 1, note: str = '') -> None:
    self.done += int(n)
    now = time.time()
    if now - self._last >= self.every_s:
      self._last = now
      logging.info('%s%s', self._line(), f' ({note})' if note else '')

  def finish(self) -> float:
    """Logs the final line; returns the elapsed seconds."""
    elapsed = self.elapsed
    logging.info('%s: %d %s in %s', self.label, self.done, self.unit,
                 _clock(elapsed))
    return elapsed


def _clock(seconds: float) -> str:
  if seconds == float('inf'):
    return '?'
  seconds = int(round(seconds))
  if seconds < 60:
    return f'{seconds}s'
  if seconds < 3600:
    return f'{seconds // 60}m{seconds % 60:02d}s'
  return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'
