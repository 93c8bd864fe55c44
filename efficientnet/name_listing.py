"""How the checkpoint loaders list variable names in their messages.

Shared by `tf1_checkpoint.py` and `timm_weights.py`: names sorted naturally
(blocks_2 before blocks_10) and a titled listing cut at MAX_LISTED names.
"""

from __future__ import annotations

import re

MAX_LISTED = 12  # names per category in a mismatch message


def natural_key(name: str) -> list:
  """Sort key that puts blocks_2 before blocks_10."""
  return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', name)]


def listing(title: str, items: list[str]) -> str:
  """'\\n  title (N):\\n    a\\n    b ... and K more' (MAX_LISTED shown)."""
  shown = items[:MAX_LISTED]
  lines = [f'\n  {title} ({len(items)}):'] + [f'\n    {i}' for i in shown]
  if len(items) > len(shown):
    lines.append(f'\n    ... and {len(items) - len(shown)} more')
  return ''.join(lines)
