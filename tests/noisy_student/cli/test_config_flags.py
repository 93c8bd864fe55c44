"""Flags generated from config fields: number lists and renamed flags."""

from __future__ import annotations

import dataclasses

from absl import flags
import pytest

from noisy_student.cli import config_flags
from noisy_student.core.config import doc
from noisy_student.runtime import errors


@dataclasses.dataclass(frozen=True)
class _Job:
  seeds: tuple[int, ...] = doc((0, 1), 'Seeds.')
  rates: tuple[float, ...] = doc((0.5,), 'Rates.')
  names: tuple[str, ...] = doc(('a',), 'Names.')
  deterministic: bool = doc(False, 'Fixed order.')


def _parse(*argv):
  fv = flags.FlagValues()
  config_flags.define(_Job, fv)
  fv(['binary', *argv])
  return fv


def test_number_lists_become_tuples_of_numbers():
  fv = _parse('--seeds=3,4', '--rates=0.25,1')
  job = config_flags.build(_Job, fv)
  assert job == _Job(seeds=(3, 4), rates=(0.25, 1.0), names=('a',))
  assert config_flags.build(_Job, _parse()) == _Job()


def test_a_list_that_is_not_numbers_names_its_flag():
  with pytest.raises(errors.ConfigError,
                     match=r'^--seeds=1,x: expected comma-separated integers$'):
    config_flags.build(_Job, _parse('--seeds=1,x'))
  with pytest.raises(errors.ConfigError, match='--rates=a: expected '
                     'comma-separated numbers'):
    config_flags.build(_Job, _parse('--rates=a'))


def test_the_old_spelling_of_a_renamed_flag_still_works_with_a_warning(
    caplog):
  # `deterministic` is flagged --deterministic_input; --deterministic was the
  # demo's and ablate's spelling.
  assert config_flags.flag_name('deterministic') == 'deterministic_input'
  assert config_flags.OLD_FLAG_NAMES['deterministic_input'] == (
      'deterministic',)
  fv = _parse('--deterministic')
  assert config_flags.present(fv, 'deterministic')
  with caplog.at_level('WARNING'):
    assert config_flags.build(_Job, fv).deterministic is True
  assert ('--deterministic is the old name of --deterministic_input'
          in caplog.text)
  caplog.clear()
  fv = _parse('--deterministic_input')
  assert config_flags.build(_Job, fv).deterministic is True
  assert 'old name' not in caplog.text
  assert config_flags.build(_Job, _parse('--nodeterministic')
                            ).deterministic is False
  assert not config_flags.present(_parse(), 'deterministic')


def test_the_old_and_the_new_spelling_together_are_refused():
  with pytest.raises(errors.ConfigError, match='--deterministic is the old '
                     'name of --deterministic_input; pass only one of them'):
    config_flags.build(_Job, _parse('--deterministic',
                                    '--nodeterministic_input'))
