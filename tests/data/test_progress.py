"""Tests for data/progress.py with a fake clock."""

from data import progress


def test_format_progress_has_count_rate_and_eta():
  line = progress.format_progress('train', 1200, 4800, 3.0)
  assert line == ('train: 1,200/4,800 images (25.0%), 400 images/s, '
                  'ETA 0:00:09')
  assert 'ETA ?' in progress.format_progress('x', 0, 10, 0.0)


def test_progress_logs_at_most_every_interval_and_at_the_end():
  now = [0.0]
  lines = []
  p = progress.Progress(100, 'dev', interval_s=10, log_fn=lines.append,
                        clock=lambda: now[0])
  for _ in range(10):
    now[0] += 3.0
    p.update(10)
  p.done()
  assert len(lines) == 3  # at 12 s and 24 s (updates every 3 s), then done
  assert lines[0].startswith('dev: 40/100 images (40.0%), 3 images/s')
  assert lines[-1].startswith('dev: 100/100 images (100.0%)')
