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


def _train_job(data_dir: str, model_dir: str, *extra: str) -> main.MainJob:
  fv = flags.FlagValues()
  main_flags.define_flags(fv)
  fv(['main', '--mode=train', '--use_tpu=false', f'--label_data_dir={data_dir}',
      f'--model_dir={model_dir}', '--train_steps=4', '--train_batch_size=16',
      *extra])
  with errors.naming(lambda field: f'--{field}'):
    return main.job_from_flags(fv)


# The config-time refusals of docs/errors.md's second table, in-process (the
# binary's one-line contract around them is tested by tests/test_bad_inputs.py).
@pytest.mark.parametrize('flag, message', [
    ('--num_train_images=0', r'--num_train_images must be in \[1, inf\), received: 0'),
    ('--num_train_shards=-1', r'--num_train_shards must be in \[1, inf\), received: -1'),
    ('--num_label_classes=0', r'--num_label_classes must be in \[1, inf\), received: 0'),
    ('--width_coefficient=0', r'--width_coefficient must be in \(0, inf\), received: 0'),
    ('--depth_coefficient=-1', r'--depth_coefficient must be in \(0, inf\), received: -1'),
    # Unlabeled data without a ratio used to train a supervised model silently.
    ('--unlabel_data_dir=/tmp/u', r'--unlabel_data_dir=/tmp/u is not used with '
     r'--unlabel_ratio=0: pass --unlabel_ratio > 0'),
])
def test_flag_values_out_of_range_are_refused_before_writing(
    flag, message, digits_dir, tmp_path):
  with pytest.raises(errors.ConfigError, match=message):
    _train_job(digits_dir, str(tmp_path / 'model'), flag)
  assert not (tmp_path / 'model').exists()


@pytest.mark.parametrize('change, message', [
    (lambda i: i.update(image_size=0),
     r'image_size must be a positive integer or null .*found 0'),
    (lambda i: i.update(stddev_rgb=[0, 0, 0]), r'stddev_rgb must be positive'),
    (lambda i: i.update(stddev_rgb=[float('nan')] * 3),
     r'stddev_rgb must be a list of 3 finite numbers .*NaN'),
    (lambda i: i.update(mean_rgb=[1, 2]), r'mean_rgb must be a list of 3 finite'),
    (lambda i: i.update(num_classes='ten'),
     r'num_classes must be a positive integer .*found "ten"'),
    (lambda i: i.pop('num_classes'), r'records no classes'),
    (lambda i: i.update(class_names=['a\nb'] + i['class_names'][1:]),
     r'class_names must be a list of non-empty one-line names'),
    (lambda i: i['splits']['train'].update(num_shards=0),
     r'splits.train.num_shards must be an integer >= 1, found 0'),
    (lambda i: i['splits']['train'].update(directory='/etc'),
     r'splits.train.directory="/etc" leaves the folder'),
], ids=['image_size_0', 'stddev_0', 'stddev_nan', 'mean_of_2', 'classes_text',
        'no_classes', 'name_with_newline', 'no_shards', 'absolute_directory'])
def test_bad_dataset_info_values_are_named_before_writing(
    change, message, digits_dir, tmp_path):
  import json  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  data = tmp_path / 'data'
  shutil.copytree(digits_dir, data)
  info = json.loads((data / 'dataset_info.json').read_text())
  change(info)
  (data / 'dataset_info.json').write_text(json.dumps(info))
  with pytest.raises(errors.NoisyStudentError,
                     match=r'data/dataset_info.json[: ] ?' + message):
    _train_job(str(data), str(tmp_path / 'model'))
  assert not (tmp_path / 'model').exists()


def test_an_empty_shard_range_is_refused():
  from data import layout  # pylint: disable=g-import-not-at-top
  assert layout.parse_shard_ids('1-3', 8) == [1, 2, 3]
  # From Python the argument; main (errors.naming) shows --shard_id.
  with pytest.raises(errors.ConfigError,
                     match=r'^shard_id=3-1: the range 3-1 is empty'):
    layout.parse_shard_ids('3-1', 8)
  with errors.naming(lambda field: f'--{field}'), pytest.raises(
      errors.ConfigError, match=r'^--shard_id=3-1: the range 3-1 is empty'):
    layout.parse_shard_ids('3-1', 8)


@pytest.mark.parametrize('mode', ['eval', 'train_and_eval'])
def test_evaluating_a_folder_without_an_eval_split_is_refused(
    mode, digits_dir, tmp_path):
  """It used to exit 0 with an empty eval_results.json."""
  import json  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  data = tmp_path / 'data'
  shutil.copytree(digits_dir, data)
  info = json.loads((data / 'dataset_info.json').read_text())
  info['splits'] = {'train': info['splits']['train']}
  (data / 'dataset_info.json').write_text(json.dumps(info))
  fv = flags.FlagValues()
  main_flags.define_flags(fv)
  fv(['main', f'--mode={mode}', '--use_tpu=false', f'--label_data_dir={data}',
      f'--model_dir={tmp_path / "model"}', '--train_steps=4',
      '--train_batch_size=16'])
  with pytest.raises(errors.ConfigError,
                     match=rf'--mode={mode}: .*data has no split to evaluate '
                     'on'):
    with errors.naming(lambda field: f'--{field}'):
      main.job_from_flags(fv)
  assert not (tmp_path / 'model').exists()


@pytest.mark.slow
def test_ctrl_c_saves_the_step_and_exits_130_with_one_line(digits_dir, tmp_path):
  """Ctrl-C during training: the step reached is checkpointed (not only the
  last periodic save), one line says so, status 130, no traceback."""
  import os  # pylint: disable=g-import-not-at-top
  import re  # pylint: disable=g-import-not-at-top
  import signal  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tests import helpers  # pylint: disable=g-import-not-at-top
  model_dir = str(tmp_path / 'model')
  command = helpers.main_flags(digits_dir, model_dir, '--mode=train',
                               '--iterations_per_loop=1000',
                               '--save_checkpoints_steps=1000',
                               '--log_every_steps=4', steps=2000)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=helpers.REPO_ROOT)
  # A pytest-xdist worker ignores SIGINT, and an ignored signal stays ignored
  # across exec: give the binary the default a terminal's process has.
  process = subprocess.Popen(
      command, cwd=helpers.REPO_ROOT, env=env, stderr=subprocess.PIPE,
      stdout=subprocess.DEVNULL, text=True,
      preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
  seen = []
  try:
    for line in process.stderr:
      seen.append(line)
      if re.search(r'step [1-9]\d*/2000 ', line):
        break
    process.send_signal(signal.SIGINT)
    rest = process.stderr.read()
    status = process.wait(timeout=120)
  finally:
    if process.poll() is None:
      process.kill()
  stderr = ''.join(seen) + rest
  assert status == 130, stderr[-3000:]
  assert 'Traceback' not in stderr, stderr[-3000:]
  assert stderr.rstrip().splitlines()[-1] == (
      'main: interrupted (Ctrl-C); the same command resumes')
  step = int(re.search(r'interrupted at step (\d+): checkpoint saved',
                       stderr).group(1))
  assert 0 < step < 1000
  assert tf.train.latest_checkpoint(model_dir).endswith(f'ckpt-{step}')


def test_raw_unlabeled_shards_without_a_teacher_are_refused_before_writing(
    digits_dir, tmp_path):
  """A student without an on-the-fly teacher reads stored pseudo-labels; the
  digits' raw unlabeled shards have none: the error names the shard and what
  to do, and nothing (FLAGS.json, model_config.json) is written."""
  from noisy_student.drivers import modes  # pylint: disable=g-import-not-at-top
  from noisy_student.training import distribute  # pylint: disable=g-import-not-at-top
  model_dir = tmp_path / 'model'
  job = _train_job(digits_dir, str(model_dir),
                   f'--unlabel_data_dir={digits_dir}/unlabeled',
                   '--unlabel_ratio=1', '--width_coefficient=0.1',
                   '--depth_coefficient=0.1')
  assert job.experiment.data.pseudo_labels_stored
  with pytest.raises(errors.InputError, match=r'/unlabeled/extra-00000-of-\d+: '
                     r'record 0 holds an image without pseudo-labels '
                     r'\(probabilities\): these are raw unlabeled shards'):
    modes.train(job.experiment, distribute.make_strategy('default'),
                flags_json={'x': 1})
  assert not model_dir.exists()
