"""The beam_label binary: the same pseudo-labels as main --mode=predict + filter_unlabel.

The end-to-end check of issue #16: a tiny teacher trained on the digits labels
the 8 unlabeled shards through both paths; the Beam pipeline runs on the
DirectRunner's engine with 2 worker processes.
"""

from __future__ import annotations

import collections
import glob
import json
import sys

from absl import flags
import pytest
import tensorflow as tf

from data import records
from noisy_student import beam_label
from noisy_student.runtime import errors
from noisy_student.drivers import beam_pipeline
from noisy_student.pseudo import filter_passes
from tests import helpers

NUM_IMAGE = 60


def _pairs(output_dir: str) -> collections.Counter:
  """Multiset of (image bytes, pseudo label) of the output shards."""
  files = sorted(glob.glob(f'{output_dir}/data/train-*'))
  assert files, f'no output shard in {output_dir}/data'
  out = collections.Counter()
  for serialized in tf.data.TFRecordDataset(files).as_numpy_iterator():
    fields = records.read_example(serialized)
    out[(fields[records.IMAGE_KEY],
         int(fields[records.PSEUDO_LABEL_KEY][0]))] += 1
  return out


def _per_class(pairs: collections.Counter) -> list[int]:
  counts = [0] * 10
  for (_, label), n in pairs.items():
    counts[label] += n
  return counts


def _final(output_dir: str) -> dict:
  with open(f'{output_dir}/stats/final_stats.json') as f:
    return json.load(f)


def _filter_unlabel(digits_dir, root, out, *extra):
  common = [sys.executable, '-m', 'noisy_student.filter_unlabel',
            f'--input_dir={digits_dir}/unlabeled', '--file_prefix=extra',
            f'--prediction_dir={root}/pred', f'--info_dir={root}/info',
            f'--output_dir={out}', '--num_shards=8', '--shard_id=all',
            '--num_label_classes=10', f'--num_image={NUM_IMAGE}',
            '--min_threshold=0', *extra]
  helpers.run(common + ['--only_get_stats=1'])
  helpers.run(common + ['--only_get_stats=0'])


def _beam_label(digits_dir, teacher, out, *extra):
  return helpers.run([
      sys.executable, '-m', 'noisy_student.beam_label',
      f'--input_pattern={digits_dir}/unlabeled/extra-*', f'--teacher={teacher}',
      f'--output_dir={out}', f'--num_image={NUM_IMAGE}', '--min_threshold=0',
      '--batch_size=64', *extra])


@pytest.mark.slow
def test_beam_pipeline_selects_what_predict_and_filter_unlabel_select(
    digits_dir, tmp_path):
  root, teacher = str(tmp_path), str(tmp_path / 'teacher')
  helpers.run(helpers.main_flags(digits_dir, teacher, '--mode=train'))
  helpers.run(helpers.main_flags(
      digits_dir, teacher, '--mode=predict', f'--predict_ckpt_path={teacher}',
      f'--label_data_dir={digits_dir}/unlabeled', '--file_prefix=extra',
      '--num_shards=8', '--shard_id=all', f'--output_dir={root}/pred',
      f'--info_dir={root}/info', '--predict_batch_size=64'))

  # --balance=exact: the same (image, label) pairs, each as often.
  _filter_unlabel(digits_dir, root, f'{root}/offline')
  result = _beam_label(digits_dir, teacher, f'{root}/beam',
                       '--direct_num_workers=2',
                       '--direct_running_mode=multi_processing')
  assert 'pseudo-labeled records' in result.stdout
  offline, beam = _pairs(f'{root}/offline'), _pairs(f'{root}/beam')
  assert beam == offline
  assert set(_per_class(beam)) <= {0, NUM_IMAGE}
  assert _final(f'{root}/beam') == _final(f'{root}/offline')
  assert filter_passes.check_filter_output(f'{root}/beam', 0.0) == sum(beam.values())

  # --balance=random: the same per-class counts (same seed); the Beam run
  # reuses its predictions (the teacher does not run again).
  _filter_unlabel(digits_dir, root, f'{root}/offline_random',
                  '--balance=random')
  _beam_label(digits_dir, teacher, f'{root}/beam_random', '--balance=random',
              f'--prediction_dir={root}/beam/predictions')
  offline, beam = _pairs(f'{root}/offline_random'), _pairs(f'{root}/beam_random')
  assert _per_class(beam) == _per_class(offline)
  assert beam == offline


@pytest.mark.slow
def test_worker_processes_log_at_the_level_of_the_rest(digits_dir, tmp_path):
  """Two worker processes on two shards: their progress lines and warnings,
  once each; not Beam's INFO lines (worker start-up, every channel) nor the
  job service's copy of every worker record."""
  from noisy_student.models import backbones  # pylint: disable=g-import-not-at-top
  from noisy_student.models import export  # pylint: disable=g-import-not-at-top
  teacher = str(tmp_path / 'teacher.keras')
  export.export_keras(backbones.build_model(helpers.tiny_model()), teacher)
  result = helpers.run([
      sys.executable, '-m', 'noisy_student.beam_label',
      f'--input_pattern={digits_dir}/unlabeled/extra-0000[01]-*',
      f'--teacher={teacher}', f'--output_dir={tmp_path / "out"}',
      '--num_label_classes=10', '--small_image_model', '--num_image=20',
      '--min_threshold=0', '--batch_size=64',
      '--direct_num_workers=2', '--direct_running_mode=multi_processing'])
  lines = result.stderr.splitlines()
  assert 'pseudo-labeled records' in result.stdout
  assert sum('images in' in l for l in lines) == 2, result.stderr  # 2 shards
  assert not [l for l in lines if 'Worker: ' in l or 'channel' in l
              or 'sdk_worker' in l], result.stderr
  # 3 start-up lines per worker, 2 progress lines, at most 11 warnings about
  # the 10 classes, the summary.
  assert len(lines) <= 25, result.stderr


def _config(*args):
  fv = flags.FlagValues()
  beam_label.define_flags(fv)
  fv(['beam_label', *args])
  return beam_label.config_from_flags(fv)


def test_flags_are_checked_before_any_work(tmp_path):
  keras_file = tmp_path / 'teacher.keras'
  keras_file.write_bytes(b'')  # only its name is checked before any work
  common = [f'--teacher={keras_file}', f'--output_dir={tmp_path}/out']
  cases = [
      ([f'--teacher={tmp_path}', f'--output_dir={tmp_path}/out'],
       f'--teacher={tmp_path}: neither'),
      (common + ['--input_pattern=x'], '--num_label_classes is required'),
      (common + ['--num_label_classes=10'],
       'exactly one of --input_pattern and --image_pattern'),
      (common + ['--num_label_classes=10', '--input_pattern=x',
                 '--min_threshold=2'], '--min_threshold must be in [0, 1]'),
  ]
  for args, message in cases:
    with pytest.raises(errors.NoisyStudentError) as error:
      _config(*args)
    assert message in str(error.value), args
  config = _config(*common, '--num_label_classes=10',
                   f'--input_pattern={tmp_path}/x-*')
  assert config.prediction_dir == f'{tmp_path}/out/predictions'
  with pytest.raises(errors.InputError, match='no file matches'):
    beam_pipeline.run(config, ['--direct_num_workers=2'])
  assert not (tmp_path / 'out').exists()
  # The teacher's size flags have main's names; the old spellings still work.
  sized = _config(*common, '--num_label_classes=10', '--input_pattern=x',
                  '--input_image_size=40', '--small_image_model')
  assert (sized.image_size, sized.small_image) == (40, True)
  old = _config(*common, '--num_label_classes=10', '--input_pattern=x',
                '--image_size=40', '--small_image')
  assert (old.image_size, old.small_image) == (40, True)
  assert _config(*common, '--num_label_classes=10', '--input_pattern=x',
                 '--image_size=0').image_size is None  # 0: the teacher's


def test_user_errors_are_one_line_with_status_2(tmp_path):
  base = [sys.executable, '-m', 'noisy_student.beam_label',
          f'--output_dir={tmp_path}/out']
  for args, message in (
      ([], '--teacher is required'),
      ([f'--teacher={helpers.REPO_ROOT}', '--min_treshold=0.3'],
       f'--teacher={helpers.REPO_ROOT}: neither')):
    result = helpers.run(base + args, check=False)
    assert result.returncode == 2, (args, result.stderr[-2000:])
    lines = [l for l in result.stderr.splitlines()
             if l.startswith('beam_label: error:')]
    assert len(lines) == 1 and message in lines[0], (args, result.stderr[-2000:])
