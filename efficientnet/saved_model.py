"""The serving SavedModel of a classifier (Keras ExportArchive): both exports'.

The converter (`convert_checkpoint --saved_model_dir`) and the training
export (noisy_student/models/export.py) write the same two signatures
(docs/serving.md):
* `serving_default`: `images` float32 [N, S, S, 3], pixels 0-255, already at
  the model's size S (any S for a model of any input size) ->
  `probabilities` float32 [N, C], `classes` int64 [N], `logits` float32
  [N, C] and, when the class names are known, `class_names` string [N] (the
  name of each row's class);
* `serving_bytes`: `image_bytes` string [N] of encoded JPEG/PNG/GIF/BMP files
  of any size, grayscale, RGB or RGBA (grayscale is replicated, alpha
  dropped), each decoded and turned into the serving view of the serving
  size (the model's size; for a model of any size, the caller's, its native
  resolution) -> the same outputs plus `valid` bool [N]. An element that
  cannot be classified (empty, not a JPEG/PNG/GIF/BMP, cut short, corrupt,
  or stating more than MAX_SERVING_PIXELS in its header) gets `valid`
  False, `classes` -1, zero probabilities and logits and the class name '',
  and the others are classified. An empty batch gives empty outputs.
The class names, when known, are also the asset `assets/class_names.txt`
(line i names class i), read by the signatures through a lookup table.
The view is the caller's (`view`): the training export passes its
preprocessing module's; by default it is `serving_view` here, the
original's evaluation view. Loading the SavedModel needs no project code.
"""

from __future__ import annotations

import os
import tempfile
from typing import Callable, Optional, Sequence

import keras
import tensorflow as tf

from data import writers

# The asset file of the class names (line i: class i's name).
CLASS_NAMES_FILE = 'class_names.txt'

# The evaluation centre crop keeps image_size / (image_size + CROP_PADDING)
# of the shorter side (tensorflow/tpu EfficientNet's eval preprocessing; the
# same constant as noisy_student/augment/preprocessing.py, which the tests
# compare `serving_view` with).
CROP_PADDING = 32

# The most pixels (width x height, from the file's header) serving_bytes
# decodes: 40 megapixels is about 120 MB as RGB uint8. Larger images (or
# headers that claim them) get valid False instead of an allocation that can
# kill the server.
MAX_SERVING_PIXELS = 40_000_000

# (magic bytes at the start, end marker, how near the end it must be) of the
# formats serving_bytes reads; BMP has no end marker.
_JPEG = (b'\xff\xd8\xff', b'\xff\xd9', 16)  # trailing bytes after EOI occur
_PNG = (b'\x89PNG\r\n\x1a\n', b'IEND', 8)   # the IEND chunk, then its CRC
_GIF = (b'GIF8', b';', 1)

# (uint8 image [h, w, 3], size) -> float32 [size, size, 3]: what a model sees
# of one decoded image.
View = Callable[[tf.Tensor, int], tf.Tensor]


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


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
  """JPEG/PNG/GIF (first frame)/BMP bytes -> uint8 [height, width, 3]
  (grayscale becomes RGB, alpha is dropped, 16-bit PNG is scaled to 8 bits).
  """
  image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8,
                             expand_animations=False)
  image.set_shape([None, None, 3])
  return image


def _resize_bicubic(image: tf.Tensor, size: int) -> tf.Tensor:
  """TF1 `resize_bicubic` (no half-pixel centres): float32 [size, size, 3]."""
  return tf.raw_ops.ResizeBicubic(images=image[tf.newaxis], size=[size, size],
                                  align_corners=False,
                                  half_pixel_centers=False)[0]


def serving_view(image: tf.Tensor, size: int, *,
                 small_image: bool = False) -> tf.Tensor:
  """The original's evaluation view of an image of any size, float32
  [size, size, 3], 0-255, not clipped.

  ImageNet-size models: the centre crop of size / (size + CROP_PADDING) of
  the shorter side, resized with TF1's bicubic resize. Small-image models:
  the whole image resized to size x size (no crop, the aspect ratio is not
  kept). An image already size x size comes out unchanged in the latter.
  """
  if small_image:
    return tf.reshape(_resize_bicubic(image, size), [size, size, 3])
  shape = tf.shape(image)
  height, width = shape[0], shape[1]
  crop = tf.cast(tf.constant(size / (size + CROP_PADDING), tf.float32)
                 * tf.cast(tf.minimum(height, width), tf.float32), tf.int32)
  top = (height - crop + 1) // 2
  left = (width - crop + 1) // 2
  cropped = tf.slice(image, [top, left, 0], [crop, crop, -1])
  return tf.reshape(_resize_bicubic(cropped, size), [size, size, 3])


def _decode_for_serving(encoded: tf.Tensor, size: int,
                        view: View) -> tf.Tensor:
  """float32 [size, size, 3]; raises InvalidArgumentError for a bad image."""
  pixels = header_pixels(encoded)
  check = tf.debugging.assert_less_equal(
      pixels, tf.constant(MAX_SERVING_PIXELS, tf.int64),
      message='image larger than MAX_SERVING_PIXELS')
  with tf.control_dependencies([check]):
    image = decode_image(encoded)
  return view(image, size)


def model_size(model: keras.Model) -> Optional[int]:
  """The square input side of `model`, None for a model of any size.

  Raises:
    ValueError for an input that is not [N, S, S, 3] or [N, None, None, 3].
  """
  shape = tuple(model.input_shape)
  if len(shape) != 4 or shape[-1] != 3 or shape[1] != shape[2]:
    raise ValueError(f'{model.name}: a serving model takes [N, S, S, 3] or '
                     f'[N, None, None, 3] images, not {shape}')
  return None if shape[1] is None else int(shape[1])


def serving_functions(model: keras.Model, serving_size: int, view: View,
                      class_table=None):
  """(serve, serve_bytes): the two endpoints as plain Python functions.

  `class_table` maps int64 classes to their names ('' for -1), or None when
  the names are unknown (no `class_names` output).
  """
  num_classes = int(model.output_shape[-1])

  def name_outputs(outputs):
    if class_table is not None:
      outputs['class_names'] = class_table.lookup(outputs['classes'])
    return outputs

  def logits_of(images):
    # An empty batch skips the model (some CPU kernels fail on batch 0).
    return tf.cond(
        tf.shape(images)[0] > 0,
        lambda: tf.cast(model(images, training=False), tf.float32),
        lambda: tf.zeros([0, num_classes], tf.float32))

  def serve(images):
    logits = logits_of(images)
    return name_outputs({'probabilities': tf.nn.softmax(logits, axis=-1),
                         'classes': tf.argmax(logits, axis=-1),
                         'logits': logits})

  def serve_bytes(image_bytes):
    # Each element is decoded in a tf.data map whose errors are dropped
    # (ignore_errors), so a corrupt, truncated, oversized or unreadable image
    # costs only its own row: the survivors are scattered back by index.
    size = serving_size
    count = tf.shape(image_bytes)[0]
    elements = tf.data.Dataset.from_tensor_slices(
        (tf.range(count), image_bytes))
    decoded = elements.filter(lambda _, encoded: looks_whole(encoded)).map(
        lambda index, encoded: (index, _decode_for_serving(
            encoded, size, view))).ignore_errors()
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
    logits = tf.where(valid[:, tf.newaxis], logits_of(
        tf.scatter_nd(indices, images, [count, size, size, 3])), 0.0)
    return name_outputs({
        'probabilities': tf.where(valid[:, tf.newaxis],
                                  tf.nn.softmax(logits, axis=-1), 0.0),
        'classes': tf.where(valid, tf.argmax(logits, axis=-1), -1),
        'logits': logits,
        'valid': valid,
    })

  return serve, serve_bytes


def class_table(names_file: str):
  """A lookup table class -> name read from `names_file` (line i: class i),
  '' for any other key; its file becomes the SavedModel's asset."""
  initializer = tf.lookup.TextFileInitializer(
      names_file, key_dtype=tf.int64,
      key_index=tf.lookup.TextFileIndex.LINE_NUMBER, value_dtype=tf.string,
      value_index=tf.lookup.TextFileIndex.WHOLE_LINE)
  return tf.lookup.StaticHashTable(initializer, default_value='')


def build_archive(model: keras.Model, *, serving_size: Optional[int] = None,
                  view: Optional[View] = None, small_image: bool = False,
                  class_names_file: Optional[str] = None
                  ) -> keras.export.ExportArchive:
  """A Keras ExportArchive with `serving_default` and `serving_bytes`.

  Args:
    model: [N, S, S, 3] (or any size) float 0-255 images -> logits [N, C].
    serving_size: the side serving_bytes resizes to; None: the model's (a
      model of any size needs one).
    view: the serving view of one decoded image; None: `serving_view` with
      `small_image`.
    class_names_file: a file named `class_names.txt` with one name per class
      (the asset), or None when the names are unknown.

  Keras' ExportArchive tracks every variable explicitly, so the SavedModel
  also loads in TF1-style sessions (saved_model_cli run, TF Serving).

  Raises:
    ValueError for a model of any size without `serving_size`, or a names
    file whose line count is not the class count.
  """
  size = model_size(model)
  serving_size = serving_size or size
  if serving_size is None:
    raise ValueError(f'{model.name} takes images of any size: serving_bytes '
                     'needs a serving_size to resize to')
  if view is None:
    def view(image, side):
      return serving_view(image, side, small_image=small_image)
  archive = keras.export.ExportArchive()
  archive.track(model)
  table = None
  if class_names_file is not None:
    with open(class_names_file) as f:
      count = sum(1 for _ in f)
    if count != int(model.output_shape[-1]):
      raise ValueError(f'{class_names_file}: {count} class names for '
                       f'{model.output_shape[-1]} classes')
    table = class_table(class_names_file)
    archive.track(table)  # its initializer's file is saved as an asset
  serve, serve_bytes = serving_functions(model, serving_size, view, table)
  archive.add_endpoint('serving_default', serve, input_signature=[
      tf.TensorSpec([None, size, size, 3], tf.float32, name='images')])
  archive.add_endpoint('serving_bytes', serve_bytes, input_signature=[
      tf.TensorSpec([None], tf.string, name='image_bytes')])
  return archive


def export_saved_model(model: keras.Model, export_dir: str,
                       protect: Sequence[str] = (), *,
                       serving_size: Optional[int] = None,
                       view: Optional[View] = None, small_image: bool = False,
                       class_names: Optional[Sequence[str]] = None,
                       name: str = 'export_dir') -> str:
  """Writes the SavedModel of `build_archive` to `export_dir` atomically;
  returns the path.

  `export_dir` is replaced whole only when it is new, empty or an earlier
  export, and holds none of `protect` (`writers.replace_dir`, whose errors
  call it `name`). `class_names` (one per class, or None when unknown)
  become the asset `class_names.txt` and the `class_names` outputs.
  """
  with tempfile.TemporaryDirectory() as names_dir:
    names_file = None
    if class_names is not None:
      names_file = os.path.join(names_dir, CLASS_NAMES_FILE)
      with open(names_file, 'w') as f:
        f.writelines(f'{n}\n' for n in class_names)
    archive = build_archive(model, serving_size=serving_size, view=view,
                            small_image=small_image,
                            class_names_file=names_file)
    with writers.replace_dir(export_dir, protect, name=name) as tmp:
      archive.write_out(tmp, verbose=False)
  return export_dir


def read_class_names(export_dir: str) -> Optional[tuple[str, ...]]:
  """The class names an export carries (its asset), None when it has none."""
  path = os.path.join(export_dir, 'assets', CLASS_NAMES_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return tuple(line.rstrip('\n') for line in f)
