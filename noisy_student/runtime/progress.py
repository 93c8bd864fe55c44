"""The progress lines of every long loop: count / total, rate, ETA.

One helper for training, evaluation, prediction, filtering and the
converters. Lines go to absl's log when a binary runs (absl has parsed the
flags), and are printed to stderr otherwise, so a notebook that calls the
Python API sees them too (absl's INFO log is hidden there). `heartbeat`
covers a call that prints nothing for long (tracing, loading, saving).
"""

from __future__ import annotations

import contextlib
import logging as py_logging
import sys
import threading
import time
from typing import Callable, Iterator

from absl import flags
from absl import logging


# When the last line was printed (`emit`, absl's log inside a heartbeat).
_last_line = time.monotonic()


def _saw_line() -> None:
  global _last_line
  _last_line = time.monotonic()


def emit(line: str) -> None:
  """One progress line: absl INFO inside a binary, stderr elsewhere."""
  _saw_line()
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


# A long call that prints nothing itself (tracing and compiling a step,
# loading a model, saving one) says it is still running after this many
# seconds of silence (so lines are never 30 s apart).
HEARTBEAT_SECONDS = 20.0
# The heartbeats running now, outermost first: only the innermost speaks.
_heartbeats: list[object] = []


class _LineClock(py_logging.Filter):
  """Notes each record absl logs (a heartbeat keeps quiet after one)."""

  def filter(self, record: py_logging.LogRecord) -> bool:
    del record
    _saw_line()
    return True


@contextlib.contextmanager
def heartbeat(label: str, every_s: float = HEARTBEAT_SECONDS,
              emit_line: Callable[[str], None] | None = None
              ) -> Iterator[None]:
  """While the block runs, emits `<label> (<elapsed> so far)` whenever
  nothing was printed (`emit` or absl's log) for `every_s` seconds (from a
  daemon thread; through `emit_line`, default `emit`), so a long silent call
  still shows it is alive; nothing when the block prints often enough or
  ends sooner. Heartbeats nest: only the innermost one speaks (a stage's
  heartbeat around training's "tracing the step" one).
  """
  done = threading.Event()
  start = time.monotonic()
  line_clock = _LineClock()
  absl_logger = py_logging.getLogger('absl')
  absl_logger.addFilter(line_clock)
  _heartbeats.append(line_clock)

  def beat():
    while not done.wait(min(1.0, every_s / 4)):
      now = time.monotonic()
      if (_heartbeats[-1:] == [line_clock]
          and now - max(start, _last_line) >= every_s):
        _saw_line()
        (emit_line or emit)(f'{label} ({clock(now - start)} so far)')

  thread = threading.Thread(target=beat, name='progress-heartbeat',
                            daemon=True)
  thread.start()
  try:
    yield
  finally:
    done.set()
    thread.join()
    _heartbeats.remove(line_clock)
    absl_logger.removeFilter(line_clock)


def clock(seconds: float) -> str:
  if seconds == float('inf'):
    return '?'
  seconds = int(round(seconds))
  if seconds < 60:
    return f'{seconds}s'
  if seconds < 3600:
    return f'{seconds // 60}m{seconds % 60:02d}s'
  return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'
