"""Runs jobs that depend on each other as child processes, each on its own cores.

On a small CPU machine, TensorFlow trains a small model no faster on two cores
than on one (measured on the 2-core CI machine, 2026-12-07: a half-width
EfficientNet-B0 at 32x32, batch 32: 6.5 steps/s with both cores, 6.5 steps/s
each for two processes on one core each). Jobs that do not wait for each other
(ablate's teacher and its supervised control; the student arms once the
pseudo-labels exist) therefore finish twice as fast side by side, each pinned
to its share of the cores with TensorFlow's thread pools sized to it.

`run_jobs` starts every job whose prerequisites finished, up to `slots` at a
time; each job's output goes to `<log_dir>/<job>.log` and, line by line and
prefixed with `[job]`, to stderr. When a job fails, or on Ctrl-C, the others
get one SIGINT (training saves its step; the callers' stages are resumable)
and `JobFailedError` names the failed job, its exit status and its log, with
the log's last lines. Children run in their own sessions: a parent killed
outright (SIGKILL) leaves them running.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Optional, Sequence

from noisy_student.runtime import errors

TAIL_LINES = 15


class JobFailedError(errors.NoisyStudentError):
  """A child job exited with a non-zero status."""


@dataclasses.dataclass(frozen=True)
class Job:
  """One child process: `name` (its log's name) and the jobs it waits for."""
  name: str
  after: tuple[str, ...] = ()


def core_sets(slots: int, cores: Optional[Sequence[int]] = None
              ) -> list[tuple[int, ...]]:
  """The CPU cores of each slot: the usable cores split into `slots` equal
  parts (the remainder unused); one slot per core at most."""
  cores = sorted(os.sched_getaffinity(0) if cores is None else cores)
  slots = max(1, min(slots, len(cores)))
  per_slot = len(cores) // slots
  return [tuple(cores[i * per_slot:(i + 1) * per_slot]) for i in range(slots)]


def check_order(jobs: Sequence[Job]) -> None:
  """ValueError when a job waits for an unknown job or names repeat."""
  names = [job.name for job in jobs]
  if len(set(names)) != len(names):
    raise ValueError(f'job names repeat: {names}')
  for job in jobs:
    unknown = [n for n in job.after if n not in names]
    if unknown:
      raise ValueError(f'job {job.name} waits for unknown jobs {unknown}')


def child_environment(cores: Sequence[int],
                      base: Optional[dict] = None) -> dict:
  """The environment of a child on `cores`: TensorFlow's pools sized to them."""
  env = dict(os.environ if base is None else base)
  env['TF_NUM_INTRAOP_THREADS'] = str(len(cores))
  env['TF_NUM_INTEROP_THREADS'] = str(len(cores))
  env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  return env


class _Running:
  """A started job: its process, slot, log file and the thread copying its output."""

  def __init__(self, job: Job, command: Sequence[str], slot: int,
               cores: Sequence[int], log_path: str, env: dict,
               echo: Callable[[str], None]):
    self.job, self.slot, self.log_path = job, slot, log_path
    self.start = time.time()
    self.log = open(log_path, 'ab')  # pylint: disable=consider-using-with
    # Its own session: a Ctrl-C reaches the parent only, which passes one
    # SIGINT on (`stop`); a second one could cut the child's final save short.
    self.process = subprocess.Popen(  # pylint: disable=consider-using-with
        list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    try:
      os.sched_setaffinity(self.process.pid, cores)
    except (OSError, AttributeError):
      pass  # the process may already have exited, or no affinity here
    self.thread = threading.Thread(target=self._copy, args=(echo,),
                                   daemon=True)
    self.thread.start()

  def _copy(self, echo: Callable[[str], None]) -> None:
    for line in iter(self.process.stdout.readline, b''):
      self.log.write(line)
      self.log.flush()
      echo(f'[{self.job.name}] {line.decode("utf-8", "replace").rstrip()}')

  def finish(self) -> None:
    # The pipe ends with the process, unless a process it started holds it:
    # then the (daemon) copying thread keeps the pipe and the log.
    self.thread.join(timeout=30)
    if not self.thread.is_alive():
      self.process.stdout.close()
      self.log.close()

  def stop(self, grace_seconds: float) -> None:
    """Interrupts the job as Ctrl-C would (training saves its step), and
    terminates it if it has not ended after `grace_seconds`."""
    for sig, wait in ((signal.SIGINT, grace_seconds),
                      (signal.SIGTERM, 30), (signal.SIGKILL, None)):
      if self.process.poll() is not None:
        break
      self.process.send_signal(sig)
      try:
        self.process.wait(timeout=wait)
      except subprocess.TimeoutExpired:
        continue
    self.finish()


def _tail(path: str, lines: int = TAIL_LINES) -> str:
  try:
    with open(path, 'rb') as f:
      text = f.read().decode('utf-8', 'replace')
  except OSError:
    return ''
  return '\n'.join(text.rstrip().splitlines()[-lines:])


def _stderr_line(line: str) -> None:
  print(line, file=sys.stderr, flush=True)


def run_jobs(jobs: Sequence[Job], command: Callable[[Job], Sequence[str]], *,
             slots: int, log_dir: str,
             echo: Callable[[str], None] = _stderr_line,
             cores: Optional[Sequence[int]] = None,
             environment: Optional[dict] = None,
             poll_seconds: float = 0.5,
             grace_seconds: float = 120.0) -> dict:
  """Runs every job, each once its `after` jobs finished, `slots` at a time.

  Jobs start in the order given among those ready, each pinned to one slot's
  cores (`core_sets`).

  Args:
    jobs: the jobs; `after` names jobs of this list.
    command: the argv of a job's child process.
    slots: jobs at once (at most one per core).
    log_dir: `<job>.log` per job (appended to).
    echo: receives every output line, prefixed `[job]`, and the start/end lines.
    cores: the cores to share out (default: this process's).
    environment: the children's environment before the thread settings
      (default: this process's).
    poll_seconds: how often finished children are looked for.
    grace_seconds: how long jobs still running when one fails (or on
      Ctrl-C) get to save and end after their SIGINT.

  Returns:
    {job name: wall seconds}.

  Raises:
    JobFailedError naming the first job that failed (the others are stopped).
  """
  check_order(jobs)
  slot_cores = core_sets(slots, cores)
  os.makedirs(log_dir, exist_ok=True)
  pending, running, seconds = list(jobs), {}, {}
  try:
    while pending or running:
      free = [s for s in range(len(slot_cores))
              if s not in {r.slot for r in running.values()}]
      for job in list(pending):
        if not free:
          break
        if all(name in seconds for name in job.after):
          slot = free.pop(0)
          log_path = os.path.join(log_dir, f'{job.name}.log')
          echo(f'[jobs] {job.name}: started on core(s) '
               f'{",".join(map(str, slot_cores[slot]))} (log: {log_path})')
          running[job.name] = _Running(
              job, command(job), slot, slot_cores[slot], log_path,
              child_environment(slot_cores[slot], environment), echo)
          pending.remove(job)
      if not running:
        raise ValueError('jobs wait for each other: '
                         + ', '.join(job.name for job in pending))
      done = [r for r in running.values() if r.process.poll() is not None]
      if not done:
        time.sleep(poll_seconds)
        continue
      for finished in done:
        finished.finish()
        del running[finished.job.name]
        status = finished.process.returncode
        if status != 0:
          raise JobFailedError(
              f'{finished.job.name} failed (exit status {status}); its log: '
              f'{finished.log_path}; last lines:\n{_tail(finished.log_path)}')
        seconds[finished.job.name] = round(time.time() - finished.start, 1)
        echo(f'[jobs] {finished.job.name}: done in '
             f'{seconds[finished.job.name]:.0f}s')
  finally:
    for left in running.values():
      left.stop(grace_seconds)
  return seconds
