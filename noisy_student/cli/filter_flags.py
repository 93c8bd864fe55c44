"""The selection flags of `filter_unlabel` and `beam_label` (the original's names).

Both binaries turn them into one `selection.Settings`, so the offline filter
and the Beam pipeline select with the same settings from the same flags.
"""

from __future__ import annotations

from absl import flags

from noisy_student.runtime import errors
from noisy_student.pseudo import selection


def define_flags(fv: flags.FlagValues = flags.FLAGS, *,
                 num_label_classes: int = 1000,
                 num_label_classes_help: str = 'Classes of the teacher.'
                 ) -> None:
  """Defines the selection, sample and shuffle flags on `fv`."""
  flags.DEFINE_integer('num_image', 1300, 'Images per class after balancing.', flag_values=fv)
  flags.DEFINE_float('min_threshold', 0.0, 'Keep images whose top-1 '
                     'probability is >= this.', flag_values=fv)
  flags.DEFINE_float('max_prob', 2, 'Keep images whose top-1 probability is '
                     '<= this (it can exceed 1 by rounding).', flag_values=fv)
  flags.DEFINE_integer('num_label_classes', num_label_classes,
                       num_label_classes_help, flag_values=fv)
  flags.DEFINE_integer('upsample', 1, '1: duplicate images of classes with '
                       'fewer than --num_image images.', flag_values=fv)
  flags.DEFINE_integer('use_top', 1, '1: keep the most confident images of '
                       'abundant classes; 0: a seeded random choice.', flag_values=fv)
  flags.DEFINE_bool('use_all', False, 'Keep every image above the threshold '
                    'once, without balancing.', flag_values=fv)
  flags.DEFINE_enum('balance', 'exact', list(selection.BALANCE_MODES),
                    'exact: every class gets exactly --num_image records '
                    '(deterministic); random: the original rule (each image '
                    'above the class threshold gets a random number of '
                    'copies with mean num_image / count).', flag_values=fv)
  flags.DEFINE_integer('seed', 12345, 'Seed of shuffling and random choices.', flag_values=fv)
  flags.DEFINE_integer('num_samples_per_class', 10, 'Sample images per class '
                       'saved under <output_dir>/samples/<class>/.', flag_values=fv)
  flags.DEFINE_integer('shuffle_buffer_mb', 512, 'In-memory shuffle limit per '
                       'output shard; larger shards shuffle through temporary '
                       'bucket files.', flag_values=fv)


def settings_from_flags(fv: flags.FlagValues,
                        num_label_classes: int | None = None
                        ) -> selection.Settings:
  """`selection.Settings` from the flags; `num_label_classes` overrides its flag.

  Raises:
    ConfigError naming the flag of a bad value.
  """
  try:
    return selection.Settings(
        num_label_classes=(fv.num_label_classes if num_label_classes is None
                           else num_label_classes),
        num_image=fv.num_image, min_threshold=fv.min_threshold,
        max_prob=fv.max_prob, upsample=bool(fv.upsample),
        use_top=bool(fv.use_top), use_all=fv.use_all, balance=fv.balance,
        seed=fv.seed)
  except ValueError as err:
    raise errors.ConfigError(str(err)) from None
