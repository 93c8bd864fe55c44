"""The project's TFRecord schema: one place for keys, dtypes, serialize and parse.

Every record is a `tf.train.Example`. Three kinds exist, compatible with the
original release (ImageNet shards from the usual imagenet_to_gcs tooling, the
original SVHN shards and the original pseudo-label shards read unchanged):

* labeled:        `image/encoded` (JPEG/PNG bytes), `image/class/label`
                  (int64, **1-based** in files; 0-based everywhere in memory).
* unlabeled:      `image/encoded`; an optional `image/class/label` (1-based) is
                  kept when the true label is known (e.g. SVHN `extra`), only to
                  measure pseudo-label accuracy; training never reads it.
* pseudo-labeled: `image/encoded`, `probabilities` (float32 x num_classes, the
                  teacher's softmax), `label` (int64, 0-based argmax) and `prob`
                  (float32, the top-1 probability).

Prediction shards written by `main --mode=predict` hold no image, only
`probabilities` (float32 x num_classes) and `classes` (int64, 0-based), in the
same order as the unlabeled shard they were computed from.

Serialize functions are plain Python (used by the data/ binaries and by
predict/filter); parse functions are graph-safe TF (used inside tf.data).
"""

from __future__ import annotations

import struct
from typing import Iterable, Sequence

import numpy as np
import tensorflow as tf

from data import errors

IMAGE_KEY = 'image/encoded'
LABEL_KEY = 'image/class/label'          # 1-based in files
PROBABILITIES_KEY = 'probabilities'
PSEUDO_LABEL_KEY = 'label'               # 0-based
PSEUDO_PROB_KEY = 'prob'
CLASSES_KEY = 'classes'                  # 0-based, prediction shards


class RecordError(errors.NoisyStudentError):
  """A record or record file does not follow the schema; names the file."""


# --------------------------------------------------------------------------
# Serialization (Python side).
# --------------------------------------------------------------------------
def _bytes_feature(value: bytes) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64_feature(values: Iterable[int]) -> tf.train.Feature:
  return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _float_feature(values: Iterable[float]) -> tf.train.Feature:
  return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def _example(features: dict) -> bytes:
  # deterministic=True sorts the feature map by key: without it the order
  # (hence the bytes of a shard) can differ from one process to the next.
  return tf.train.Example(features=tf.train.Features(
      feature=features)).SerializeToString(deterministic=True)


def serialize_labeled(encoded_image: bytes, label: int) -> bytes:
  """A labeled example; `label` is 0-based and stored 1-based."""
  if label < 0:
    raise RecordError(f'label must be >= 0 (0-based), received: {label}')
  return _example({
      IMAGE_KEY: _bytes_feature(encoded_image),
      LABEL_KEY: _int64_feature([int(label) + 1]),
  })


def serialize_unlabeled(encoded_image: bytes, label: int | None = None) -> bytes:
  """An unlabeled example; a known 0-based `label` is kept for diagnostics."""
  features = {IMAGE_KEY: _bytes_feature(encoded_image)}
  if label is not None:
    features[LABEL_KEY] = _int64_feature([int(label) + 1])
  return _example(features)


def serialize_pseudo_labeled(encoded_image: bytes,
                             probabilities: Sequence[float]) -> bytes:
  """A pseudo-labeled example; `label`/`prob` are derived from `probabilities`."""
  probs = np.asarray(probabilities, dtype=np.float32).reshape(-1)
  label = int(np.argmax(probs))
  return _example({
      IMAGE_KEY: _bytes_feature(encoded_image),
      PROBABILITIES_KEY: _float_feature(probs.tolist()),
      PSEUDO_LABEL_KEY: _int64_feature([label]),
      PSEUDO_PROB_KEY: _float_feature([float(probs[label])]),
  })


def serialize_prediction(probabilities: Sequence[float]) -> bytes:
  """One prediction record (no image): `probabilities` and argmax `classes`."""
  probs = np.asarray(probabilities, dtype=np.float32).reshape(-1)
  return _example({
      PROBABILITIES_KEY: _float_feature(probs.tolist()),
      CLASSES_KEY: _int64_feature([int(np.argmax(probs))]),
  })


def read_example(serialized: bytes) -> dict:
  """Decodes one serialized Example into a dict of numpy values (Python side).

  Bytes features become `bytes`, int64 features `np.int64` arrays and float
  features `np.float32` arrays. Used by tests and by the filtering binary.
  """
  example = tf.train.Example.FromString(serialized)
  out = {}
  for key, feature in example.features.feature.items():
    kind = feature.WhichOneof('kind')
    if kind == 'bytes_list':
      out[key] = feature.bytes_list.value[0] if feature.bytes_list.value else b''
    elif kind == 'int64_list':
      out[key] = np.asarray(feature.int64_list.value, dtype=np.int64)
    elif kind == 'float_list':
      out[key] = np.asarray(feature.float_list.value, dtype=np.float32)
  return out


# --------------------------------------------------------------------------
# Parsing (graph side, inside tf.data).
# --------------------------------------------------------------------------
def parse_labeled(serialized: tf.Tensor) -> dict:
  """Returns {'image_bytes': string [], 'label': int32 [] 0-based}."""
  parsed = tf.io.parse_single_example(serialized, {
      IMAGE_KEY: tf.io.FixedLenFeature([], tf.string, ''),
      LABEL_KEY: tf.io.FixedLenFeature([], tf.int64, -1),
  })
  return {
      'image_bytes': parsed[IMAGE_KEY],
      'label': tf.cast(parsed[LABEL_KEY], tf.int32) - 1,
  }


def parse_unlabeled(serialized: tf.Tensor) -> dict:
  """Returns {'image_bytes': string []}."""
  parsed = tf.io.parse_single_example(serialized, {
      IMAGE_KEY: tf.io.FixedLenFeature([], tf.string, ''),
  })
  return {'image_bytes': parsed[IMAGE_KEY]}


def _checked_probabilities(probs: tf.Tensor, num_classes: int,
                           filename: tf.Tensor | None) -> tf.Tensor:
  """Asserts len(probs) == num_classes; the error names the file if given."""
  message = ['`probabilities` has the wrong length: expected', num_classes,
             'got', tf.size(probs)]
  if filename is not None:
    message += ['in file', filename]
  check = tf.debugging.Assert(tf.equal(tf.size(probs), num_classes), message,
                              summarize=num_classes)
  with tf.control_dependencies([check]):
    return tf.reshape(probs, [num_classes])


def parse_pseudo_labeled(serialized: tf.Tensor, num_classes: int,
                         filename: tf.Tensor | None = None) -> dict:
  """Returns image_bytes, probabilities float32 [C], label int32, prob float32.

  A `probabilities` of a length other than `num_classes` fails with an
  InvalidArgumentError whose message names `filename` when one is passed.
  """
  parsed = tf.io.parse_single_example(serialized, {
      IMAGE_KEY: tf.io.FixedLenFeature([], tf.string, ''),
      PROBABILITIES_KEY: tf.io.VarLenFeature(tf.float32),
      PSEUDO_LABEL_KEY: tf.io.FixedLenFeature([], tf.int64, -1),
      PSEUDO_PROB_KEY: tf.io.FixedLenFeature([], tf.float32, 0.0),
  })
  probs = _checked_probabilities(
      tf.sparse.to_dense(parsed[PROBABILITIES_KEY]), num_classes, filename)
  return {
      'image_bytes': parsed[IMAGE_KEY],
      'probabilities': probs,
      'label': tf.cast(parsed[PSEUDO_LABEL_KEY], tf.int32),
      'prob': parsed[PSEUDO_PROB_KEY],
  }


def parse_prediction(serialized: tf.Tensor, num_classes: int,
                     filename: tf.Tensor | None = None) -> dict:
  """Returns probabilities float32 [C] and classes int32 [] (0-based)."""
  parsed = tf.io.parse_single_example(serialized, {
      PROBABILITIES_KEY: tf.io.VarLenFeature(tf.float32),
      CLASSES_KEY: tf.io.FixedLenFeature([], tf.int64, -1),
  })
  probs = _checked_probabilities(
      tf.sparse.to_dense(parsed[PROBABILITIES_KEY]), num_classes, filename)
  return {'probabilities': probs,
          'classes': tf.cast(parsed[CLASSES_KEY], tf.int32)}


# --------------------------------------------------------------------------
# File integrity.
# --------------------------------------------------------------------------
_HEADER = struct.Struct('<QI')  # uint64 length, uint32 masked crc of length


def count_records(path: str) -> int:
  """Counts the records of a TFRecord file by walking its length headers.

  Reads 12 bytes per record and seeks over the payload, so it is fast on local
  disks. Raises RecordError naming `path` and the byte offset when the file ends
  inside a record (a truncated or half-written shard).
  """
  count = 0
  offset = 0
  with tf.io.gfile.GFile(path, 'rb') as f:
    size = f.size()
    while offset < size:
      header = f.read(_HEADER.size)
      if len(header) < _HEADER.size:
        raise RecordError(
            f'{path}: truncated TFRecord file, the record header at byte '
            f'{offset} is cut short (file size {size} bytes)')
      (length, _) = _HEADER.unpack(header)
      end = offset + _HEADER.size + length + 4
      if end > size:
        raise RecordError(
            f'{path}: truncated TFRecord file, record {count} at byte {offset} '
            f'needs {length} payload bytes but the file ends at byte {size}')
      f.seek(end)
      offset = end
      count += 1
  return count


def find_bad_file(paths: Sequence[str]) -> RecordError | None:
  """Returns the RecordError of the first truncated file in `paths`, or None.

  Called by input pipelines after TensorFlow reported a DataLossError (whose
  message does not name the file) to turn it into an error that does.
  """
  for path in paths:
    try:
      count_records(path)
    except RecordError as err:
      return err
  return None
