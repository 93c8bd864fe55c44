"""One writer per folder: an advisory lock that dies with its process.

`exclusive(folder)` holds `fcntl.flock` on `<folder>/.writer.lock` (an empty
file, created once) for the block. A second trainer (or iterate run) on the
same folder is refused with one line naming the holder's pid; the kernel
drops the lock when the holder exits,
however it exits (SIGKILL included), so a killed run never leaves it stuck.
Folders on remote file systems (`gs://...`) are not locked (flock needs a
local or NFS path): the log says so.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import Iterator

from absl import logging

from noisy_student.runtime import errors

LOCK_FILE = '.writer.lock'


class FolderInUseError(errors.NoisyStudentError):
  """Another live process holds the folder's lock; names the folder and it."""


@contextlib.contextmanager
def exclusive(folder: str, what: str, *, flag: str = '--model_dir'
              ) -> Iterator[None]:
  """Holds the folder's lock for the block (creating the folder).

  Args:
    folder: the folder one process at a time may write.
    what: who holds it, for the message (e.g. 'trainer').
    flag: the flag a user changes to run elsewhere.

  Raises:
    FolderInUseError when another process holds it.
  """
  if '://' in folder:
    logging.info('%s is not on a local file system: not locked against a '
                 'second %s', folder, what)
    yield
    return
  os.makedirs(folder, exist_ok=True)
  path = os.path.join(folder, LOCK_FILE)
  # The file is created once and never written: a refused run changes nothing.
  fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      raise FolderInUseError(
          f'{folder}: another {what} is writing this folder ({holder(fd)}); '
          f'wait for it to finish, stop it, or pass another {flag}') from None
    try:
      yield
    finally:
      fcntl.flock(fd, fcntl.LOCK_UN)
  finally:
    os.close(fd)


def holder(fd: int) -> str:
  """'pid N' of the process holding the flock on open file `fd` (Linux's
  /proc/locks), else 'another process'."""
  stat = os.fstat(fd)
  device = f'{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}'
  try:
    with open('/proc/locks') as locks:
      for line in locks:
        fields = line.split()
        if len(fields) > 5 and fields[1] == 'FLOCK' and fields[5] == device:
          return f'pid {fields[4]}'
  except OSError:
    pass
  return 'another process'
