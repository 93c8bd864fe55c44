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


def _eval_step_fn(model: keras.Model):
  def step(inputs):
    logits = tf.cast(model(inputs['image'], training=False), tf.float32)
    labels = inputs['label']
    mask = inputs['mask']
    top1 = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32),
                            labels), tf.float32)
    k = min(5, logits.shape[-1])
    top5 = tf.cast(tf.math.in_top_k(labels, logits, k), tf.float32)
    return (tf.reduce_sum(top1 * mask), tf.reduce_sum(top5 * mask),
            tf.reduce_sum(mask))
  return step


# One traced eval function per (model, strategy): evaluating several splits
# (or every --steps_per_eval) must not retrace (TensorFlow warns when it does).
_RUNNERS: 'weakref.WeakKeyDictionary' = weakref.WeakKeyDictionary()


def _runner(model: keras.Model, strategy: tf.distribute.Strategy):
  per_model = _RUNNERS.setdefault(model, {})
  if id(strategy) not in per_model:
    step = _eval_step_fn(model)

    @tf.function(reduce_retracing=True)
    def run(batch):
      values = strategy.run(step, args=(batch,))
      return [strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
              for v in values]

    per_model[id(strategy)] = run
  return per_model[id(strategy)]


def evaluate_files(model: keras.Model, strategy: tf.distribute.Strategy,
                   files: Sequence[str], *, image_size: int, small_image: bool,
                   global_batch: int) -> dict:
  """Top-1/top-5 accuracy of `model` (inference mode) on the records in `files`.

  `model` must have been built in `strategy.scope()`. Returns
  {'top_1_accuracy', 'top_5_accuracy', 'num_images', 'seconds'}.
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
  run = _runner(model, strategy)

  totals = np.zeros(3, np.float64)
  progress = progress_lib.Progress(f'eval {os.path.basename(files[0])}...',
                                   num_examples)
  try:
    for batch in dist:
      values = np.array([float(v) for v in run(batch)])
      totals += values
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
  logging.info('eval on %d images (%s...): top-1 %.4f top-5 %.4f in %.1fs',
               result['num_images'], files[0], result['top_1_accuracy'],
               result['top_5_accuracy'], result['seconds'])
  return result
