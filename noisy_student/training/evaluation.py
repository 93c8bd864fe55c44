"""Distributed top-1 / top-5 evaluation over TFRecord splits.

Works unchanged under every strategy: the eval stream is padded with masked
blank images to a multiple of the global batch (see
`input_pipeline.make_eval_dataset`), every replica gets full batches, and the
counts are summed across replicas, so each real image is counted exactly once.
"""

from __future__ import annotations

import os
import time
import weakref
from typing import Sequence

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from noisy_student.runtime import progress as progress_lib
from data import records
from noisy_student.runtime import errors
from noisy_student.training import input_pipeline


def _eval_step_fn(model: keras.Model, per_image: bool = False):
  """The replica step: summed top-1 / top-5 / count, and with `per_image`
  also each image's label, predicted class, top-1 probability and mask."""
  def step(inputs):
    logits = tf.cast(model(inputs['image'], training=False), tf.float32)
    labels = inputs['label']
    mask = inputs['mask']
    predicted = tf.argmax(logits, -1, output_type=tf.int32)
    top1 = tf.cast(tf.equal(predicted, labels), tf.float32)
    k = min(5, logits.shape[-1])
    top5 = tf.cast(tf.math.in_top_k(labels, logits, k), tf.float32)
    sums = (tf.reduce_sum(top1 * mask), tf.reduce_sum(top5 * mask),
            tf.reduce_sum(mask))
    if not per_image:
      return sums
    probability = tf.reduce_max(tf.nn.softmax(logits, -1), -1)
    return sums + (labels, predicted, probability, mask)
  return step


# One traced eval function per (model, strategy): evaluating several splits
# (or every --steps_per_eval) must not retrace (TensorFlow warns when it does).
_RUNNERS: 'weakref.WeakKeyDictionary' = weakref.WeakKeyDictionary()


def _runner(model: keras.Model, strategy: tf.distribute.Strategy,
            per_image: bool = False):
  per_model = _RUNNERS.setdefault(model, {})
  key = (id(strategy), per_image)
  if key not in per_model:
    step = _eval_step_fn(model, per_image)

    @tf.function(reduce_retracing=True)
    def run(batch):
      values = strategy.run(step, args=(batch,))
      sums = [strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
              for v in values[:3]]
      # Per-image values in the global batch's order (replica slices).
      return sums + [strategy.gather(v, axis=0) for v in values[3:]]

    per_model[key] = run
  return per_model[key]


def evaluate_files(model: keras.Model, strategy: tf.distribute.Strategy,
                   files: Sequence[str], *, image_size: int, small_image: bool,
                   global_batch: int, per_image: bool = False) -> dict:
  """Top-1/top-5 accuracy of `model` (inference mode) on the records in `files`.

  `model` must have been built in `strategy.scope()`. Returns
  {'top_1_accuracy', 'top_5_accuracy', 'num_images', 'seconds'}; with
  `per_image` also 'per_image': {'label', 'predicted' (int32 [N]),
  'probability' (float32 [N], the predicted class's softmax)} in record order
  (files in the given order, one process; under MultiWorker the gathered
  images are grouped by worker, not in record order).
  """
  start = time.time()
  num_examples = input_pipeline.count_examples(files)
  if not num_examples:
    raise errors.InputError(f'{files[0]} (and the other {len(files) - 1} '
                            'shards of its split) hold no records to evaluate')
  global_batch = max(global_batch, strategy.num_replicas_in_sync)
  global_batch -= global_batch % strategy.num_replicas_in_sync
  dataset = input_pipeline.make_eval_dataset(
      files, image_size=image_size, small_image=small_image,
      global_batch=global_batch, num_examples=num_examples,
      num_classes=int(model.output_shape[-1]))
  dist = strategy.experimental_distribute_dataset(dataset)
  run = _runner(model, strategy, per_image)

  totals = np.zeros(3, np.float64)
  images = []
  progress = progress_lib.Progress(f'eval {os.path.basename(files[0])}...',
                                   num_examples)
  try:
    for batch in dist:
      outputs = run(batch)
      values = np.array([float(v) for v in outputs[:3]])
      totals += values
      if per_image:
        images.append([np.asarray(v) for v in outputs[3:]])
      progress.update(int(round(values[2])))
  except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as err:
    explained = records.explain_data_error(err, files)
    if explained is not None:
      raise explained from None
    raise
  correct1, correct5, count = totals
  if int(round(count)) != num_examples:
    raise RuntimeError(f'evaluated {count} images but the files hold '
                       f'{num_examples}: {files[0]}, ...')
  result = {
      'top_1_accuracy': correct1 / max(count, 1),
      'top_5_accuracy': correct5 / max(count, 1),
      'num_images': int(count),
      'seconds': round(time.time() - start, 2),
  }
  if per_image:
    labels, predicted, probability, mask = (
        np.concatenate(column) for column in zip(*images))
    real = mask > 0
    result['per_image'] = {'label': labels[real].astype(np.int32),
                           'predicted': predicted[real].astype(np.int32),
                           'probability': probability[real].astype(np.float32)}
  logging.info('eval on %d images (%s...): top-1 %.4f top-5 %.4f in %.1fs',
               result['num_images'], files[0], result['top_1_accuracy'],
               result['top_5_accuracy'], result['seconds'])
  return result
