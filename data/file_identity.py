"""What a file holds, as a short string: 'sha256:<hex>' of its bytes.

Outputs record the identity of what they were made from (a teacher's weights
file, an input shard), so that a rerun recognises a changed input by its
content, not by its name or size.
"""

from __future__ import annotations

import hashlib

import tensorflow as tf

_CHUNK_BYTES = 1 << 22


def sha256(path: str) -> str:
  """'sha256:<hex>' of the file at `path` (local or any tf.io.gfile path),
  read in 4 MiB chunks."""
  digest = hashlib.sha256()
  with tf.io.gfile.GFile(path, 'rb') as f:
    for chunk in iter(lambda: f.read(_CHUNK_BYTES), b''):
      digest.update(chunk)
  return 'sha256:' + digest.hexdigest()
