"""The project's one family of user errors (see docs/errors.md).

It lives in `noisy_student.runtime`, below every other package, so that
`data`, `efficientnet` and the rest of `noisy_student` all raise these. A
`NoisyStudentError` is a problem with the user's input (a flag or argument
value, a file, a record, a checkpoint), never a bug: its message is one line
naming the value, file or record at fault. Every binary prints it as
`<binary>: error: <message>` and exits with status 2
(`noisy_student.runtime.entry`); anything else that escapes a binary is a bug
(status 1, traceback).

A config field is named as the caller knows it: `field_name('randaug_magnitude')`
is `randaug_magnitude` from Python, and `--randaug_mag` (or `--student_randaug_mag`)
inside `noisy_student.cli.config_flags.flag_names()`, which every binary's
`config_from_flags` enters.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Callable, Iterator, Optional


class NoisyStudentError(ValueError):
  """A user-caused problem; the message names the flag, file or value."""


class MissingFileError(NoisyStudentError, FileNotFoundError):
  """A file or folder the user pointed at does not exist; the message names it."""


class ConfigError(NoisyStudentError):
  """A flag, argument or config value is invalid; the message names it."""


class InputError(NoisyStudentError):
  """Input files are missing or unusable; the message names the pattern/file."""


class CheckpointError(NoisyStudentError):
  """A checkpoint or model file is missing or does not fit; names the path."""


class FilterError(NoisyStudentError):
  """Filter inputs, statistics or plan disagree; the message names the file."""


class NonFiniteLossError(NoisyStudentError):
  """The training loss became NaN or infinite (names the step and the checkpoint kept)."""


_NAMER: contextvars.ContextVar[Optional[Callable[[str], str]]] = (
    contextvars.ContextVar('noisy_student_field_namer', default=None))


def field_name(field: str) -> str:
  """How an error message names config field `field` for this caller.

  The field itself from Python (the argument the caller passed); the flag
  (`--randaug_mag`) inside `naming(...)`, which binaries enter.
  """
  namer = _NAMER.get()
  return field if namer is None else namer(field)


@contextlib.contextmanager
def naming(namer: Callable[[str], str]) -> Iterator[None]:
  """Within the block, `field_name(f)` is `namer(f)`."""
  token = _NAMER.set(namer)
  try:
    yield
  finally:
    _NAMER.reset(token)


__all__ = ['NoisyStudentError', 'MissingFileError', 'ConfigError',
           'InputError', 'CheckpointError', 'FilterError',
           'NonFiniteLossError', 'field_name', 'naming']
