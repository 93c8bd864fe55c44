"""Teacher prediction on unlabeled shards (`--mode=predict`) and re-labeling.

File names are the original release's, so its filter scripts and ours agree:
* input shard:      `<data_dir>/<file_prefix>-%05d-of-%05d` (shard, num_shards)
* predictions:      `<output_dir>/train-info-%05d-of-%05d-%05d`
                    (shard, num_shards, worker_id): one record per image, in
                    the input's order, with `probabilities` and `classes`;
* info file:        `<info_dir>/info-%05d-of-%05d-%05d.txt`: {"image_num": N,
                    "made_from": {"teacher": weights identity, "input_bytes",
                    "image_size"}}.
With `total_replicas` > 1 a shard is split among workers: worker w predicts the
records whose index i has i % total_replicas == w.

A shard is done when its prediction file exists, holds exactly the number
of records its info file states, and the info file says it was made from the
same teacher weights (`loading.weights_identity`), the same input shard size
and image size. Both files are written atomically, the info file last, so a
rerun skips finished shards and redoes half-written ones or ones made from
other inputs (a warning names them).

Re-labeling (`--reassign_label`, the original's reassign step) runs a newer
teacher over already filtered pseudo-labeled shards
`<data_dir>/<file_prefix>-<worker>-%05d-of-%05d` and rewrites them, image bytes
unchanged, with the new `probabilities`/`label`/`prob`.
"""

from __future__ import annotations

import json
import os
from typing import Iterator, Optional, Sequence
import weakref

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from noisy_student.runtime import progress as progress_lib
from data import file_identity
from data import layout
from data import records
from data import writers
from noisy_student.augment import preprocessing
from noisy_student.runtime import errors


def _read_info_json(path: str) -> Optional[dict]:
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def read_info(path: str) -> Optional[int]:
  info = _read_info_json(path)
  return None if info is None else int(info['image_num'])


def made_from(teacher_identity: str, input_file: str,
              image_size: Optional[int] = None) -> dict:
  """What a shard's predictions are made from (recorded in its info file):
  the teacher's weights identity, the input shard's size and content hash
  (a shard replaced by another of the same size is recognised), the image
  size."""
  made = {'teacher': teacher_identity,
          'input_bytes': int(tf.io.gfile.stat(input_file).length),
          'input_sha256': file_identity.sha256(input_file)}
  if image_size is not None:
    made['image_size'] = int(image_size)
  return made


def made_from_other(info_file: str, made: Optional[dict]) -> Optional[dict]:
  """The recorded origin of the shard's predictions when it differs from
  `made` in any key `made` gives (an info file without one, written before
  origins were recorded, differs too); None when it matches or nothing is
  recorded yet."""
  info = _read_info_json(info_file)
  if made is None or info is None:
    return None
  recorded = info.get('made_from') or {}
  if any(recorded.get(key) != value for key, value in made.items()):
    return recorded
  return None


def shard_is_done(pred_file: str, info_file: str,
                  made: Optional[dict] = None) -> bool:
  """Predictions complete and, when `made` is given, made from it."""
  expected = read_info(info_file)
  if expected is None or not tf.io.gfile.exists(pred_file):
    return False
  if made_from_other(info_file, made) is not None:
    return False
  try:
    return records.count_records(pred_file) == expected
  except records.RecordError:
    return False


def worker_count(total: int, total_replicas: int, worker_id: int) -> int:
  """Records i < total with i % total_replicas == worker_id."""
  return len(range(worker_id, total, total_replicas))


_STEPS = weakref.WeakKeyDictionary()


def _one_device(strategy: tf.distribute.Strategy) -> bool:
  """True for the default strategy: no distribution machinery is needed."""
  return (strategy is tf.distribute.get_strategy()
          and not tf.distribute.has_strategy())


def _predict_step(model: keras.Model, strategy: tf.distribute.Strategy):
  """One traced softmax step per (model, strategy), reused across shards.

  On one device the step takes the batch as it is and returns only the
  rows of real images (one tensor to copy out); distributed, it runs on every
  replica and returns (softmax, mask) per replica.
  """
  per_model = _STEPS.setdefault(model, {})
  if id(strategy) not in per_model:
    def softmax(images):
      logits = tf.cast(model(images, training=False), tf.float32)
      return tf.nn.softmax(logits, -1)

    if _one_device(strategy):
      @tf.function(reduce_retracing=True)
      def step(batch):
        return tf.boolean_mask(softmax(batch['image']), batch['mask'] > 0)
    else:
      @tf.function
      def step(batch):
        return strategy.run(
            lambda inputs: (softmax(inputs['image']), inputs['mask']),
            args=(batch,))
    per_model[id(strategy)] = step
  return per_model[id(strategy)]


def _probabilities(model: keras.Model, strategy: tf.distribute.Strategy,
                   files: Sequence[str], *, image_size: int, small_image: bool,
                   batch_size: int, total_replicas: int, worker_id: int,
                   num_examples: int, label: str) -> Iterator[np.ndarray]:
  """Yields float32 [batch, C] softmax rows in the input order (padding dropped)."""
  global_batch = max(batch_size, strategy.num_replicas_in_sync)
  global_batch -= global_batch % strategy.num_replicas_in_sync
  dataset = tf.data.TFRecordDataset(list(files)).shard(total_replicas, worker_id)

  def parse(serialized):
    image = preprocessing.decode_image(
        records.parse_unlabeled(serialized)['image_bytes'])
    return {'image': preprocessing.preprocess_for_eval(image, image_size,
                                                      small_image=small_image),
            'mask': tf.constant(1.0)}

  dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=True)
  padding = (-num_examples) % global_batch
  if padding:
    dataset = dataset.concatenate(tf.data.Dataset.from_tensors(
        {'image': tf.zeros([image_size, image_size, 3]),
         'mask': tf.constant(0.0)}).repeat(padding))
  dataset = dataset.batch(global_batch, drop_remainder=True).prefetch(
      tf.data.AUTOTUNE)
  one_device = _one_device(strategy)
  if not one_device:
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF)
    dataset = strategy.experimental_distribute_dataset(
        dataset.with_options(options))

  step = _predict_step(model, strategy)
  done = 0
  progress = progress_lib.Progress(label, num_examples)
  batches = iter(dataset)
  while True:
    try:
      batch = next(batches)
      out = step(batch)
    except StopIteration:
      break
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as err:
      explained = records.explain_data_error(err, files)
      if explained is not None:
        raise explained from None
      raise
    if one_device:
      probs = out.numpy()
    else:
      probs, mask = out
      probs = np.concatenate([p.numpy() for p in
                              strategy.experimental_local_results(probs)])
      mask = np.concatenate([m.numpy() for m in
                             strategy.experimental_local_results(mask)])
      probs = probs[mask > 0]
    done += len(probs)
    progress.update(len(probs))
    yield probs
  progress.finish()
  if done != num_examples:
    raise RuntimeError(f'{label}: predicted {done} images, expected {num_examples}')


def predict_shard(model: keras.Model, strategy: tf.distribute.Strategy, *,
                  data_dir: str, file_prefix: str, shard_id: int,
                  num_shards: int, output_dir: str, info_dir: str,
                  image_size: int, small_image: bool, batch_size: int,
                  total_replicas: int = 1, worker_id: int = 0,
                  input_file: Optional[str] = None,
                  teacher_identity: str = 'unknown') -> int:
  """Predicts one unlabeled shard; returns its image count (skips if done
  from the same teacher weights, input and image size).

  `input_file` replaces the shard's `<data_dir>/<file_prefix>-%05d-of-%05d`
  name (inputs named otherwise, e.g. the Beam pipeline's file pattern);
  `model` is anything called as `model(images, training=False)` -> logits;
  `teacher_identity` names its weights (`loading.weights_identity`).
  """
  input_file = input_file or layout.shard_path(
      data_dir, file_prefix, shard_id, num_shards)
  pred_file = layout.prediction_path(output_dir, shard_id, num_shards, worker_id)
  info_file = layout.info_path(info_dir, shard_id, num_shards, worker_id)
  if not tf.io.gfile.exists(input_file):
    raise errors.MissingFileError(
        f'{input_file}: unlabeled shard not found (check the unlabeled '
        'folder, the file prefix and the shard count)')
  made = made_from(teacher_identity, input_file, image_size)
  if shard_is_done(pred_file, info_file, made):
    logging.info('%s is done (%s); skipping', pred_file, info_file)
    return read_info(info_file)
  other = made_from_other(info_file, made)
  if other is not None:
    logging.warning('%s was made from other inputs (%s, now %s): predicting '
                    'it again', pred_file, other or 'origin not recorded',
                    made)
  count = worker_count(records.count_records(input_file), total_replicas,
                       worker_id)
  rows = _probabilities(
      model, strategy, [input_file], image_size=image_size,
      small_image=small_image, batch_size=batch_size,
      total_replicas=total_replicas, worker_id=worker_id, num_examples=count,
      label=os.path.basename(input_file))
  written = writers.write_records(
      pred_file, (records.serialize_prediction(p) for batch in rows for p in batch))
  writers.write_json(info_file, {'image_num': written, 'made_from': made})
  logging.info('%s: %d predictions', pred_file, written)
  return written


def reassign_shard(model: keras.Model, strategy: tf.distribute.Strategy, *,
                   data_dir: str, file_prefix: str, shard_id: int,
                   num_shards: int, worker_id: int, output_dir: str,
                   image_size: int, small_image: bool, batch_size: int,
                   num_samples: int = 0, seed: int = 0) -> int:
  """Re-labels one filtered pseudo-labeled shard with `model` (the new teacher)."""
  input_file = layout.shard_path(data_dir, file_prefix, shard_id, num_shards,
                                 task=worker_id)
  output_file = os.path.join(output_dir, os.path.basename(input_file))
  if not tf.io.gfile.exists(input_file):
    raise errors.MissingFileError(f'{input_file}: filtered shard not found')
  expected = records.count_records(input_file)
  if tf.io.gfile.exists(output_file):
    try:
      if records.count_records(output_file) == expected:
        logging.info('%s is done; skipping', output_file)
        return expected
    except records.RecordError:
      pass
  rows = _probabilities(
      model, strategy, [input_file], image_size=image_size,
      small_image=small_image, batch_size=batch_size, total_replicas=1,
      worker_id=0, num_examples=expected, label=os.path.basename(input_file))
  originals = (r.numpy() for r in tf.data.TFRecordDataset(input_file))
  rng = np.random.default_rng(seed + shard_id)
  sample_prob = min(1.0, num_samples / max(expected, 1))
  sample_dir = os.path.join(output_dir, 'samples')

  def relabeled():
    for batch in rows:
      for probs in batch:
        fields = records.read_example(next(originals))
        image_bytes = fields[records.IMAGE_KEY]
        if num_samples and rng.random() < sample_prob:
          label = int(np.argmax(probs))
          path = os.path.join(sample_dir, str(label),
                              f'image_{shard_id}_{label}_{probs[label]:.2f}_{rng.integers(1 << 30)}.png')
          image = tf.io.decode_image(image_bytes, channels=3,
                                     expand_animations=False)
          with writers.atomic_output(path) as f:
            f.write(tf.io.encode_png(image).numpy())
        yield records.serialize_pseudo_labeled(image_bytes, probs)

  written = writers.write_records(output_file, relabeled())
  logging.info('%s: %d re-labeled records', output_file, written)
  return written
