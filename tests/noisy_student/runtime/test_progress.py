"""The progress lines: count / total, rate and ETA, to absl or stderr."""

import time
import types

from absl import logging

from noisy_student.runtime import progress


def _flags_parsed(monkeypatch, parsed):
  fake_flag_values = types.SimpleNamespace(is_parsed=lambda: parsed)
  monkeypatch.setattr(progress, 'flags',
                      types.SimpleNamespace(FLAGS=fake_flag_values))


def test_progress_line(monkeypatch):
  lines = []
  monkeypatch.setattr(progress, 'emit', lines.append)
  bar = progress.Progress('corrupt', 10, every_s=0.0)
  bar.update(4, 'fog 3')
  assert lines[-1].startswith('corrupt: 4/10 images, ')
  assert 'ETA' in lines[-1] and lines[-1].endswith('(fog 3)')
  assert bar.finish() >= 0 and 'corrupt: 4 images in' in lines[-1]


def test_progress_waits_every_s_between_lines(monkeypatch):
  lines = []
  monkeypatch.setattr(progress, 'emit', lines.append)
  bar = progress.Progress('predict', None, every_s=3600.0)
  bar.update(5)
  assert lines == []
  bar.finish()
  assert lines == [lines[0]] and lines[0].startswith('predict: 5 images in')


def test_emit_goes_to_stderr_outside_a_binary(monkeypatch, capsys):
  _flags_parsed(monkeypatch, False)
  progress.emit('train: step 3/10')
  assert capsys.readouterr().err == 'train: step 3/10\n'


def test_emit_goes_to_absl_inside_a_binary(monkeypatch, capsys):
  _flags_parsed(monkeypatch, True)
  logged = []
  monkeypatch.setattr(logging, 'info',
                      lambda fmt, *args: logged.append(fmt % args))
  progress.emit('train: step 3/10')
  assert logged == ['train: step 3/10']
  assert capsys.readouterr().err == ''


def test_clock():
  assert progress.clock(5.2) == '5s'
  assert progress.clock(125) == '2m05s'
  assert progress.clock(7300) == '2h01m'
  assert progress.clock(float('inf')) == '?'


def test_heartbeat_speaks_only_while_a_long_call_runs():
  lines = []
  with progress.heartbeat('tracing the step', every_s=0.05,
                          emit_line=lines.append):
    time.sleep(0.3)
  assert len(lines) >= 2
  assert all(l.startswith('tracing the step (') and l.endswith('s so far)')
             for l in lines)
  count = len(lines)
  time.sleep(0.2)  # the thread stopped with the block
  assert len(lines) == count
  with progress.heartbeat('quick', every_s=60, emit_line=lines.append):
    pass
  assert len(lines) == count
  # A block that prints often enough needs no heartbeat.
  with progress.heartbeat('talking', every_s=0.2, emit_line=lines.append):
    for _ in range(6):
      progress.emit('a line')
      time.sleep(0.05)
  assert len(lines) == count


def test_only_the_innermost_heartbeat_speaks():
  lines = []
  with progress.heartbeat('stage', every_s=0.05, emit_line=lines.append):
    with progress.heartbeat('tracing', every_s=0.05, emit_line=lines.append):
      time.sleep(0.3)
  assert lines and all(l.startswith('tracing (') for l in lines)
