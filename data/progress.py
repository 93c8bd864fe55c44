"""A progress line (count, rate, ETA) for long data preparation loops."""

from __future__ import annotations

import datetime
import time
from typing import Callable

from absl import logging


def format_progress(description: str, done: int, total: int, elapsed_s: float,
                    unit: str = 'images') -> str:
  """'train: 1,200/4,800 images (25.0%), 400 images/s, ETA 0:00:09'."""
  rate = done / elapsed_s if elapsed_s > 0 else 0.0
  percent = 100.0 * done / total if total else 100.0
  if rate > 0 and total >= done:
    eta = str(datetime.timedelta(seconds=round((total - done) / rate)))
  else:
    eta = '?'
  return (f'{description}: {done:,}/{total:,} {unit} ({percent:.1f}%), '
          f'{rate:,.0f} {unit}/s, ETA {eta}')


class Progress:
  """Logs a progress line at most every `interval_s` seconds, and at the end.

  Usage: `progress = Progress(n, 'train'); progress.update(k); progress.done()`.
  """

  def __init__(self, total: int, description: str, *, unit: str = 'images',
               interval_s: float = 10.0,
               log_fn: Callable[[str], None] = logging.info,
               clock: Callable[[], float] = time.monotonic):
    self.total = total
    self.description = description
    self.unit = unit
    self.count = 0
    self._interval_s = interval_s
    self._log_fn = log_fn
    self._clock = clock
    self._start = clock()
    self._last = self._start

  def update(self, n: int = 1) -> None:
    self.count += n
    now = self._clock()
    if now - self._last >= self._interval_s:
      self._last = now
      self._log_fn(self.line())

  def line(self) -> str:
    return format_progress(self.description, self.count, self.total,
                           self._clock() - self._start, self.unit)

  def done(self) -> None:
    self._log_fn(self.line())
