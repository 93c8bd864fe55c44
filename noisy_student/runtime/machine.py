"""What machine this is, in words, for the records of timed runs."""

from __future__ import annotations

import os
import platform


def name() -> str:
  """'<CPU model>, <N> cores' (the Linux model name where there is one)."""
  model = platform.processor() or platform.machine()
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          model = line.split(':', 1)[1].strip()
          break
  except OSError:
    pass
  return f'{model}, {os.cpu_count()} cores'
