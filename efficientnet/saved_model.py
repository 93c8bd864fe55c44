"""A minimal SavedModel of a `build_model` classifier (Keras ExportArchive).

One signature, the same as `serving_default` of the project's training
export (noisy_student/models/export.py, docs/serving.md):
  `images` float32 [N, S, S, 3], pixels 0-255, already resized to S
  -> `probabilities` float32 [N, C], `classes` int64 [N], `logits` float32
  [N, C].
The training export's `serving_bytes` (encoded images, eval crop) lives in
`noisy_student` because it needs its preprocessing; this layer has none.
Loading the SavedModel needs no project code.
"""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from data import writers


def build_archive(model: keras.Model) -> keras.export.ExportArchive:
  """An ExportArchive of `model` with the `serving_default` endpoint."""
  size = int(model.input_shape[1])

  def serve(images):
    logits = tf.cast(model(images, training=False), tf.float32)
    return {'probabilities': tf.nn.softmax(logits, axis=-1),
            'classes': tf.argmax(logits, axis=-1),
            'logits': logits}

  archive = keras.export.ExportArchive()
  archive.track(model)
  archive.add_endpoint('serving_default', serve, input_signature=[
      tf.TensorSpec([None, size, size, 3], tf.float32, name='images')])
  return archive


def export_saved_model(model: keras.Model, export_dir: str,
                       protect: Sequence[str] = ()) -> str:
  """Writes the SavedModel to `export_dir` atomically (replaced whole when
  new, empty or an earlier export, and holding none of `protect`)."""
  archive = build_archive(model)
  with writers.replace_dir(export_dir, protect,
                           name='--saved_model_dir') as tmp:
    archive.write_out(tmp, verbose=False)
  return export_dir
