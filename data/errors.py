"""The project's one error base class (see docs/errors.md).

It lives in `data`, the lowest package, so that `data`, `efficientnet` and
`noisy_student` can all raise subclasses of it. A `NoisyStudentError` is a
problem with the user's input (a flag value, a file, a record, a checkpoint),
never a bug: its message is one line naming the flag, file or record at fault,
and every binary prints it as `<binary>: error: <message>` and exits with
status 2. Anything else that escapes a binary is a bug (status 1, traceback).
"""


class NoisyStudentError(ValueError):
  """A user-caused problem; the message names the flag, file or value."""


class MissingFileError(NoisyStudentError, FileNotFoundError):
  """A file or folder the user pointed at does not exist; the message names it."""


class ConfigError(NoisyStudentError):
  """A flag or config value is invalid; the message names the flag."""
