"""Bad input, through the binaries: one line naming the culprit, status 2, nothing changed.

Each case prepares its bad input on the bundled digits (tiny models), runs a
binary in a fresh process and checks the error contract of docs/errors.md:
the exit status, that the last line of stderr is `<binary>: error: ...`
naming the file / flag / value at fault, and that no file that existed before
the run changed (sha256 of every file under the case's folder). Cases that
succeed with a warning (a truncated latest checkpoint) check that instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import sys
from typing import Callable, Optional

import pytest

from data import records
from data import writers
from tests import helpers

pytestmark = pytest.mark.slow


@dataclasses.dataclass
class Case:
  """A command on prepared input, and what it must print."""
  command: list[str]
  message: str                 # regex on the last stderr line
  status: int = 2
  unchanged: Optional[str] = None   # folder whose files must not change
  max_stderr_lines: Optional[int] = None
  absent: Optional[str] = None      # must not exist after the run (nothing written)


@pytest.fixture(scope='module')
def trained(digits_dir, tmp_path_factory) -> str:
  """A tiny model trained 10 steps on the digits (checkpoints 5 and 10)."""
  model_dir = str(tmp_path_factory.mktemp('trained') / 'model')
  helpers.run(helpers.main_flags(digits_dir, model_dir, '--mode=train',
                                 steps=10))
  return model_dir


def _copy(source: str, target) -> str:
  shutil.copytree(source, target)
  return str(target)


def _rewrite_shard(path: str, change: Callable[[int, bytes], bytes]) -> None:
  """Rewrites a shard record by record (change(index, record) -> record)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  rows = [change(i, r.numpy()) for i, r in enumerate(
      tf.data.TFRecordDataset(path))]
  writers.write_records(path, rows)


def _flip_byte_in_record(path: str, record: int) -> None:
  """Corrupts one payload byte of record `record` (its CRC no longer matches)."""
  data = bytearray(open(path, 'rb').read())
  offset = 0
  for _ in range(record):
    length = int.from_bytes(data[offset:offset + 8], 'little')
    offset += 12 + length + 4
  data[offset + 12 + 20] ^= 0xFF
  open(path, 'wb').write(bytes(data))


def _labeled(image_bytes: bytes, label_1_based: int) -> bytes:
  """A labeled record with any label (the writers only write valid ones)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.train.Example(features=tf.train.Features(feature={
      records.IMAGE_KEY: tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[image_bytes])),
      records.LABEL_KEY: tf.train.Feature(
          int64_list=tf.train.Int64List(value=[label_1_based])),
  })).SerializeToString()


def _set_label(path: str, record: int, label_1_based: int) -> None:
  def change(i, serialized):
    if i != record:
      return serialized
    return _labeled(records.read_example(serialized)[records.IMAGE_KEY],
                    label_1_based)
  _rewrite_shard(path, change)


def _set_image(path: str, record: int, image_bytes: bytes) -> None:
  def change(i, serialized):
    if i != record:
      return serialized
    label = int(records.read_example(serialized)[records.LABEL_KEY][0])
    return _labeled(image_bytes, label)
  _rewrite_shard(path, change)


def _main(data: str, model_dir: str, *extra: str, steps: int = 4) -> list[str]:
  return helpers.main_flags(data, model_dir, *extra, steps=steps)


# ---------------------------------------------------------------------------
# The cases: name -> (tmp, digits_dir, trained model_dir) -> Case.
# ---------------------------------------------------------------------------
def label_11_of_10(tmp, digits, trained):
  data = _copy(digits, tmp / 'data')
  _set_label(f'{data}/train-00001-of-00004', 7, 11)
  # 20 steps of 16 read every one of the 300 training images.
  return Case(_main(data, str(tmp / 'model'), '--mode=train', steps=20),
              r'train-00001-of-00004: record 7 has label 11 .*outside 1\.\.10',
              unchanged=data)


def label_0_is_not_1_based(tmp, digits, trained):
  data = _copy(digits, tmp / 'data')
  _set_label(f'{data}/test-00000-of-00002', 3, 0)
  return Case(_main(data, trained, '--mode=eval'),
              r'test-00000-of-00002: record 3 has label 0 .*outside 1\.\.10',
              unchanged=data)


def teacher_with_12_classes(tmp, digits, trained):
  teacher = _copy(trained, tmp / 'teacher')
  config = json.load(open(f'{teacher}/model_config.json'))
  config['num_classes'] = 12
  json.dump(config, open(f'{teacher}/model_config.json', 'w'))
  return Case(_main(digits, str(tmp / 'model'), '--mode=train',
                    '--teacher_model_name=efficientnet-b0',
                    f'--teacher_model_path={teacher}', '--unlabel_ratio=1',
                    f'--unlabel_data_dir={digits}/unlabeled'),
              'has 12 classes but the student 10', unchanged=teacher)


def teacher_of_other_class_names(tmp, digits, trained):
  teacher = _copy(trained, tmp / 'teacher')
  config = json.load(open(f'{teacher}/model_config.json'))
  config['class_names'] = [str(c) for c in range(9)] + ['nine']
  json.dump(config, open(f'{teacher}/model_config.json', 'w'))
  return Case(_main(digits, str(tmp / 'model'), '--mode=train',
                    '--teacher_model_name=efficientnet-b0',
                    f'--teacher_model_path={teacher}', '--unlabel_ratio=1',
                    f'--unlabel_data_dir={digits}/unlabeled'),
              r'the teacher --teacher_model_path=.*teacher was trained on '
              r'other classes than the student \(--label_data_dir\): class 9 '
              r"is 'nine' for the teacher but '9' for the student",
              unchanged=teacher, absent=str(tmp / 'model'))


def resume_with_other_model_flags(tmp, digits, trained):
  model_dir = _copy(trained, tmp / 'model')
  return Case(_main(digits, model_dir, '--mode=train', '--width_coefficient=0.2'),
              r'model_config.json: .*width_coefficient: 0\.1 -> 0\.2',
              unchanged=model_dir)


def unknown_model_name(tmp, digits, trained):
  model_dir = _copy(trained, tmp / 'model')
  return Case(_main(digits, model_dir, '--mode=train',
                    '--model_name=efficientnet-b99'),
              'efficientnet-b99', unchanged=model_dir)


def zero_image_size(tmp, digits, trained):
  return Case(_main(digits, str(tmp / 'model'), '--input_image_size=0'),
              r'--input_image_size must be in \[1, inf\), received: 0')


def small_image_size_the_data_does_not_have(tmp, digits, trained):
  return Case(_main(digits, str(tmp / 'model'), '--input_image_size=40'),
              r'--input_image_size=40: the small-image .*32x32')


def negative_train_steps(tmp, digits, trained):
  return Case(_main(digits, str(tmp / 'model'), steps=-5),
              r'--train_steps must be in \[1, inf\), received: -5')


def zero_batch(tmp, digits, trained):
  return Case(_main(digits, str(tmp / 'model'), '--train_batch_size=0'),
              '--train_batch_size must be in')


def batch_not_divisible_by_replicas(tmp, digits, trained):
  return Case(_main(digits, str(tmp / 'model'), '--mode=train',
                    '--strategy=mirrored', '--mirrored_cpu_devices=2',
                    '--train_batch_size=15'),
              '--train_batch_size=15 is not divisible by the 2 replicas')


def corrupted_record_in_training(tmp, digits, trained):
  data = _copy(digits, tmp / 'data')
  _flip_byte_in_record(f'{data}/train-00002-of-00004', 5)
  return Case(_main(data, str(tmp / 'model'), '--mode=train', steps=20),
              r'train-00002-of-00004: record 5 is corrupted', unchanged=data)


def corrupted_record_in_evaluation(tmp, digits, trained):
  data = _copy(digits, tmp / 'data')
  _flip_byte_in_record(f'{data}/dev-00001-of-00002', 2)
  return Case(_main(data, trained, '--mode=eval'),
              r'dev-00001-of-00002: record 2 is corrupted', unchanged=data)


def corrupted_record_in_prediction(tmp, digits, trained):
  data = _copy(digits, tmp / 'data')
  _flip_byte_in_record(f'{data}/unlabeled/extra-00003-of-00008', 4)
  return Case(_main(f'{data}/unlabeled', '', '--mode=predict',
                    f'--predict_ckpt_path={trained}', '--file_prefix=extra',
                    '--num_shards=8', '--shard_id=3',
                    f'--output_dir={tmp}/pred', f'--info_dir={tmp}/info'),
              r'extra-00003-of-00008: record 4 is corrupted', unchanged=data)


def _empty_shard(tmp, digits) -> str:
  data = _copy(digits, tmp / 'data')
  open(f'{data}/unlabeled/extra-00002-of-00008', 'wb').close()
  return data


def empty_unlabeled_shard_in_prediction(tmp, digits, trained):
  """A 0-byte shard used to be pseudo-labeled as 0 images, exit 0."""
  data = _empty_shard(tmp, digits)
  return Case(_main(f'{data}/unlabeled', '', '--mode=predict',
                    f'--predict_ckpt_path={trained}', '--file_prefix=extra',
                    '--num_shards=8', f'--output_dir={tmp}/pred',
                    f'--info_dir={tmp}/info'),
              r'extra-00002-of-00008 is empty, but .*dataset_info.json says '
              r'split extra has 897 images in 8 shards', unchanged=data,
              absent=f'{tmp}/pred')


def empty_unlabeled_shard_in_beam_label(tmp, digits, trained):
  data = _empty_shard(tmp, digits)
  return Case(_beam_label(tmp, data, trained),
              r'extra-00002-of-00008 is empty, but .*dataset_info.json says '
              r'split extra has 897 images in 8 shards', unchanged=data,
              absent=str(tmp / 'out'))


def undecodable_image_in_evaluation(tmp, digits, trained):
  data = _copy(digits, tmp / 'data')
  _set_image(f'{data}/test-00001-of-00002', 6, b'\x89PNG but not really')
  return Case(_main(data, trained, '--mode=eval'),
              r'test-00001-of-00002: record 6 has no decodable', unchanged=data)


def undecodable_image_in_training(tmp, digits, trained):
  data = _copy(digits, tmp / 'data')
  _set_image(f'{data}/train-00000-of-00004', 2, b'')
  return Case(_main(data, str(tmp / 'model'), '--mode=train', steps=20),
              r'train-00000-of-00004: record 2 has no decodable', unchanged=data)


def every_checkpoint_truncated(tmp, digits, trained):
  model_dir = _copy(trained, tmp / 'model')
  for name in os.listdir(model_dir):
    if name.endswith('.index'):
      path = os.path.join(model_dir, name)
      open(path, 'wb').write(open(path, 'rb').read()[:100])
  return Case(_main(digits, model_dir, '--mode=eval'),
              r'ckpt-5: unreadable checkpoint .*no older readable one',
              unchanged=model_dir)


def latest_checkpoint_truncated_falls_back(tmp, digits, trained):
  model_dir = _copy(trained, tmp / 'model')
  data_file = os.path.join(model_dir, 'ckpt-10.data-00000-of-00001')
  open(data_file, 'wb').write(open(data_file, 'rb').read()[:200])
  return Case(_main(digits, model_dir, '--mode=eval'),
              r'ckpt-10 is unreadable .*falling back to the previous checkpoint '
              r'.*ckpt-5', status=0)


def init_model_of_another_architecture(tmp, digits, trained):
  return Case(_main(digits, str(tmp / 'model'), '--mode=train', '--init_model',
                    f'--init_model_path={trained}', '--width_coefficient=0.2'),
              r'ckpt-10: does not fit the student model', max_stderr_lines=12)


def unwritable_model_dir(tmp, digits, trained):
  return Case(_main(digits, _unwritable(tmp) + '/model', '--mode=train'),
              r'(Operation not permitted|Permission denied|not writable)')


def _tiny_iterate(work: str, digits: str) -> list[str]:
  """iterate on the digits, 2 steps a stage, no export; ends in
  --iterations_per_loop, --noexport, --min_threshold (cases replace those)."""
  return [sys.executable, '-m', 'noisy_student.iterate', f'--work_dir={work}',
          f'--label_data_dir={digits}', f'--unlabel_data_dir={digits}/unlabeled',
          '--width_coefficient=0.1', '--depth_coefficient=0.1',
          '--teacher_train_steps=2', '--student_train_steps=2',
          '--train_batch_size=16', '--iterations_per_loop=2', '--noexport',
          '--min_threshold=0']


def iterate_rerun_with_changed_settings(tmp, digits, trained):
  work = str(tmp / 'work')
  command = _tiny_iterate(work, digits)
  helpers.run(command)
  return Case(command[:-3] + ['--student_train_steps=6',
                              '--iterations_per_loop=2', '--noexport',
                              '--min_threshold=0'],
              r'state.json: stage round_1/student finished with other settings '
              r'.*train.train_steps: 2 -> 6\); .*--force', unchanged=work)


def iterate_truncated_state(tmp, digits, trained):
  work = tmp / 'work'
  work.mkdir()
  (work / 'state.json').write_text('{"round_0/teacher": {"resu')
  return Case([sys.executable, '-m', 'noisy_student.iterate',
               f'--work_dir={work}', f'--label_data_dir={digits}',
               f'--unlabel_data_dir={digits}/unlabeled'],
              r'state.json: not valid JSON', unchanged=str(work))


def iterate_folder_without_description(tmp, digits, trained):
  data = _copy(digits, tmp / 'data')
  os.remove(f'{data}/dataset_info.json')
  return Case([sys.executable, '-m', 'noisy_student.iterate',
               f'--work_dir={tmp}/work', f'--label_data_dir={data}',
               f'--unlabel_data_dir={data}/unlabeled'],
              r'has no dataset_info.json .*--task_name', unchanged=data)


def iterate_unknown_augmentation(tmp, digits, trained):
  return Case([sys.executable, '-m', 'noisy_student.iterate',
               f'--work_dir={tmp}/work', f'--label_data_dir={digits}',
               f'--unlabel_data_dir={digits}/unlabeled',
               '--student_augment_name=v2'],
              r"--student_augment_name: unknown augmentation 'v2'")


def ablate_unknown_arm(tmp, digits, trained):
  return Case([sys.executable, '-m', 'noisy_student.ablate',
               f'--work_dir={tmp}/work', f'--data_dir={digits}',
               '--preset=cifar10_subset', '--arms=full,bogus'],
              r'--arms=full,bogus: expected some of control, full, no_noise')


def eval_robustness_empty_corrupted_folder(tmp, digits, trained):
  (tmp / 'empty').mkdir()
  return Case([sys.executable, '-m', 'noisy_student.eval_robustness',
               '--benchmark=corrupted', f'--model_path={trained}',
               f'--data_dir={tmp}/empty', f'--output_dir={tmp}/out'],
              r'empty: no corruption folders')


def eval_robustness_missing_model(tmp, digits, trained):
  return Case([sys.executable, '-m', 'noisy_student.eval_robustness',
               '--benchmark=fgsm', f'--model_path={tmp}/nothing.keras',
               f'--data_dir={digits}', f'--output_dir={tmp}/out'],
              r'nothing.keras: no such model')


def make_corrupted_unknown_corruption(tmp, digits, trained):
  return Case([sys.executable, '-m', 'data.make_corrupted',
               f'--input_pattern={digits}/test-*', f'--output_dir={tmp}/c',
               '--corruptions=smudge'],
              r"unknown corruption 'smudge'")


def make_corrupted_no_files(tmp, digits, trained):
  return Case([sys.executable, '-m', 'data.make_corrupted',
               f'--input_pattern={tmp}/none-*', f'--output_dir={tmp}/c'],
              r'--input_pattern .*none-\*.*no files')


def images_to_tfrecord_missing_folder(tmp, digits, trained):
  return Case([sys.executable, '-m', 'data.images_to_tfrecord',
               f'--input_dir={tmp}/absent', f'--output_dir={tmp}/out'],
              r'--input_dir=.*absent')


def filter_missing_predictions(tmp, digits, trained):
  return Case([sys.executable, '-m', 'noisy_student.filter_unlabel',
               f'--input_dir={digits}/unlabeled', f'--prediction_dir={tmp}/p',
               f'--info_dir={tmp}/i', f'--output_dir={tmp}/o', '--num_shards=8',
               '--file_prefix=extra', '--shard_id=all', '--only_get_stats=1'],
              r'info-00000-of-00008-00000.txt: info file of shard 0')


def bad_flag_type(tmp, digits, trained):
  return Case(_main(digits, str(tmp / 'model'), '--train_batch_size=many'),
              r"flag --train_batch_size=many: invalid literal")


# --- Round two (issue 24): values checked where the config is built, before
# anything is written: the model_dir / work_dir must not exist afterwards.
def _refused_main(tmp, data, *extra, steps=4):
  model_dir = str(tmp / 'model')
  return _main(data, model_dir, '--mode=train', *extra, steps=steps), model_dir


def misspelt_eval_split(tmp, digits, trained):
  model_dir = str(tmp / 'model')
  command = _main(digits, model_dir, '--mode=train_and_eval',
                  '--eval_splits=bogus')
  return Case(command, r"--eval_splits: split 'bogus': no TFRecord shards "
              r'match .*bogus-', absent=model_dir)


def _with_info(tmp, digits, change: Callable[[dict], None]) -> str:
  data = _copy(digits, tmp / 'data')
  info = json.load(open(f'{data}/dataset_info.json'))
  change(info)
  json.dump(info, open(f'{data}/dataset_info.json', 'w'))
  return data


def _info_case(tmp, digits, change, message):
  data = _with_info(tmp, digits, change)
  command = [sys.executable, '-m', 'noisy_student.main', '--mode=train',
             f'--label_data_dir={data}', f'--model_dir={tmp}/model',
             '--train_steps=4', '--train_batch_size=16']
  return Case(command, message, unchanged=data, absent=str(tmp / 'model'))


def info_image_size_text(tmp, digits, trained):
  return _info_case(tmp, digits, lambda i: i.update(image_size='abc'),
                    r'dataset_info.json: image_size must be .*found "abc"')


def info_split_directory_outside(tmp, digits, trained):
  def change(info):
    info['splits']['train']['directory'] = '../../..'
  return _info_case(tmp, digits, change,
                    r'splits.train.directory="\.\./\.\./\.\." leaves the folder')


def unlabeled_folder_of_other_classes(tmp, digits, trained):
  data = _copy(digits, tmp / 'data')
  json.dump({'format': 1, 'name': 'letters', 'num_classes': 12,
             'class_names': list('abcdefghijkl'), 'splits': {
                 'extra': {'num_examples': 897, 'num_shards': 8,
                           'labeled': False, 'directory': ''}}},
            open(f'{data}/unlabeled/dataset_info.json', 'w'))
  work = str(tmp / 'work')
  return Case([sys.executable, '-m', 'noisy_student.iterate',
               f'--work_dir={work}', f'--label_data_dir={data}',
               f'--unlabel_data_dir={data}/unlabeled'],
              r'unlabeled/dataset_info.json describes 12 classes .*but the '
              r'labeled data has', unchanged=data, absent=work)


def _keras_file(tmp, kind: str) -> str:
  import keras  # pylint: disable=g-import-not-at-top
  path = str(tmp / f'{kind}.keras')
  channels = 1 if kind == 'gray' else 3
  side = None if kind == 'anysize' else 32
  inputs = keras.Input((side, side, channels))
  pooled = keras.layers.GlobalAveragePooling2D()(inputs)
  activation = 'softmax' if kind == 'probs' else None
  keras.Model(inputs, keras.layers.Dense(10, activation=activation,
                                         name=kind)(pooled)).save(path)
  return path


def keras_model_ending_in_softmax(tmp, digits, trained):
  command, model_dir = _refused_main(
      tmp, digits, f'--model_name={_keras_file(tmp, "probs")}')
  return Case(command, r"probs.keras ends in a softmax \('probs'\)",
              absent=model_dir)


def keras_model_of_one_channel(tmp, digits, trained):
  command, model_dir = _refused_main(
      tmp, digits, f'--model_name={_keras_file(tmp, "gray")}')
  return Case(command, r'gray.keras takes inputs of shape \(None, 32, 32, 1\); images here are .*3\] \(RGB\)',
              absent=model_dir)


def keras_model_of_any_size(tmp, digits, trained):
  command, model_dir = _refused_main(
      tmp, digits, f'--model_name={_keras_file(tmp, "anysize")}')
  return Case(command, r'anysize.keras takes images of shape \(None, None\) '
              r'\(None: any size\); .* need one square size',
              absent=model_dir)


def keras_file_that_is_not_a_zip(tmp, digits, trained):
  path = tmp / 'text.keras'
  path.write_text('not a model')
  command, model_dir = _refused_main(tmp, digits, f'--model_name={path}')
  return Case(command, r"text.keras: not a .keras file \(a .keras file is a zip",
              absent=model_dir)


def iterate_negative_teacher_steps(tmp, digits, trained):
  work = str(tmp / 'work')
  return Case([sys.executable, '-m', 'noisy_student.iterate',
               f'--work_dir={work}', f'--label_data_dir={digits}',
               f'--unlabel_data_dir={digits}/unlabeled',
               '--teacher_train_steps=-5'],
              r'--teacher_train_steps must be in \[1, inf\), received: -5',
              absent=work)


def eval_robustness_negative_fgsm_epsilon(tmp, digits, trained):
  return Case([sys.executable, '-m', 'noisy_student.eval_robustness',
               '--benchmark=fgsm', f'--model_path={trained}',
               f'--data_dir={digits}', f'--output_dir={tmp}/out',
               '--fgsm_epsilons=0,-4'],
              r'--fgsm_epsilons=0.0,-4.0: each must be in \[0, 255\], '
              r'received: -4', absent=str(tmp / 'out'))


def _beam_label(tmp, digits, trained, *extra):
  return [sys.executable, '-m', 'noisy_student.beam_label',
          f'--teacher={trained}', f'--output_dir={tmp}/out',
          f'--input_pattern={digits}/unlabeled/extra-*', *extra]


def beam_label_unknown_runner(tmp, digits, trained):
  return Case(_beam_label(tmp, digits, trained, '--runner=NoSuchRunner'),
              r'--runner=NoSuchRunner: Unexpected pipeline runner',
              absent=str(tmp / 'out'), max_stderr_lines=1)


def beam_label_negative_workers(tmp, digits, trained):
  return Case(_beam_label(tmp, digits, trained, '--direct_num_workers=-2'),
              r'--direct_num_workers must be >= 0', absent=str(tmp / 'out'),
              max_stderr_lines=1)


def tfds_bad_split_slice(tmp, digits, trained):
  return Case([sys.executable, '-m', 'data.tfds_to_tfrecord',
               '--dataset=cifar10', '--splits=train[:x]=train',
               f'--output_dir={tmp}/out'],
              r"--splits: 'train\[:x\]' is not a TFDS split",
              absent=str(tmp / 'out'))


def class_folder_with_a_line_break(tmp, digits, trained):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  for name in ('cat', 'dog\nbig'):
    folder = tmp / 'photos' / name
    folder.mkdir(parents=True)
    Image.new('RGB', (8, 8)).save(folder / 'a.png')
  return Case([sys.executable, '-m', 'data.images_to_tfrecord',
               f'--input_dir={tmp}/photos', f'--output_dir={tmp}/out',
               '--split=train'],
              r"class folder 'dog\\nbig' has a line break",
              absent=str(tmp / 'out'))


CASES = [label_11_of_10, label_0_is_not_1_based, teacher_with_12_classes,
         resume_with_other_model_flags, unknown_model_name, zero_image_size,
         small_image_size_the_data_does_not_have, negative_train_steps,
         zero_batch, batch_not_divisible_by_replicas,
         corrupted_record_in_training, corrupted_record_in_evaluation,
         corrupted_record_in_prediction, undecodable_image_in_evaluation,
         undecodable_image_in_training, every_checkpoint_truncated,
         latest_checkpoint_truncated_falls_back,
         init_model_of_another_architecture, unwritable_model_dir,
         iterate_rerun_with_changed_settings, iterate_truncated_state,
         iterate_folder_without_description, iterate_unknown_augmentation,
         ablate_unknown_arm,
         eval_robustness_empty_corrupted_folder, eval_robustness_missing_model,
         make_corrupted_unknown_corruption, make_corrupted_no_files,
         images_to_tfrecord_missing_folder, filter_missing_predictions,
         bad_flag_type, misspelt_eval_split, info_image_size_text,
         info_split_directory_outside,
         unlabeled_folder_of_other_classes, keras_model_ending_in_softmax,
         keras_model_of_one_channel, keras_file_that_is_not_a_zip,
         iterate_negative_teacher_steps,
         eval_robustness_negative_fgsm_epsilon, beam_label_unknown_runner,
         beam_label_negative_workers, tfds_bad_split_slice,
         class_folder_with_a_line_break, empty_unlabeled_shard_in_prediction,
         empty_unlabeled_shard_in_beam_label, keras_model_of_any_size,
         teacher_of_other_class_names]


def _unwritable(tmp) -> str:
  """A folder this process cannot create files in (root ignores modes)."""
  if os.geteuid() != 0:
    locked = tmp / 'locked'
    locked.mkdir()
    locked.chmod(0o555)
    return str(locked)
  return '/sys/noisy_student_test'  # sysfs: EPERM even for root


def _hashes(folder: Optional[str]) -> dict:
  if not folder:
    return {}
  out = {}
  for root, _, files in os.walk(folder):
    for name in files:
      path = os.path.join(root, name)
      with open(path, 'rb') as f:
        out[path] = hashlib.sha256(f.read()).hexdigest()
  return out


@pytest.mark.parametrize('make_case', CASES, ids=[c.__name__ for c in CASES])
def test_bad_input_gets_one_line_naming_the_culprit(make_case, digits_dir,
                                                    trained, tmp_path):
  case = make_case(tmp_path, digits_dir, trained)
  before = _hashes(case.unchanged)
  result = helpers.run(case.command, check=False, timeout=900)
  stderr = result.stderr.strip().splitlines()
  assert result.returncode == case.status, result.stderr[-3000:]
  if case.status == 2:
    binary = re.escape(case.command[2].rsplit('.', 1)[-1])
    assert re.match(rf'{binary}: error: ', stderr[-1]), stderr[-5:]
    assert re.search(case.message, stderr[-1]), stderr[-1]
    assert 'Traceback' not in result.stderr, result.stderr[-3000:]
  else:
    assert re.search(case.message, result.stderr), result.stderr[-3000:]
  assert _hashes(case.unchanged) == before
  if case.absent is not None:
    assert not os.path.exists(case.absent), os.listdir(case.absent)
  if case.max_stderr_lines is not None:
    assert len(stderr) <= case.max_stderr_lines, '\n'.join(stderr[-30:])


def test_rerun_after_the_fix_succeeds_in_the_same_model_dir(digits_dir,
                                                            tmp_path):
  """Refused runs write nothing, so the corrected command just works."""
  model_dir = str(tmp_path / 'model')
  for bad in (f'--model_name={_keras_file(tmp_path, "probs")}',
              '--eval_splits=bogus', '--num_train_shards=-1'):
    refused = helpers.run(_main(digits_dir, model_dir, '--mode=train_and_eval',
                                bad), check=False)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert not os.path.exists(model_dir)
  helpers.run(_main(digits_dir, model_dir, '--mode=train_and_eval'))
  assert os.path.exists(os.path.join(model_dir, 'eval_results.json'))


def test_a_second_trainer_on_a_model_dir_is_refused_until_the_first_dies(
    digits_dir, tmp_path):
  import signal  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  model_dir = str(tmp_path / 'model')
  holder = os.path.join(model_dir, '.writer.pid')  # exists while it is held
  first = subprocess.Popen(
      _main(digits_dir, model_dir, '--mode=train', steps=100000),
      cwd=helpers.REPO_ROOT, stdout=subprocess.DEVNULL,
      stderr=subprocess.DEVNULL,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2',
               PYTHONPATH=helpers.REPO_ROOT))
  try:
    for _ in range(3000):  # until it holds the lock (polled, no clock read)
      if os.path.exists(holder) and open(holder).read().startswith(
          f'pid {first.pid} '):
        break
      assert first.poll() is None, 'the first trainer ended early'
      time.sleep(0.1)
    else:
      pytest.fail('the first trainer never took the lock')
    second = helpers.run(_main(digits_dir, model_dir, '--mode=train'),
                         check=False)
    assert second.returncode == 2, second.stderr[-2000:]
    assert re.match(rf'main: error: {re.escape(model_dir)}: another trainer is '
                    rf'writing this folder \(pid {first.pid} on .*\); ',
                    second.stderr.strip().splitlines()[-1])
  finally:
    first.send_signal(signal.SIGKILL)
    first.wait()
  # A killed holder leaves no stuck lock: the next trainer resumes its folder.
  helpers.run(_main(digits_dir, model_dir, '--mode=train', steps=4))


@pytest.mark.slow
def test_iterate_force_redoes_a_changed_stage_from_nothing(digits_dir,
                                                           tmp_path):
  """The issue's case: --force after turning the student's RandAugment off
  used to resume the old student's final checkpoint and record its accuracy."""
  work = str(tmp_path / 'work')
  command = _tiny_iterate(work, digits_dir) + ['--student_augment_name=v1',
                                               '--teacher_augment_name=']
  helpers.run(command)
  student = os.path.join(work, 'round_1', 'student')
  old_events = sorted(n for n in os.listdir(student) if n.startswith('events'))
  # A setting the teacher does not use (it has no RandAugment) is no change.
  unchanged = helpers.run(command + ['--teacher_randaug_mag=5'])
  assert 'finished with other settings' not in unchanged.stderr
  assert unchanged.stderr.count('finished earlier; skipping') == 5
  redone = helpers.run(command[:-2] + ['--student_augment_name=',
                                       '--teacher_augment_name=', '--force'])
  moved = re.findall(r'\[round_1/student\] redone from nothing: its earlier '
                     r'output (\S+) was moved to (\S+)', redone.stderr)
  assert moved and moved[0][0] == student, redone.stderr[-3000:]
  assert sorted(n for n in os.listdir(moved[0][1])
                if n.startswith('events')) == old_events
  new_events = [n for n in os.listdir(student) if n.startswith('events')]
  assert len(new_events) == 1 and new_events[0] not in old_events
  state = json.load(open(os.path.join(work, 'state.json')))
  assert state['round_1/student']['settings']['data']['augment_name'] is None
