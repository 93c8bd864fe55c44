"""One writer per folder: an advisory lock that dies with its process.

`exclusive(folder)` holds `fcntl.flock` on `<folder>/.writer.lock` (an empty
file, created once, never written) for the block, and names its holder in
`<folder>/.writer.pid` while it holds it (removed on release). A second
trainer (or iterate / ablate run) on the same folder is refused with one line
naming the holder, and so is one in a folder below a held one (a trainer
inside a running iterate's work_dir); the kernel drops the lock when the holder exits, however
it exits (SIGKILL included), so a killed run never leaves it stuck (a stale
`.writer.pid` is only read while the lock is held). Within one process the
lock is re-entrant (ablate holds a seed's folder while iterate's rounds run
in it), and a child process works in its parent's folders
(`for_children`). Folders on remote file systems (`gs://...`) and file systems without
`flock` are not locked: the log says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from typing import Iterator, Optional

from absl import logging

from noisy_student.runtime import errors

LOCK_FILE = '.writer.lock'
HOLDER_FILE = '.writer.pid'

_held: set[str] = set()  # folders this process holds
# Set by a parent for its child processes: the folders it holds for them.
PARENT_LOCKS_ENV = 'NOISY_STUDENT_PARENT_LOCKS'


def for_children(env: dict) -> dict:
  """`env` for child processes that work in the folders this process holds
  (ablate's parallel jobs): they write there without taking the lock, while
  this process is their parent."""
  return dict(env, **{PARENT_LOCKS_ENV: json.dumps(
      {'pid': os.getpid(), 'folders': sorted(_held)})})


def _held_by_parent() -> set[str]:
  try:
    record = json.loads(os.environ.get(PARENT_LOCKS_ENV, ''))
    if record['pid'] == os.getppid():
      return set(record['folders'])
  except (ValueError, KeyError, TypeError):
    pass
  return set()


class FolderInUseError(errors.NoisyStudentError):
  """Another live process holds the folder's lock; names the folder and it."""


def _holder(folder: str) -> str:
  try:
    with open(os.path.join(folder, HOLDER_FILE)) as f:
      return f.read().strip() or 'another process'
  except OSError:
    return 'another process'


def _check_ancestors(key: str, what: str, flag: str) -> None:
  """FolderInUseError when a folder above `key` is held by another process
  (e.g. `main --mode=train` into a stage folder of a running iterate)."""
  ours = _held | _held_by_parent()
  below, parent = key, os.path.dirname(key)
  while parent and parent != below:
    lock = os.path.join(parent, LOCK_FILE)
    if parent not in ours and os.path.exists(lock):
      try:
        fd = os.open(lock, os.O_RDONLY)
      except OSError:
        fd = None
      if fd is not None:
        try:
          fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
          raise FolderInUseError(
              f'{key}: it is inside {parent}, which another job is writing '
              f'({_holder(parent)}); wait for it to finish, or pass another '
              f'{flag} for this {what}') from None
        except OSError:
          pass  # no flock here
        finally:
          os.close(fd)  # also releases the shared lock
    below, parent = parent, os.path.dirname(parent)


@contextlib.contextmanager
def exclusive(folder: str, what: str, *, flag: Optional[str] = None
              ) -> Iterator[None]:
  """Holds the folder's lock for the block (creating the folder).

  Args:
    folder: the folder one process at a time may write.
    what: who holds it, for the message (e.g. 'trainer').
    flag: the flag a user changes to run elsewhere; default the model_dir
      field as `errors.field_name` names it (`--model_dir` in main, no flag
      in iterate, which has none).

  Raises:
    FolderInUseError when another process holds it, or a folder above it.
  """
  key = os.path.abspath(folder)
  if '://' in folder or key in _held or key in _held_by_parent():
    if '://' in folder:
      logging.info('%s is not on a local file system: not locked against a '
                   'second %s', folder, what)
    yield
    return
  flag = flag or errors.field_name('model_dir')
  _check_ancestors(key, what, flag)
  os.makedirs(folder, exist_ok=True)
  fd = os.open(os.path.join(folder, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      raise FolderInUseError(
          f'{folder}: another {what} is writing this folder '
          f'({_holder(folder)}); wait for it to finish, stop it, or pass '
          f'another {flag}') from None
    except OSError as err:  # no flock here (some network / FUSE mounts)
      logging.warning('%s: cannot lock (%s); a second %s on it would not be '
                      'refused', folder, err, what)
      yield
      return
    holder = os.path.join(folder, HOLDER_FILE)
    with open(holder, 'w') as f:
      f.write(f'pid {os.getpid()} on {socket.gethostname()}')
    _held.add(key)
    try:
      yield
    finally:
      _held.discard(key)
      with contextlib.suppress(OSError):
        os.remove(holder)
      fcntl.flock(fd, fcntl.LOCK_UN)
  finally:
    os.close(fd)
