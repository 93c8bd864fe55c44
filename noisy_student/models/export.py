"""SavedModel and .keras export of a trained model's EMA weights.

`export(model_dir, export_dir)` writes the SavedModel to `export_dir` and, by
default, the same model as a `.keras` file beside it, `<export_dir>.keras`
(docs/serving.md). The SavedModel has two signatures:
* `serving_default`: `images` float32 [N, S, S, 3], pixels 0-255, already
  cropped/resized to S (the model's image size) -> `probabilities` float32
  [N, C], `classes` int64 [N], `logits` float32 [N, C];
* `serving_bytes`: `image_bytes` string [N] of encoded JPEG/PNG/GIF/BMP files
  of any size, grayscale, RGB or RGBA (grayscale is replicated, alpha
  dropped) -> the same outputs, after `preprocessing.preprocess_for_serving`:
  the eval centre crop + bicubic resize, or for small-image (32x32) models
  the whole image resized bicubically to S, plus `valid` bool [N]. An
  element that cannot be classified (empty, not a JPEG/PNG/GIF/BMP, cut
  short, corrupt, or stating more than MAX_SERVING_PIXELS in its header)
  gets `valid` False, `classes` -1 and zero probabilities and logits, and
  the others are classified. An empty batch gives empty outputs.
Both are written from `portable_model(model)`: an EfficientNet is rebuilt
from built-in Keras layers (`efficientnet.to_portable`), so the `.keras` file
loads with `keras.saving.load_model` alone, like the SavedModel needs no
project code.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import keras
import tensorflow as tf

from data import layout
from data import writers
import efficientnet
from noisy_student.augment import preprocessing
from noisy_student.runtime import errors
from noisy_student.core import factory
from noisy_student.models import checkpoints
from noisy_student.models import loading

# (magic bytes at the start, end marker, how near the end it must be) of the
# formats serving_bytes reads; BMP has no end marker.
_JPEG = (b'\xff\xd8\xff', b'\xff\xd9', 16)  # trailing bytes after EOI occur
_PNG = (b'\x89PNG\r\n\x1a\n', b'IEND', 8)   # the IEND chunk, then its CRC
_GIF = (b'GIF8', b';', 1)


def _ends_with(encoded: tf.Tensor, marker: bytes, within: int) -> tf.Tensor:
  """True when `marker` starts in the last `within` bytes of `encoded`."""
  length = tf.strings.length(encoded)
  hits = []
  for back in range(len(marker), within + 1):
    start = tf.maximum(length - back, 0)
    hits.append(tf.equal(tf.strings.substr(encoded, start, len(marker)),
                         marker))
  return tf.reduce_any(tf.stack(hits)) & (length >= within)


def looks_whole(encoded: tf.Tensor) -> tf.Tensor:
  """bool []: `encoded` is a JPEG/PNG/GIF with its end marker, or a BMP.

  Catches what a client most often sends by mistake: empty or non-image
  bytes and images cut short. A file whose header and end marker are intact
  but whose data is corrupt in between still fails the decoder.
  """
  length = tf.strings.length(encoded)
  head = tf.strings.substr(encoded, 0, tf.minimum(length, 8))
  checks = []
  for magic, end, within in (_JPEG, _PNG, _GIF):
    starts = tf.equal(tf.strings.substr(head, 0, tf.minimum(
        tf.strings.length(head), len(magic))), magic)
    checks.append(starts & _ends_with(encoded, end, within))
  checks.append(tf.equal(tf.strings.substr(head, 0, tf.minimum(
      tf.strings.length(head), 2)), b'BM') & (length >= 26))
  return tf.reduce_any(tf.stack(checks))


# The most pixels (width x height, from the file's header) serving_bytes
# decodes: 40 megapixels is about 120 MB as RGB uint8. Larger images (or
# headers that claim them) get valid False instead of an allocation that can
# kill the server.
MAX_SERVING_PIXELS = 40_000_000


def _unsigned(encoded: tf.Tensor, start: int, length: int,
              little_endian: bool) -> tf.Tensor:
  """int64 []: the unsigned integer in bytes [start, start + length).

  Bytes past the end of `encoded` read as 0.
  """
  start = tf.minimum(start, tf.strings.length(encoded))
  raw = tf.cast(tf.io.decode_raw(tf.strings.substr(encoded, start, length),
                                 tf.uint8), tf.int64)
  raw = tf.pad(raw, [[0, length - tf.shape(raw)[0]]])
  order = range(length) if little_endian else range(length - 1, -1, -1)
  return tf.add_n([raw[i] * (256 ** k) for k, i in enumerate(order)])


def header_pixels(encoded: tf.Tensor) -> tf.Tensor:
  """int64 []: width x height the file's header states (JPEG/PNG/GIF/BMP).

  Read from the header without decoding (PNG IHDR, GIF logical screen, BMP
  info header, the JPEG frame header), so an absurd size is caught before
  the decoder allocates it. Raises InvalidArgumentError for a JPEG whose
  header cannot be parsed (serving_bytes turns that into valid False).
  """
  head = tf.strings.substr(encoded, 0, tf.minimum(
      4, tf.strings.length(encoded)))

  def jpeg():
    shape = tf.cast(tf.image.extract_jpeg_shape(encoded), tf.int64)
    return shape[0] * shape[1]

  def png():
    return _unsigned(encoded, 16, 4, False) * _unsigned(encoded, 20, 4, False)

  def gif():
    return _unsigned(encoded, 6, 2, True) * _unsigned(encoded, 8, 2, True)

  def bmp():
    height = _unsigned(encoded, 22, 4, True)
    height = tf.where(height >= 2 ** 31, 2 ** 32 - height,
                      height)  # top-down BMPs store -height
    return _unsigned(encoded, 18, 4, True) * height

  return tf.case([
      (tf.equal(tf.strings.substr(head, 0, tf.minimum(
          3, tf.strings.length(head))), _JPEG[0]), jpeg),
      (tf.equal(head, _PNG[0][:4]), png),
      (tf.equal(head, _GIF[0]), gif),
  ], default=bmp, exclusive=True)


def _decode_for_serving(encoded: tf.Tensor, size: int,
                        small_image: bool) -> tf.Tensor:
  """float32 [size, size, 3]; raises InvalidArgumentError for a bad image."""
  pixels = header_pixels(encoded)
  check = tf.debugging.assert_less_equal(
      pixels, tf.constant(MAX_SERVING_PIXELS, tf.int64),
      message='image larger than MAX_SERVING_PIXELS')
  with tf.control_dependencies([check]):
    image = preprocessing.decode_image(encoded)
  return preprocessing.preprocess_for_serving(image, size,
                                              small_image=small_image)


def _serving_functions(model: keras.Model, small_image: bool):
  """(serve, serve_bytes): the two endpoints as plain Python functions."""
  size = int(model.input_shape[1])
  num_classes = int(model.output_shape[-1])

  def serve(images):
    # An empty batch skips the model (some CPU kernels fail on batch 0).
    logits = tf.cond(
        tf.shape(images)[0] > 0,
        lambda: tf.cast(model(images, training=False), tf.float32),
        lambda: tf.zeros([0, num_classes], tf.float32))
    return {'probabilities': tf.nn.softmax(logits, axis=-1),
            'classes': tf.argmax(logits, axis=-1),
            'logits': logits}

  def serve_bytes(image_bytes):
    # Each element is decoded in a tf.data map whose errors are dropped
    # (ignore_errors), so a corrupt, truncated, oversized or unreadable image
    # costs only its own row: the survivors are scattered back by index.
    count = tf.shape(image_bytes)[0]
    elements = tf.data.Dataset.from_tensor_slices(
        (tf.range(count), image_bytes))
    decoded = elements.filter(lambda _, encoded: looks_whole(encoded)).map(
        lambda index, encoded: (index, _decode_for_serving(
            encoded, size, small_image))).ignore_errors()
    # One sentinel row keeps the batch non-empty when nothing decodes.
    sentinel = tf.data.Dataset.from_tensors(
        (tf.constant(-1, tf.int32), tf.zeros([size, size, 3], tf.float32)))
    indices, images = decoded.concatenate(sentinel).batch(
        tf.cast(count, tf.int64) + 1).get_single_element()
    keep = indices >= 0
    indices = tf.boolean_mask(indices, keep)[:, tf.newaxis]
    images = tf.boolean_mask(images, keep)
    valid = tf.scatter_nd(indices, tf.ones_like(indices[:, 0], tf.int32),
                          [count]) > 0
    outputs = serve(tf.scatter_nd(indices, images, [count, size, size, 3]))
    return {
        'probabilities': tf.where(valid[:, tf.newaxis],
                                  outputs['probabilities'], 0.0),
        'classes': tf.where(valid, outputs['classes'], -1),
        'logits': tf.where(valid[:, tf.newaxis], outputs['logits'], 0.0),
        'valid': valid,
    }

  return serve, serve_bytes


def build_archive(model: keras.Model, small_image: bool) -> keras.export.ExportArchive:
  """A Keras ExportArchive with `serving_default` and `serving_bytes`.

  Keras' ExportArchive tracks every variable explicitly, so the SavedModel also
  loads in TF1-style sessions (saved_model_cli run, TF Serving).
  """
  size = int(model.input_shape[1])
  serve, serve_bytes = _serving_functions(model, small_image)
  archive = keras.export.ExportArchive()
  archive.track(model)
  archive.add_endpoint('serving_default', serve, input_signature=[
      tf.TensorSpec([None, size, size, 3], tf.float32, name='images')])
  archive.add_endpoint('serving_bytes', serve_bytes, input_signature=[
      tf.TensorSpec([None], tf.string, name='image_bytes')])
  return archive


def export_saved_model(model: keras.Model, export_dir: str, *,
                       small_image: bool, protect: Sequence[str] = ()) -> str:
  """Writes the SavedModel atomically to `export_dir`; returns the path.

  `export_dir` is replaced whole only when it is new, empty or an export of
  this project, and contains none of `protect` (writers.replace_dir).
  """
  archive = build_archive(model, small_image)
  with writers.replace_dir(export_dir, protect) as tmp:
    archive.write_out(tmp, verbose=False)
  return export_dir


def check_keras_path(path: str) -> None:
  """Raises ConfigError unless `path` ends in .keras (what Keras 3 saves)."""
  if not layout.is_keras_file(path):
    raise errors.ConfigError(
        f'{errors.field_name("export_keras_path")} must end in .keras, received: {path}')


def portable_model(model: keras.Model) -> keras.Model:
  """`model` without this project's classes, for export.

  A model using `efficientnet`'s layers (and no other custom classes) is
  rebuilt from built-in Keras layers by `efficientnet.to_portable`: same
  names, weights and outputs, no stochastic depth. Others (`keras:`
  backbones, a user's own `.keras` classifier) are returned as they are.
  """
  used = efficientnet.custom_objects(model)
  if used and all(name.startswith('efficientnet.') for name in used):
    return efficientnet.to_portable(model)
  return model


def export_keras(model: keras.Model, path: str) -> str:
  """Saves `portable_model(model)` atomically (`path` must end in .keras)."""
  check_keras_path(path)
  model = portable_model(model)
  with writers.atomic_path(path, suffix=layout.KERAS_SUFFIX) as tmp:
    model.save(tmp)
  return path


def export(model_dir: str, export_dir: str, *,
           keras_path: Optional[str] = None,
           checkpoint_path: Optional[str] = None) -> dict:
  """Exports the EMA weights of the latest (or given) checkpoint of `model_dir`.

  The exported model runs at the inference size
  (`factory.inference_image_size`).

  Args:
    model_dir: a model_dir written by training (model_config.json + checkpoints).
    export_dir: the SavedModel folder (replaced whole when new, empty or an
      earlier export; never when it holds other files or the model_dir).
    keras_path: the `.keras` file; None: `layout.keras_file_beside(export_dir)`;
      '': none.
    checkpoint_path: a checkpoint other than the latest in `model_dir`.

  Returns:
    {'checkpoint': prefix, 'saved_model': export_dir, 'keras': path (when written)}.
  """
  if keras_path is None:
    keras_path = layout.keras_file_beside(export_dir)
  if keras_path:
    check_keras_path(keras_path)
  protect = [model_dir] + ([checkpoint_path] if checkpoint_path else [])
  writers.check_replaceable_dir(export_dir, protect)  # before any work
  config = checkpoints.read_model_config(model_dir)
  if config is None:
    raise errors.CheckpointError(
        f'{model_dir}: no {layout.MODEL_CONFIG_FILE}; is this a model_dir '
        'written by training (main --mode=train, ns.train)?')
  config = dataclasses.replace(config, sync_batch_norm=False,
                               image_size=factory.inference_image_size(config))
  model = loading.build(config, name='exported')
  prefix = loading.restore(model, checkpoint_path or model_dir, use_ema=True)
  model = portable_model(model)  # one network for both files
  outputs = {'checkpoint': prefix,
             'saved_model': export_saved_model(model, export_dir,
                                               small_image=config.small_image,
                                               protect=protect)}
  if keras_path:
    outputs['keras'] = export_keras(model, keras_path)
  return outputs
