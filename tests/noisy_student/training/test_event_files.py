"""TensorBoard events of steps past a resumed checkpoint are dropped."""

import os

import tensorflow as tf

from noisy_student.training import event_files


def _steps(folder):
  return sorted(tf.compat.v1.Event.FromString(raw.numpy()).step
                for path in event_files.event_files(folder)
                for raw in tf.data.TFRecordDataset(path)
                if tf.compat.v1.Event.FromString(raw.numpy()).summary.value)


def _log(folder, steps):
  writer = tf.summary.create_file_writer(folder)
  with writer.as_default():
    for step in steps:
      tf.summary.scalar('train/loss', 1.0 / step, step=step)
  writer.flush()
  writer.close()


def test_events_after_the_step_are_removed_and_the_rest_kept(tmp_path):
  folder = str(tmp_path)
  _log(folder, [5, 10, 15, 20])   # a run killed after its step-10 checkpoint
  before = {p: os.path.getsize(p) for p in event_files.event_files(folder)}
  assert event_files.drop_events_after(folder, 10) == 2
  assert _steps(folder) == [5, 10]
  assert set(event_files.event_files(folder)) == set(before)  # same files
  assert event_files.drop_events_after(folder, 10) == 0     # idempotent
  _log(folder, [15, 20])          # the resumed run logs them once
  assert _steps(folder) == [5, 10, 15, 20]


def test_a_missing_folder_has_no_events(tmp_path):
  assert event_files.drop_events_after(str(tmp_path / 'absent'), 3) == 0
