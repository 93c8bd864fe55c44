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

from noisy_student.runtime import errors

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
# Every in-graph check of a record raises an InvalidArgumentError whose message
# holds one line starting with this marker; `graph_error_line` extracts it.
GRAPH_ERROR_MARKER = 'record check: '


def _text(*parts) -> tf.Tensor:
  """Joins str and tensor parts into one string tensor, numbers as digits.

  (tf.strings.format would quote string tensors: '"file": record 7'.)
  """
  pieces = []
  for part in parts:
    if isinstance(part, str):
      pieces.append(part)
    elif part.dtype == tf.string:
      pieces.append(part)
    else:
      pieces.append(tf.strings.as_string(part))
  return tf.strings.join(pieces)


def _where(filename: tf.Tensor | None, index: tf.Tensor | None) -> tf.Tensor:
  if filename is None:
    return tf.constant('a record')
  if index is None:
    return _text('a record of ', filename)
  return _text(filename, ': record ', index)


def _assert_record(condition: tf.Tensor, message: tf.Tensor):
  """An assertion whose error message is GRAPH_ERROR_MARKER + `message`."""
  return tf.debugging.Assert(
      condition, [tf.strings.join([GRAPH_ERROR_MARKER, message])])


def graph_error_line(error: Exception) -> str | None:
  """The one-line message of a failed record check in `error`, else None."""
  text = getattr(error, 'message', None) or str(error)
  start = text.find(GRAPH_ERROR_MARKER)
  if start < 0:
    return None
  line = text[start + len(GRAPH_ERROR_MARKER):].splitlines()[0]
  # Graph mode prints the message bare, eager mode as a quoted list item.
  return line.split(']')[0].strip().rstrip('\'"')


def parse_labeled(serialized: tf.Tensor, num_classes: int | None = None,
                  filename: tf.Tensor | None = None,
                  index: tf.Tensor | None = None) -> dict:
  """Returns {'image_bytes': string [], 'label': int32 [] 0-based}.

  With `num_classes`, a label outside 1..num_classes in the file (0-based
  outside 0..C-1, or missing) fails with an error naming `filename` and the
  record `index` (see `graph_error_line`).
  """
  parsed = tf.io.parse_single_example(serialized, {
      IMAGE_KEY: tf.io.FixedLenFeature([], tf.string, ''),
      LABEL_KEY: tf.io.FixedLenFeature([], tf.int64, -1),
  })
  label = tf.cast(parsed[LABEL_KEY], tf.int32) - 1
  if num_classes is not None:
    check = _assert_record(
        (label >= 0) & (label < num_classes),
        _text(_where(filename, index), ' has label ', label + 1,
              f' (1-based in the file), outside 1..{num_classes}: the data '
              f'and the class count ({errors.field_name("num_classes")}, dataset_info.json) '
              'disagree'))
    with tf.control_dependencies([check]):
      label = tf.identity(label)
  return {'image_bytes': parsed[IMAGE_KEY], 'label': label}


def parse_unlabeled(serialized: tf.Tensor) -> dict:
  """Returns {'image_bytes': string []}."""
  parsed = tf.io.parse_single_example(serialized, {
      IMAGE_KEY: tf.io.FixedLenFeature([], tf.string, ''),
  })
  return {'image_bytes': parsed[IMAGE_KEY]}


# How far a stored probability vector's sum may be from 1 (float32 softmax
# rows sum to 1 within ~1e-6).
PROBABILITY_SUM_TOLERANCE = 1e-3


def _checked_probabilities(probs: tf.Tensor, num_classes: int,
                           filename: tf.Tensor | None,
                           index: tf.Tensor | None = None) -> tf.Tensor:
  """Asserts that `probs` is a probability vector of `num_classes` entries
  (each finite and in [0, 1], summing to 1); the error names the file and
  record."""
  where = _where(filename, index)
  size_check = _assert_record(
      tf.equal(tf.size(probs), num_classes),
      _text(where, ' has ', tf.size(probs),
            f' `probabilities`, expected {num_classes} (the teacher and the '
            'student must have the same classes)'))
  in_range = tf.reduce_all(tf.math.is_finite(probs) & (probs >= 0.0)
                           & (probs <= 1.0))
  sums_to_one = tf.abs(tf.reduce_sum(probs) - 1.0) <= PROBABILITY_SUM_TOLERANCE
  value_check = _assert_record(
      in_range & sums_to_one,
      _text(where, ' has `probabilities` that are not a probability vector '
            '(min ', tf.reduce_min(probs), ', max ', tf.reduce_max(probs),
            ', sum ', tf.reduce_sum(probs), '): pseudo-labels must be a '
            "teacher's softmax (filter_unlabel writes them)"))
  with tf.control_dependencies([size_check, value_check]):
    return tf.reshape(probs, [num_classes])


def parse_pseudo_labeled(serialized: tf.Tensor, num_classes: int,
                         filename: tf.Tensor | None = None,
                         index: tf.Tensor | None = None) -> dict:
  """Returns image_bytes, probabilities float32 [C], label int32, prob float32.

  A `probabilities` of a length other than `num_classes`, or one that is not
  a probability vector (an entry outside [0, 1] or not finite, a sum other
  than 1), fails with an InvalidArgumentError whose message names `filename`
  when one is passed (`graph_error_line`).
  """
  parsed = tf.io.parse_single_example(serialized, {
      IMAGE_KEY: tf.io.FixedLenFeature([], tf.string, ''),
      PROBABILITIES_KEY: tf.io.VarLenFeature(tf.float32),
      PSEUDO_LABEL_KEY: tf.io.FixedLenFeature([], tf.int64, -1),
      PSEUDO_PROB_KEY: tf.io.FixedLenFeature([], tf.float32, 0.0),
  })
  probs = _checked_probabilities(
      tf.sparse.to_dense(parsed[PROBABILITIES_KEY]), num_classes, filename,
      index)
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
  """The RecordError of the first unreadable record in `paths`, or None.

  Called by input pipelines after TensorFlow reported a DataLossError (whose
  message names neither the file nor the record) to turn it into an error that
  does: a truncated file (a record header walk) or a record whose checksum
  does not match (every record is read).
  """
  for path in paths:
    try:
      count_records(path)
    except RecordError as err:
      return err
    index = 0
    try:
      for _ in tf.data.TFRecordDataset(path, buffer_size=8 << 20):
        index += 1
    except tf.errors.DataLossError as err:
      return RecordError(f'{path}: record {index} is corrupted '
                         f'({err.message.splitlines()[0]})')
  return None


def find_undecodable_record(files: Sequence[str]) -> RecordError | None:
  """Scans `files` for the first record whose image cannot be decoded.

  Called after the pipeline failed with an error that does not name the file
  (TensorFlow's decode errors do not); reads every record, so it is slow on
  big datasets, but it only runs after a failure.
  """
  for path in files:
    for index, serialized in enumerate(tf.data.TFRecordDataset(path)):
      try:
        fields = read_example(serialized.numpy())
        tf.io.decode_image(fields.get(IMAGE_KEY, b''), channels=3,
                           expand_animations=False)
      except (tf.errors.InvalidArgumentError, ValueError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        return RecordError(f'{path}: record {index} has no decodable '
                           f'`{IMAGE_KEY}` image ({message})')
  return None


def explain_data_error(error: Exception,
                       files: Sequence[str]) -> RecordError | None:
  """The one-line error naming the file and record behind a tf.data failure.

  `error` is what iterating a pipeline over `files` raised: a failed record
  check (label or probabilities; its message names the record already), a
  DataLossError (a truncated or corrupted record; the files are re-read to
  find it) or an InvalidArgumentError of the image decoder (the records are
  decoded again to find it). None when the cause cannot be found.
  """
  line = graph_error_line(error)
  if line is not None:
    return RecordError(line)
  if isinstance(error, tf.errors.DataLossError):
    return find_bad_file(list(files))
  if isinstance(error, tf.errors.InvalidArgumentError):
    return find_undecodable_record(files)
  return None
