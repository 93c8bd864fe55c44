"""The Beam pipeline (FnApiRunner, in process) against the offline path.

A tiny untrained teacher (.keras) labels the digits' 8 unlabeled shards; the
offline path is `predict.predict_shard` per shard + both `filter_passes`.
"""

from __future__ import annotations

import glob
import os

import keras
import pytest
import tensorflow as tf

from data import records
from noisy_student.runtime import errors
from noisy_student.drivers import beam_inputs
from noisy_student.drivers import beam_pipeline
from noisy_student.models import backbones
from noisy_student.models import export
from noisy_student.models import loading
from noisy_student.pseudo import filter_files
from noisy_student.pseudo import filter_passes
from noisy_student.pseudo import predict
from noisy_student.pseudo import selection
from tests import helpers

NUM_SHARDS = 8


@pytest.fixture(scope='module')
def teacher(tmp_path_factory) -> str:
  path = str(tmp_path_factory.mktemp('teacher') / 'teacher.keras')
  export.export_keras(backbones.build_model(helpers.tiny_model()), path)
  return path


def _settings(**changes) -> selection.Settings:
  return selection.Settings(**dict(dict(num_label_classes=10, num_image=60),
                                   **changes))


def _config(teacher, digits_dir, out, **changes):
  fields = dict(teacher=teacher, output_dir=out, settings=_settings(),
                input_pattern=f'{digits_dir}/unlabeled/extra-*',
                small_image=True, num_samples_per_class=1)
  fields.update(changes)
  return beam_inputs.BeamLabelConfig(**fields)


def _offline(teacher, digits_dir, out, settings) -> filter_files.FilterConfig:
  """predict_shard on every shard, then both filter passes (one process)."""
  model, config = loading.load_for_inference(
      teacher, helpers.tiny_model(), tf.distribute.get_strategy(), name='t')
  for shard in range(NUM_SHARDS):
    predict.predict_shard(
        model, tf.distribute.get_strategy(),
        data_dir=f'{digits_dir}/unlabeled', file_prefix='extra',
        shard_id=shard, num_shards=NUM_SHARDS, output_dir=f'{out}/pred',
        info_dir=f'{out}/info', image_size=config.image_size,
        small_image=config.small_image, batch_size=64)
  fc = filter_files.FilterConfig(
      input_dir=f'{digits_dir}/unlabeled', prediction_dir=f'{out}/pred',
      info_dir=f'{out}/info', output_dir=f'{out}/filter', settings=settings,
      file_prefix='extra', num_shards=NUM_SHARDS, num_samples_per_class=1)
  filter_passes.run_pass(fc, fc.units, only_get_stats=True)
  filter_passes.run_pass(fc, fc.units, only_get_stats=False)
  return fc


def _shard_bytes(output_dir: str) -> dict[str, bytes]:
  return {os.path.basename(p): open(p, 'rb').read()
          for p in sorted(glob.glob(f'{output_dir}/data/train-*'))}


def _files(root: str) -> dict[str, float]:
  return {p: os.stat(p).st_mtime_ns
          for p in glob.glob(f'{root}/**', recursive=True) if os.path.isfile(p)}


@pytest.mark.parametrize('balance', ['exact', 'random'])
def test_same_shards_and_stats_as_offline_path(teacher, digits_dir, tmp_path,
                                               balance):
  settings = _settings(balance=balance)
  fc = _offline(teacher, digits_dir, str(tmp_path / 'offline'), settings)
  final = beam_pipeline.run(_config(teacher, digits_dir, str(tmp_path / 'beam'),
                                    settings=settings))
  offline = _shard_bytes(fc.output_dir)
  assert len(offline) == NUM_SHARDS
  # Same names, same bytes: same records, labels, soft labels and order.
  assert _shard_bytes(str(tmp_path / 'beam')) == offline
  metrics = final.pop('metrics')
  assert final == filter_files.load_json(filter_files.final_stats_path(fc))
  assert final['num_written'] > 0
  # Beam counters: every image read and labeled once, kept per class.
  assert metrics[beam_pipeline.IMAGES_READ] == final['num_prediction_records']
  assert metrics[beam_pipeline.IMAGES_LABELED] == metrics[beam_pipeline.IMAGES_READ]
  assert metrics[beam_pipeline.RECORDS_WRITTEN] == final['num_written']
  assert [metrics.get(f'{beam_pipeline.KEPT_CLASS}{c}', 0)
          for c in range(10)] == final['per_class']
  if balance == 'exact':
    assert set(final['per_class']) <= {0, 60}
  example = records.read_example(next(iter(
      tf.data.TFRecordDataset(sorted(glob.glob(
          str(tmp_path / 'beam/data/train-*')))).as_numpy_iterator())))
  assert example[records.PROBABILITIES_KEY].shape == (10,)


def test_rerun_writes_nothing_and_failed_run_resumes(teacher, digits_dir,
                                                     tmp_path, monkeypatch):
  out = str(tmp_path / 'out')
  config = _config(teacher, digits_dir, out)
  real_select = filter_passes.select_unit

  def failing_select(fc, plan, shard, task):
    if shard == 5:
      raise RuntimeError('worker lost')
    return real_select(fc, plan, shard, task)

  monkeypatch.setattr(filter_passes, 'select_unit', failing_select)
  with pytest.raises(Exception, match='worker lost'):
    beam_pipeline.run(config)
  assert not os.path.exists(f'{out}/stats/final_stats.json')
  monkeypatch.setattr(filter_passes, 'select_unit', real_select)
  final = beam_pipeline.run(config)
  # The resumed run reused the shards labeled before the failure.
  assert final.pop('metrics')[beam_pipeline.SHARDS_REUSED] == NUM_SHARDS
  clean = str(tmp_path / 'clean')
  clean_final = beam_pipeline.run(_config(teacher, digits_dir, clean))
  assert beam_pipeline.SHARDS_REUSED not in clean_final.pop('metrics')
  assert clean_final == final
  assert _shard_bytes(out) == _shard_bytes(clean)
  assert not [p for p in _files(out) if '.tmp-' in p]

  before = _files(out)
  assert beam_pipeline.run(config) == final  # finished: no pipeline, no metrics
  assert _files(out) == before  # nothing written, nothing new


def test_other_settings_reuse_predictions_and_old_plan_is_refused(
    teacher, digits_dir, tmp_path, monkeypatch):
  first = _config(teacher, digits_dir, str(tmp_path / 'a'))
  beam_pipeline.run(first)

  def no_teacher(*args, **kwargs):
    raise AssertionError('the teacher ran again')

  monkeypatch.setattr(beam_pipeline, 'Teacher', no_teacher)
  second = _config(teacher, digits_dir, str(tmp_path / 'b'),
                   prediction_dir=first.prediction_dir,
                   settings=_settings(num_image=20))
  assert set(beam_pipeline.run(second)['per_class']) <= {0, 20}
  changed = _config(teacher, digits_dir, str(tmp_path / 'a'),
                    settings=_settings(num_image=20))
  with pytest.raises(errors.FilterError, match='allocation_plan.json.*num_image'):
    beam_pipeline.run(changed)


def test_a_finished_run_with_another_teacher_is_refused_not_reused(
    teacher, digits_dir, tmp_path):
  """The predictions record the teacher weights they were made from: a
  rerun with other weights is refused by name, nothing is changed."""
  out = str(tmp_path / 'out')
  beam_pipeline.run(_config(teacher, digits_dir, out))
  other = str(tmp_path / 'other.keras')
  keras.utils.set_random_seed(7)
  export.export_keras(backbones.build_model(helpers.tiny_model()), other)
  before = _files(out)
  with pytest.raises(errors.FilterError,
                     match=r'info-00000-of-00008-00000.txt: these predictions '
                     r'were made from other inputs .*new output_dir'):
    beam_pipeline.run(_config(other, digits_dir, out))
  assert _files(out) == before


@pytest.mark.slow
def test_saved_model_teacher_gives_the_same_classes(teacher, digits_dir,
                                                    tmp_path):
  saved = str(tmp_path / 'saved_model')
  export.export_saved_model(loading.load_keras_file(teacher), saved,
                            small_image=True)
  from_keras = beam_pipeline.run(_config(teacher, digits_dir,
                                         str(tmp_path / 'keras')))
  from_saved = beam_pipeline.run(_config(saved, digits_dir,
                                         str(tmp_path / 'saved')))
  assert from_saved['per_class'] == from_keras['per_class']


def test_image_files_are_packed_into_shards(teacher, digits_dir, tmp_path):
  pngs = tmp_path / 'images'
  pngs.mkdir()
  dataset = tf.data.TFRecordDataset(
      sorted(glob.glob(f'{digits_dir}/unlabeled/extra-0000[01]-*')))
  for i, serialized in enumerate(dataset.as_numpy_iterator()):
    (pngs / f'{i:04d}.png').write_bytes(
        records.read_example(serialized)[records.IMAGE_KEY])
  (pngs / 'broken.png').write_bytes(b'not an image')
  config = _config(teacher, digits_dir, str(tmp_path / 'out'), input_pattern='',
                   image_pattern=f'{pngs}/*.png', images_per_shard=100,
                   settings=_settings(num_image=30))
  inputs = beam_inputs.list_inputs(config)
  assert len(inputs.shards) == len(inputs.image_groups) == 3
  final = beam_pipeline.run(config)
  assert set(final['per_class']) <= {0, 30} and final['num_written'] > 0
  sources = {p.read_bytes() for p in pngs.glob('0*.png')}
  written = tf.data.TFRecordDataset(
      sorted(glob.glob(str(tmp_path / 'out/data/train-*'))))
  for serialized in written.as_numpy_iterator():
    assert records.read_example(serialized)[records.IMAGE_KEY] in sources


def test_inputs_options_and_teacher_are_checked(teacher, tmp_path):
  config = _config(teacher, str(tmp_path), str(tmp_path / 'out'))
  with pytest.raises(errors.InputError, match='--input_pattern=.*no file'):
    beam_inputs.list_inputs(config)
  with pytest.raises(errors.ConfigError, match='--min_treshold'):
    beam_pipeline.beam_options(['--min_treshold=0.3', '--direct_num_workers=2'])
  assert beam_pipeline.beam_options(
      ['--runner=FlinkRunner', '--flink_master=localhost:8081']) is not None
  # From Python the field (the binary shows --teacher=).
  with pytest.raises(errors.CheckpointError, match='^teacher='):
    beam_inputs.check_teacher(str(tmp_path))
  beam_inputs.check_teacher(teacher)
  with pytest.raises(ValueError, match='exactly one'):
    _config(teacher, str(tmp_path), str(tmp_path / 'out'),
            image_pattern='*.png')


def test_a_glob_over_a_converters_folder_takes_only_the_shards(teacher,
                                                               tmp_path):
  """README's `--input_pattern='u/extra-*'` over images_to_tfrecord's output
  also matches its extra-summary.json and extra-skipped.txt: not inputs."""
  for name in ('extra-00000-of-00002', 'extra-00001-of-00002',
               'extra-summary.json', 'extra-skipped.txt'):
    (tmp_path / name).write_bytes(b'')
  config = _config(teacher, str(tmp_path), str(tmp_path / 'out'),
                   input_pattern=str(tmp_path / 'extra-*'))
  assert [os.path.basename(p) for p in
          beam_inputs.list_inputs(config).shards] == [
              'extra-00000-of-00002', 'extra-00001-of-00002']
