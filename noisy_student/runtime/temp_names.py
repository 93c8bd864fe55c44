"""The names of the project's temporary files and folders.

Every output is written under a temporary name beside its destination and
renamed into place when complete (`data/writers.py`, and
`efficientnet.save_tf1_checkpoint`, which must not depend on `data`). The
name is hidden (leading '.'), so shard readers skip it, and recognisable, so
a rerun can remove a killed writer's leftovers. Standard library only.
"""

from __future__ import annotations

import os
import uuid

TEMP_MARKER = '.tmp-'


def temp_path(path: str, suffix: str = '') -> str:
  """A hidden temporary name next to `path`: `.<name>.tmp-<8 hex><suffix>`.

  `suffix` keeps an extension a writer needs (e.g. '.keras').
  """
  directory, base = os.path.split(path)
  return os.path.join(directory,
                      f'.{base}{TEMP_MARKER}{uuid.uuid4().hex[:8]}{suffix}')


def is_temp_name(name: str) -> bool:
  """True for names made by `temp_path` (a killed writer's leftovers)."""
  base = os.path.basename(name)
  return base.startswith('.') and TEMP_MARKER in base
