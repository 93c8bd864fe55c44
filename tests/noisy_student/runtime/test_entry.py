"""noisy_student/runtime/entry.py: the error contract every binary runs under (docs/errors.md)."""

import errno
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

from noisy_student.runtime import entry


@pytest.mark.parametrize('code', [errno.ENOSPC, errno.EROFS, errno.EACCES,
                                  errno.EPERM, errno.EDQUOT])
def test_full_or_read_only_disk_is_one_line_naming_the_file(code):
  error = OSError(code, 'No space left on device', '/data/out/train-00001')
  line = entry.storage_error_line(error)
  assert line.startswith('/data/out/train-00001: No space left on device')
  assert 'disk is full, read-only or not writable' in line


def test_tensorflow_file_system_errors_are_storage_errors():
  denied = tf.errors.PermissionDeniedError(None, None,
                                           '/ro/model/ckpt-5.index; Permission denied\nmore')
  assert entry.storage_error_line(denied) == (
      '/ro/model/ckpt-5.index; Permission denied (check the disk: space, '
      'permissions)')


def test_tensorflow_internals_are_not_shown_in_the_line():
  full = tf.errors.ResourceExhaustedError(None, None, (
      '{{function_node __wrapped__SaveV2_dtypes_412_device_/job:localhost/'
      'replica:0/task:0/device:CPU:0}} /m/ckpt-5_temp/part-00000-of-00001.'
      'data-00000-of-00001.tempstate81; No space left on device\n\t [[x]]'))
  assert entry.storage_error_line(full) == (
      '/m/ckpt-5; No space left on device (check the disk: space, permissions)')
  assert entry.one_line('{{function_node __inference_f_9}} bad\nmore') == 'bad'
  assert entry.one_line('/scratch/exp_temp/data: no shards') == (
      '/scratch/exp_temp/data: no shards')


def test_other_errors_are_bugs():
  assert entry.storage_error_line(OSError(errno.ENOENT, 'missing', 'x')) is None
  assert entry.storage_error_line(KeyError('k')) is None
  assert entry.storage_error_line(tf.errors.InvalidArgumentError(
      None, None, 'bad shape')) is None


def _run_binary(body: str, *argv: str) -> subprocess.CompletedProcess:
  program = textwrap.dedent('''
      from absl import flags
      from noisy_student.runtime import entry
      from noisy_student.runtime import errors

      def define_flags():
        flags.DEFINE_integer('steps', 1, 'Steps.')

      def main(argv):
      ''') + textwrap.indent(textwrap.dedent(body), '  ') + textwrap.dedent('''
      entry.run('tool', main, define_flags)
      ''')
  return subprocess.run([sys.executable, '-c', program, *argv],
                        capture_output=True, text=True, timeout=120)


def test_user_error_is_one_line_and_status_2():
  result = _run_binary("raise errors.ConfigError('--steps must be positive, "
                       "received: 0\\nsecond line')")
  assert result.returncode == 2
  assert result.stderr.strip().splitlines()[-1] == (
      'tool: error: --steps must be positive, received: 0')
  assert 'Traceback' not in result.stderr


def test_bad_flag_value_and_stray_arguments_are_status_2():
  bad = _run_binary('pass', '--steps=many')
  assert bad.returncode == 2
  assert bad.stderr.strip().splitlines()[-1].startswith(
      'tool: error: flag --steps=many:')
  stray = _run_binary('pass', 'extra')
  assert stray.returncode == 2 and "unexpected arguments ['extra']" in stray.stderr


def test_a_bug_keeps_its_traceback_and_status_1():
  result = _run_binary("raise KeyError('oops')")
  assert result.returncode == 1
  assert 'Traceback' in result.stderr and "KeyError: 'oops'" in result.stderr
