"""Reading shards back the way training does: data.records parse + decode_image."""

from __future__ import annotations

import glob
import os

import numpy as np
import tensorflow as tf

from data import records


def shard_files(directory: str, split: str) -> list[str]:
  return sorted(glob.glob(os.path.join(directory, f'{split}-*-of-*')))


def read_split(directory: str, split: str, labeled: bool = True
               ) -> tuple[list[np.ndarray], list[int | None], list[bytes]]:
  """(uint8 [H, W, 3] images, 0-based labels, raw records) in file order.

  Labeled records go through records.parse_labeled; unlabeled ones through
  records.parse_unlabeled, with the optional diagnostic label read by
  records.read_example (None when absent).
  """
  files = shard_files(directory, split)
  assert files, f'no {split} shards in {directory}'
  parse = records.parse_labeled if labeled else records.parse_unlabeled

  def decode(serialized):
    parsed = parse(serialized)
    image = tf.io.decode_image(parsed['image_bytes'], channels=3,
                               expand_animations=False)
    return image, parsed.get('label', -1), serialized

  images, labels, raw = [], [], []
  for image, label, serialized in tf.data.TFRecordDataset(files).map(decode):
    images.append(image.numpy())
    raw.append(serialized.numpy())
    if labeled:
      labels.append(int(label))
    else:
      fields = records.read_example(raw[-1])
      label = fields.get(records.LABEL_KEY)
      labels.append(None if label is None else int(label[0]) - 1)
  return images, labels, raw


def file_bytes(paths: list[str]) -> list[bytes]:
  out = []
  for path in paths:
    with open(path, 'rb') as f:
      out.append(f.read())
  return out
