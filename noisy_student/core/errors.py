"""The errors `noisy_student` raises for bad input (one base class: see data/errors.py).

Library code raises these and never exits; each binary catches
`NoisyStudentError` once (`noisy_student.cli.entry`) and prints one line.
"""

from data.errors import ConfigError
from data.errors import MissingFileError
from data.errors import NoisyStudentError


class InputError(NoisyStudentError):
  """Input files are missing or unusable; the message names the pattern/file."""


class CheckpointError(NoisyStudentError):
  """A checkpoint is missing or does not fit the model; names the path."""


class FilterError(NoisyStudentError):
  """Filter inputs, statistics or plan disagree; the message names the file."""


class NonFiniteLossError(NoisyStudentError):
  """The training loss became NaN or infinite (names the step and the checkpoint kept)."""


__all__ = ['NoisyStudentError', 'MissingFileError', 'ConfigError', 'InputError', 'CheckpointError',
           'FilterError', 'NonFiniteLossError']
