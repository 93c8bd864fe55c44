"""TFDS -> shards + dataset_info.json, offline under tfds.testing.mock_data."""

import os

from absl import flags
import numpy as np
import pytest

from data import dataset_info
from noisy_student.runtime import errors
from data import records
from data import tfds_to_tfrecord
from tests.data import readback

tfds = pytest.importorskip('tensorflow_datasets')


def _mocked_convert(config):
  """convert() under tfds.testing.mock_data, which never downloads: without
  the network probe (this machine and CI resolve no hosts)."""
  return tfds_to_tfrecord.convert(config, probe_network=None)


def _config(**changes):
  fv = flags.FlagValues()
  tfds_to_tfrecord.define_flags(fv)
  fv(['tfds_to_tfrecord'] + [f'--{k}={v}' for k, v in changes.items()])
  return tfds_to_tfrecord.config_from_flags(fv)


def test_cifar10_splits_become_shards_that_describe_themselves(tmp_path):
  out = tmp_path / 'cifar'
  config = _config(dataset='cifar10', output_dir=out, examples_per_shard=5,
                   splits='train=train,test=test,train=extra')
  with tfds.testing.mock_data(num_examples=12):
    info = _mocked_convert(config)
  assert info['splits_written'] == 3
  assert (info['num_classes'], info['image_size'], info['flip']) == (10, 32, True)
  assert len(info['class_names']) == 10 and info['name'] == 'cifar10'
  assert len(info['mean_rgb']) == 3 and all(0 < v < 255 for v in info['mean_rgb'])
  train = info['splits']['train']
  assert (train['num_examples'], train['num_shards'], train['labeled']) == (12, 3, True)
  extra = info['splits']['extra']
  assert extra['directory'] == 'unlabeled' and not extra['labeled']
  images, labels, _ = readback.read_split(str(out), 'train')
  assert len(images) == 12 and images[0].shape == (32, 32, 3)
  assert all(0 <= label < 10 for label in labels)
  assert sum(train['label_counts']) == 12
  assert dataset_info.check_shards(str(out)) == {'train': 12, 'test': 12,
                                                 'extra': 12}
  unlabeled = readback.shard_files(str(out / 'unlabeled'), 'extra')
  assert len(unlabeled) == 3
  # A rerun writes nothing.
  before = {p: os.stat(p).st_mtime_ns for p in readback.shard_files(str(out), 'train')}
  with tfds.testing.mock_data(num_examples=12):
    again = _mocked_convert(config)
  assert (again['splits_written'], again['splits_kept']) == (0, 3)
  assert before == {p: os.stat(p).st_mtime_ns for p in before}


def test_grayscale_mnist_is_stored_as_rgb_and_not_flipped(tmp_path):
  with tfds.testing.mock_data(num_examples=6):
    info = _mocked_convert(_config(
        dataset='mnist', output_dir=tmp_path, splits='test=test'))
  assert info['image_size'] == 28 and info['flip'] is False
  assert info['splits']['test']['num_reencoded'] == 6
  images, _, _ = readback.read_split(str(tmp_path), 'test')
  assert images[0].shape == (28, 28, 3)
  np.testing.assert_array_equal(images[0][..., 0], images[0][..., 2])


def test_imagenet_c_configs_share_one_corrupted_tree(tmp_path):
  with tfds.testing.mock_data(num_examples=4):
    for severity in (1, 2):
      _mocked_convert(_config(
          dataset=f'imagenet2012_corrupted/gaussian_noise_{severity}',
          output_dir=tmp_path, splits='validation=validation'))
  info = dataset_info.read(str(tmp_path))
  assert sorted(info['splits']) == ['gaussian_noise/1/validation',
                                    'gaussian_noise/2/validation']
  assert info['num_classes'] == 1000
  shard = tmp_path / 'gaussian_noise' / '2' / 'validation-00000-of-00001'
  assert records.count_records(str(shard)) == 4


@pytest.mark.parametrize('changes, message', [
    (dict(dataset='no_such_dataset_xyz'), 'no_such_dataset_xyz'),
    (dict(dataset='cifar10', splits='train=bad/name'), '--splits'),
    (dict(dataset='imagenet2012_corrupted/blur', splits='validation'),
     'imagenet2012_corrupted'),
])
def test_bad_flags_name_the_flag(tmp_path, changes, message):
  with pytest.raises(errors.ConfigError, match=message):
    config = _config(output_dir=tmp_path, **changes)
    with tfds.testing.mock_data(num_examples=2):
      _mocked_convert(config)


@pytest.mark.slow
def test_converted_tfds_dataset_trains_without_task_flags(tmp_path):
  from noisy_student import main  # pylint: disable=g-import-not-at-top
  out = tmp_path / 'cifar'
  with tfds.testing.mock_data(num_examples=16):
    _mocked_convert(_config(dataset='cifar10', output_dir=out,
                                     splits='train=train,test=test'))
  fv = flags.FlagValues()
  main.define_flags(fv)
  fv(['main', '--mode=train_and_eval', '--use_tpu=false', '--use_bfloat16=false',
      f'--label_data_dir={out}', f'--model_dir={tmp_path / "model"}',
      '--train_steps=2', '--train_batch_size=8', '--iterations_per_loop=1',
      '--steps_per_eval=2', '--width_coefficient=0.1', '--depth_coefficient=0.1',
      '--eval_batch_size=8'])
  job = main.job_from_flags(fv)
  assert job.experiment.train.num_train_images == 16
  assert job.experiment.model.num_classes == 10
  assert job.experiment.model.small_image and job.experiment.eval_splits == ('test',)
  result = main.run_job(job)
  assert result['global_step'] == 2
  assert result['eval']['test']['num_images'] == 16


def test_without_splits_a_dataset_without_split_info_is_one_clear_error(tmp_path):
  # Under the mock (as when the dataset is not prepared) TFDS knows no splits.
  with tfds.testing.mock_data(num_examples=3):
    with pytest.raises(errors.ConfigError, match='pass --splits'):
      _mocked_convert(_config(dataset='mnist', output_dir=tmp_path))


def test_a_dataset_without_images_is_named_as_such(tmp_path):
  with tfds.testing.mock_data(num_examples=3):
    with pytest.raises(errors.ConfigError, match='not an image dataset'):
      _mocked_convert(_config(dataset='glue/cola',
                                       output_dir=tmp_path, splits='train'))


def test_a_bad_split_slice_is_named_before_any_download(tmp_path):
  with pytest.raises(errors.ConfigError, match=r"--splits: 'train\[:x\]'"):
    _config(dataset='cifar10', output_dir=tmp_path, splits='train[:x]=train')


def test_the_real_download_path_runs_up_to_the_network(tmp_path):
  """No mock: TFDS's real builder, download manager and their imports run
  until the first request; offline (this machine, CI) the one-line error
  names the network, not a module. (Online the download would succeed.)"""
  config = _config(dataset='cifar10', output_dir=tmp_path / 'out',
                   data_dir=tmp_path / 'tfds')
  try:
    tfds_to_tfrecord.convert(config)
  except errors.NoisyStudentError as err:
    message = str(err)
    assert 'needs the network' in message, message
    assert 'module' not in message
  else:
    pytest.skip('this machine reached the network: the download succeeded')


def test_network_and_module_errors_are_told_apart():
  try:
    raise OSError('Failed to resolve host') from ConnectionError('no route')
  except OSError as err:
    assert 'needs the network' in str(
        tfds_to_tfrecord.download_error('cifar10', err))
  missing = ModuleNotFoundError("No module named 'foo'", name='foo')
  assert "module 'foo'" in str(tfds_to_tfrecord.download_error('x', missing))


def test_tfds_own_download_code_runs_until_the_request(tmp_path, monkeypatch):
  """Past our fast offline check: TFDS's download_and_prepare and everything
  it imports (etils.epath, importlib_resources, ...) run until the request
  fails (TFDS's retries cut to none, so this takes seconds, not minutes)."""
  from tensorflow_datasets.core.download import downloader  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(downloader, 'MAX_RETRIES', 0)
  config = _config(dataset='cifar10', output_dir=tmp_path / 'out',
                   data_dir=tmp_path / 'tfds')
  try:
    tfds_to_tfrecord.convert(config, probe_network=None)
  except errors.NoisyStudentError as err:
    assert 'needs the network' in str(err), str(err)
  else:
    pytest.skip('this machine reached the network: the download succeeded')
