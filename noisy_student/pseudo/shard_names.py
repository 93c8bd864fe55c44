"""Names of the prediction-stage files (the original release's), and --shard_id.

Light on purpose (no TensorFlow/Keras import): used by `predict` (which writes
these files) and by `filter_unlabel` (which reads them).
* unlabeled shard:  `<data_dir>/<file_prefix>-%05d-of-%05d`
* predictions:      `<output_dir>/train-info-%05d-of-%05d-%05d` (shard, num_shards, worker)
* info file:        `<info_dir>/info-%05d-of-%05d-%05d.txt`
* filtered shard:   `<data_dir>/<file_prefix>-<worker>-%05d-of-%05d` (reassign input)
"""

from __future__ import annotations

import os


def input_shard_path(data_dir: str, file_prefix: str, shard_id: int,
                     num_shards: int) -> str:
  return os.path.join(data_dir, f'{file_prefix}-{shard_id:05d}-of-{num_shards:05d}')


def reassign_input_path(data_dir: str, file_prefix: str, worker_id: int,
                        shard_id: int, num_shards: int) -> str:
  return os.path.join(
      data_dir, f'{file_prefix}-{worker_id}-{shard_id:05d}-of-{num_shards:05d}')


def prediction_path(output_dir: str, shard_id: int, num_shards: int,
                    worker_id: int) -> str:
  return os.path.join(
      output_dir, f'train-info-{shard_id:05d}-of-{num_shards:05d}-{worker_id:05d}')


def info_path(info_dir: str, shard_id: int, num_shards: int,
              worker_id: int) -> str:
  return os.path.join(
      info_dir, f'info-{shard_id:05d}-of-{num_shards:05d}-{worker_id:05d}.txt')


def parse_shard_ids(spec: str, num_shards: int) -> list[int]:
  """'3', '0,5,7', '2-4' or 'all' -> shard ids; errors name the flag."""
  if spec in ('all', '-1'):
    return list(range(num_shards))
  ids = []
  for part in spec.split(','):
    part = part.strip()
    if '-' in part:
      low, high = part.split('-', 1)
      ids.extend(range(int(low), int(high) + 1))
    elif part:
      ids.append(int(part))
  bad = [i for i in ids if not 0 <= i < num_shards]
  if bad:
    raise ValueError(f'--shard_id={spec}: shards {bad} outside [0, {num_shards})')
  return ids
