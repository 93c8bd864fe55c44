"""main's --mode=export settings from flags (checked before any work)."""

from absl import flags
import pytest

from noisy_student import main
from noisy_student.cli import main_flags
from noisy_student.runtime import errors


def _export_job(*extra: str) -> main.MainJob:
  fv = flags.FlagValues()
  main_flags.define_flags(fv)
  fv(['main', '--mode=export', '--use_tpu=false', '--model_dir=/tmp/m',
      '--export_dir=/tmp/e', *extra])
  return main.job_from_flags(fv)


@pytest.mark.parametrize('flag, keras_path', [
    ((), None),                                      # default: /tmp/e.keras
    (('--export_keras_path=none',), ''),             # no .keras file
    (('--export_keras_path=out/m.keras',), 'out/m.keras'),
])
def test_export_keras_path_flag(flag, keras_path):
  assert _export_job(*flag).export.keras_path == keras_path


def test_a_bad_export_keras_path_is_refused_before_work():
  with pytest.raises(errors.ConfigError, match='m.h5'):
    _export_job('--export_keras_path=m.h5')
