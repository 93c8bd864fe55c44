"""The progress line: count / total, rate and ETA."""

from absl import logging

from data import progress


def test_progress_line(monkeypatch):
  lines = []
  monkeypatch.setattr(logging, 'info',
                      lambda fmt, *args: lines.append(fmt % args))
  bar = progress.Progress('corrupt', 10, every_s=0.0)
  bar.update(4, 'fog 3')
  assert lines[-1].startswith('corrupt: 4/10 images, ')
  assert 'ETA' in lines[-1] and lines[-1].endswith('(fog 3)')
  assert bar.finish() >= 0 and 'corrupt: 4 images in' in lines[-1]


def test_clock():
  assert progress._clock(5.2) == '5s'
  assert progress._clock(125) == '2m05s'
  assert progress._clock(7300) == '2h01m'
  assert progress._clock(float('inf')) == '?'
