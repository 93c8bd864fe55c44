"""Flags generated from the config dataclasses: one declaration per field.

A config field (its type, default and help text, `core.config.doc`) becomes
a flag of the same name, so that a new field is one edit: every binary that
exposes its dataclass gets the flag. `FLAG_NAMES` is the one table of the
fields whose flag keeps another name (the original release's); `prefix`
gives iterate its `--teacher_*` / `--student_*` copies.

  config_flags.define(config_lib.TrainConfig, fv, base=defaults.ORIGINAL.train)
  with config_flags.flag_names():
    train = config_flags.build(config_lib.TrainConfig, fv, base=...)

Inside `flag_names(prefix)` every `ConfigError` a dataclass raises names the
flag (`--randaug_mag`, `--student_dropout_rate`), not the field.
`OLD_FLAG_NAMES` keeps a renamed flag's old spelling working, with a warning.
`tests/test_ownership.py` fails when a binary declares a flag of a field of
the configs it builds by hand.
"""

from __future__ import annotations

import contextlib
import dataclasses
import types
import typing
from typing import Any, Iterator, Optional, Sequence

from absl import flags
from absl import logging

from noisy_student.runtime import errors

# Fields whose flag is named otherwise (the original release's flag names).
FLAG_NAMES = {
    'randaug_magnitude': 'randaug_mag',
    'randaug_num_layers': 'randaug_layer',
    'use_cutout_op': 'cutout_op',
    'unl_augment_name': 'unl_aug',
    'image_size': 'input_image_size',
    'num_classes': 'num_label_classes',
    'small_image': 'small_image_model',
    'deterministic': 'deterministic_input',
    'clean_file_pattern': 'clean_pattern',
}
# Old spellings of a flag, still accepted with a warning: {flag: (old, ...)}.
# (The demo and ablate called --deterministic_input --deterministic;
# beam_label called --input_image_size and --small_image_model --image_size
# and --small_image.)
OLD_FLAG_NAMES = {'deterministic_input': ('deterministic',),
                  'input_image_size': ('image_size',),
                  'small_image_model': ('small_image',)}


def flag_name(field: str, prefix: str = '') -> str:
  """The flag of config field `field` (without the dashes)."""
  return prefix + FLAG_NAMES.get(field, field)


def as_flag(field: str) -> str:
  """`--<flag>` of config field `field` (what binaries' errors print)."""
  return f'--{flag_name(field)}'


@contextlib.contextmanager
def flag_names(prefix: str = '',
               prefixed: Optional[Sequence[str]] = None) -> Iterator[None]:
  """Errors raised in the block name fields as their flags.

  `prefix` is prepended to the flags of the fields in `prefixed` (None: every
  field), e.g. iterate's `--teacher_train_steps` beside the shared
  `--final_base_lr`.
  """
  def namer(field: str) -> str:
    own = prefixed is None or field in prefixed
    return f'--{flag_name(field, prefix if own else "")}'
  with errors.naming(namer):
    yield


def _base_type(annotation) -> tuple[Any, bool]:
  """(the type without Optional, whether None is allowed)."""
  origin = typing.get_origin(annotation)
  if origin in (typing.Union, types.UnionType):
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if len(args) == 1:
      return args[0], True
  return annotation, False


def _definer(field: dataclasses.Field, annotation):
  """The absl DEFINE_* function for a field, and its extra arguments."""
  kind, _ = _base_type(annotation)
  choices = field.metadata.get('choices')
  if kind is bool:
    return flags.DEFINE_bool, {}
  if kind is int:
    return flags.DEFINE_integer, {}
  if kind is float:
    return flags.DEFINE_float, {}
  if kind is str:
    if choices:
      return flags.DEFINE_enum, {'enum_values': list(choices)}
    return flags.DEFINE_string, {}
  if typing.get_origin(kind) is tuple and typing.get_args(kind)[:1] in (
      (str,), (int,), (float,)):
    return flags.DEFINE_list, {}
  raise TypeError(f'{field.name}: no flag type for {annotation!r}')


def flag_fields(config_class: type, *, fields: Optional[Sequence[str]] = None,
                exclude: Sequence[str] = ()) -> list[dataclasses.Field]:
  """The dataclass fields `define` turns into flags, in declaration order."""
  known = {f.name: f for f in dataclasses.fields(config_class)}
  unknown = sorted((set(fields or ()) | set(exclude)) - set(known))
  if unknown:
    raise KeyError(f'{config_class.__name__} has no fields {unknown}')
  names = list(fields) if fields is not None else list(known)
  return [known[n] for n in names if n not in exclude]


def define(config_class: type, fv: flags.FlagValues, *,
           fields: Optional[Sequence[str]] = None, exclude: Sequence[str] = (),
           prefix: str = '', base: Any = None,
           defaults: Optional[dict] = None,
           help_prefix: str = '') -> list[str]:
  """Defines one flag per field of `config_class`; returns the flag names.

  Args:
    fields / exclude: which fields (default: all, in declaration order).
    prefix: prepended to every flag name (`teacher_`).
    base: an instance whose values are the defaults (a recipe); else the
      fields' own defaults.
    defaults: per-field defaults overriding both (a binary's own, e.g. None
      = "the dataset's"). An enum field may default to a value outside its
      choices (e.g. '' = unset), which becomes a choice of the flag. A field
      without any default is a required flag.
    help_prefix: prepended to every help text ('Teacher: ').
  """
  hints = typing.get_type_hints(config_class)
  defaults = defaults or {}
  names = []
  for field in flag_fields(config_class, fields=fields, exclude=exclude):
    if 'help' not in field.metadata:
      raise KeyError(f'{config_class.__name__}.{field.name} has no help text '
                     '(core.config.doc)')
    required = False
    if field.name in defaults:
      default = defaults[field.name]
    elif base is not None:
      default = getattr(base, field.name)
    elif field.default is dataclasses.MISSING:  # a required field
      default, required = None, True
    else:
      default = field.default
    definer, extra = _definer(field, hints[field.name])
    if ('enum_values' in extra and default is not None
        and default not in extra['enum_values']):
      extra['enum_values'] = [default, *extra['enum_values']]
    if definer is flags.DEFINE_list and default is not None:
      default = [str(v) for v in default]
    name = flag_name(field.name, prefix)
    definer(name, default, help=help_prefix + field.metadata['help'],
            flag_values=fv, **extra)
    if required:
      flags.mark_flag_as_required(name, flag_values=fv)
    for old in OLD_FLAG_NAMES.get(name, ()):
      definer(old, None, help=f'Old name of --{name} (still accepted, with '
              'a warning).', flag_values=fv, **extra)
    names.append(name)
  return names


def _value(fv: flags.FlagValues, name: str):
  """The value of flag `name`, or of its old spelling when only that was
  given (with a warning; both given: ConfigError)."""
  given_old = [old for old in OLD_FLAG_NAMES.get(name, ())
               if old in fv and fv[old].present]
  if not given_old:
    return fv[name].value
  old = given_old[0]
  if fv[name].present:
    raise errors.ConfigError(f'--{old} is the old name of --{name}; pass '
                             'only one of them')
  logging.warning('--%s is the old name of --%s; it still works, but pass '
                  '--%s', old, name, name)
  return fv[old].value


def _number_list(name: str, kind, value) -> tuple:
  try:
    return tuple(kind(v) for v in value)
  except ValueError:
    raise errors.ConfigError(
        f'--{name}={",".join(str(v) for v in value)}: expected '
        f'comma-separated {"integers" if kind is int else "numbers"}'
        ) from None


def values(config_class: type, fv: flags.FlagValues, *,
           fields: Optional[Sequence[str]] = None, exclude: Sequence[str] = (),
           prefix: str = '') -> dict:
  """{field: its flag's value} for the fields `define` declared."""
  hints = typing.get_type_hints(config_class)
  out = {}
  for field in flag_fields(config_class, fields=fields, exclude=exclude):
    name = flag_name(field.name, prefix)
    value = _value(fv, name)
    kind, _ = _base_type(hints[field.name])
    if value is not None and typing.get_origin(kind) is tuple:
      item = typing.get_args(kind)[0]
      value = (_number_list(name, item, value) if item in (int, float)
               else tuple(value))
    out[field.name] = value
  return out


def present(fv: flags.FlagValues, field: str, prefix: str = '') -> bool:
  """True when the flag of `field` (or its old spelling) was given."""
  name = flag_name(field, prefix)
  return fv[name].present > 0 or any(
      old in fv and fv[old].present for old in OLD_FLAG_NAMES.get(name, ()))


def build(config_class: type, fv: flags.FlagValues, *,
          fields: Optional[Sequence[str]] = None, exclude: Sequence[str] = (),
          prefix: str = '', base: Any = None, **changes):
  """`config_class` from its flags (over `base`'s other fields) and `changes`.

  Errors name the flags (`flag_names(prefix)`).
  """
  fields_values = values(config_class, fv, fields=fields, exclude=exclude,
                         prefix=prefix)
  fields_values.update(changes)
  with flag_names(prefix):
    if base is not None:
      return dataclasses.replace(base, **fields_values)
    return config_class(**fields_values)
