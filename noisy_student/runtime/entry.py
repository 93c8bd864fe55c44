"""How every binary starts and ends (see docs/errors.md).

Each binary module defines `define_flags(fv)`, `main(argv)` and

  def run():
    entry.run('iterate', main, define_flags)

which is what `python -m noisy_student.iterate` and the console script call.
`run` defines the flags once, parses them, and turns every error a user can
cause into one line on stderr and exit status 2:

* a bad flag value absl rejects (type, enum, required): `<binary>: error:
  flag --x=...: <reason>`;
* a `NoisyStudentError` from the library (bad value, file, record,
  checkpoint): `<binary>: error: <message naming the culprit>`.
Anything else is a bug: it keeps its traceback and exits with status 1.

Importing this module installs `quiet`'s filter of TensorFlow's start-up
banner, so every binary imports it before anything that imports TensorFlow
(tests/noisy_student/runtime/test_quiet.py checks the order).
"""

from __future__ import annotations

import dataclasses
import errno
import re
import sys
from typing import Callable, Sequence, TypeVar

from absl import app
from absl import flags
from absl import logging

from noisy_student.runtime import errors
from noisy_student.runtime import quiet

quiet.install()

USAGE_ERROR_STATUS = 2
# The shell's status for a process ended by SIGINT (128 + 2).
INTERRUPTED_STATUS = 130
ConfigT = TypeVar('ConfigT')


# TensorFlow's graph-function prefix of op errors: `{{function_node
# __wrapped__SaveV2_dtypes_10_device_/job:...}} ` names its internals.
_TF_FUNCTION_NODE = re.compile(r'\{\{function_node [^}]*\}\}\s*')


# A checkpoint's temporary shard, `<model_dir>/ckpt-5_temp/part-00000-of-
# 00001.data-00000-of-00001.tempstate123`: named as the checkpoint, ckpt-5.
_TF_CHECKPOINT_TEMP = re.compile(r'\b(ckpt-\d+)_temp/[^\s;:,]*')


def one_line(message: object) -> str:
  """The first line of `message` without TensorFlow's internal prefixes
  and temporary checkpoint paths."""
  text = _TF_FUNCTION_NODE.sub('', str(message)).strip()
  text = _TF_CHECKPOINT_TEMP.sub(r'\1', text)
  return text.splitlines()[0] if text else '?'


def fail(name: str, message: object) -> None:
  """Prints `<name>: error: <message>` (first line only) and exits with 2."""
  print(f'{name}: error: {one_line(message)}', file=sys.stderr, flush=True)
  sys.exit(USAGE_ERROR_STATUS)


# errno values of a full, read-only or forbidden disk.
_STORAGE_ERRNOS = (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM,
                   errno.EDQUOT)
# TensorFlow's errors for the same (its file system layer names the file).
_TF_STORAGE_ERRORS = ('PermissionDeniedError', 'ResourceExhaustedError')


def storage_error_line(error: BaseException) -> str | None:
  """One line for a full, read-only or forbidden disk, else None.

  The user's environment, not a bug: the message names the file (Python's
  OSError and TensorFlow's file system errors both do). Files written so far
  are whole (every write is atomic) and a rerun resumes.
  """
  if isinstance(error, OSError) and error.errno in _STORAGE_ERRNOS:
    where = f'{error.filename}: ' if error.filename else ''
    return f'{where}{error.strerror or error} (the disk is full, read-only or not writable)'
  if (type(error).__name__ in _TF_STORAGE_ERRORS
      and type(error).__module__.startswith('tensorflow')):
    return (f'{one_line(getattr(error, "message", error))} (check the disk: '
            'space, permissions)')
  return None


def _flags_parser(name: str, known_only: bool = False
                  ) -> Callable[[Sequence[str]], list[str]]:
  def parse(argv: Sequence[str]) -> list[str]:
    try:
      return flags.FLAGS(list(argv), known_only=known_only)
    except flags.Error as err:
      fail(name, err)
  return parse


def _docstring_for_help(main: Callable[[Sequence[str]], object]) -> None:
  """A console script's --help shows the binary's docstring, as `python -m` does.

  absl prints `__main__.__doc__`; under a console script (noisy-student-train)
  `__main__` is pip's generated launcher, which has none.
  """
  launcher = sys.modules.get('__main__')
  binary = sys.modules.get(getattr(main, '__module__', None) or '')
  if launcher is not None and binary is not None and not launcher.__doc__:
    launcher.__doc__ = binary.__doc__


def defined_flag_namer(field_flag: Callable[[str], str],
                       fv: flags.FlagValues = flags.FLAGS
                       ) -> Callable[[str], str]:
  """`field_flag`, naming only flags that `fv` defines.

  A field whose `field_flag` spelling the binary lacks is named `--<field>`
  when it has that (eval_robustness's `--image_size`), else as the field
  itself (the setting, as from Python): a library error reaching iterate
  never advises a `--small_image_model` that iterate does not have.
  """
  def namer(field: str) -> str:
    for flag in (field_flag(field), f'--{field}'):
      if flag[2:] in fv:
        return flag
    return field
  return namer


def run(name: str, main: Callable[[Sequence[str]], object],
        define_flags: Callable[[], None], *,
        verbosity: int = logging.INFO,
        pass_unknown_flags: bool = False,
        field_flag: Callable[[str], str] = lambda field: f'--{field}'
        ) -> None:
  """Defines the flags, parses them and runs `main` under the error contract.

  Library errors name config fields through `errors.field_name`; in `main`
  they read as the binary's flags, `field_flag(field)` (the project's
  binaries pass `cli.config_flags.as_flag`, which knows the original's
  spellings: `image_size` is `--input_image_size`), or the field where the
  binary has no such flag (`defined_flag_namer`).

  With `pass_unknown_flags`, flags the binary does not define stay in the
  `argv` handed to `main` (e.g. Beam pipeline options), which checks them.
  """
  define_flags()
  if 'verbose' not in flags.FLAGS:
    flags.DEFINE_bool('verbose', False, 'Also show TensorFlow\'s start-up '
                      'lines (noisy_student/runtime/quiet.py) and debug logs.')

  def guarded(argv: Sequence[str]) -> None:
    if flags.FLAGS.verbose:
      logging.set_verbosity(logging.DEBUG)
    if len(argv) > 1 and not pass_unknown_flags:
      fail(name, f'unexpected arguments {list(argv[1:])} (flags start with --)')
    try:
      # Config fields are named as flags in a binary's messages (a binary's
      # config_from_flags may enter its own table: cli/config_flags.py).
      with errors.naming(defined_flag_namer(field_flag)):
        main(argv)
    except errors.NoisyStudentError as err:
      fail(name, err)
    except KeyboardInterrupt:
      # Training saved its step first (training/controller.py); every other
      # output is written whole or not at all, and a rerun resumes.
      print(f'{name}: interrupted (Ctrl-C); the same command resumes',
            file=sys.stderr, flush=True)
      sys.exit(INTERRUPTED_STATUS)
    except Exception as err:  # pylint: disable=broad-except
      line = storage_error_line(err)
      if line is None:
        raise  # a bug: keep the traceback (status 1)
      fail(name, line)

  _docstring_for_help(main)
  logging.set_verbosity(verbosity)
  app.run(guarded, flags_parser=_flags_parser(name, pass_unknown_flags))


def dataclass_from_flags(config_class: type[ConfigT], fv: flags.FlagValues,
                         **values) -> ConfigT:
  """`config_class(...)` with each field from the flag of the same name.

  `values` give the fields whose flags have other names (or no flag); a
  field with neither keeps its default.
  """
  fields = {f.name: fv[f.name].value for f in dataclasses.fields(config_class)
            if f.name not in values and f.name in fv}
  return config_class(**fields, **values)
