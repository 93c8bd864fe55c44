"""The selection flags of `filter_unlabel` and `beam_label` (the original's names).

Both binaries turn them into one `selection.Settings`, so the offline filter
and the Beam pipeline select with the same settings from the same flags; the
flags are generated from its fields (`cli/config_flags.py`).
"""

from __future__ import annotations

from absl import flags

from noisy_student.cli import config_flags
from noisy_student.pseudo import selection

# The original's filter defaults where they differ from Settings' own.
_DEFAULTS = {'num_image': 1300}


def define_flags(fv: flags.FlagValues = flags.FLAGS, *,
                 num_label_classes: int | None = 1000,
                 num_label_classes_help: str = 'Classes of the teacher.'
                 ) -> None:
  """Defines the selection flags and --shuffle_buffer_mb on `fv`."""
  config_flags.define(selection.Settings, fv, exclude=('num_label_classes',),
                      defaults=_DEFAULTS)
  config_flags.define(selection.Settings, fv, fields=('num_label_classes',),
                      defaults={'num_label_classes': num_label_classes})
  fv['num_label_classes'].help = num_label_classes_help
  # The configs hold bytes (tests use tiny buffers); the flag is in MiB.
  flags.DEFINE_integer('shuffle_buffer_mb', 512, 'In-memory shuffle limit per '
                       'output shard; larger shards shuffle through temporary '
                       'bucket files.', flag_values=fv)


def shuffle_buffer_bytes(fv: flags.FlagValues) -> int:
  """--shuffle_buffer_mb in bytes."""
  return fv.shuffle_buffer_mb << 20


def settings_from_flags(fv: flags.FlagValues,
                        num_label_classes: int | None = None
                        ) -> selection.Settings:
  """`selection.Settings` from the flags; `num_label_classes` overrides its flag.

  Raises:
    ConfigError naming the flag of a bad value.
  """
  return config_flags.build(
      selection.Settings, fv, exclude=('num_label_classes',),
      num_label_classes=(fv.num_label_classes if num_label_classes is None
                         else num_label_classes))
