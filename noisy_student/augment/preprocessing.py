"""Image preprocessing of the original release: decode, crop, resize, augment.

Pure, graph-safe TF functions with the semantics of google-research/noisystudent
`preprocessing.py`, called per element inside `tf.data.Dataset.map`:

* `decode_image`: encoded bytes -> uint8 [height, width, 3];
* `preprocess_for_train`: ImageNet-size images get an Inception-style random
  crop + bicubic resize + flip (+ RandAugment); 32x32 "small images" get
  RandAugment + Cutout, a reflect-pad-4 random crop and a flip;
* `preprocess_for_eval`: centre crop with 32 pixels of padding + bicubic
  resize; small images pass unchanged;
* `preprocess_for_serving` (the SavedModel's `serving_bytes`): the eval view
  of an image of any size; small-image models resize the whole image.

All randomness is stateless: a [2] seed per element gives the same output
every time. Resizing is TF1's `resize_bicubic` (`align_corners=False`,
`half_pixel_centers=False`), which the original checkpoints were trained and
evaluated with. Outputs are float32 on the 0-255 scale; like the original, the
bicubic overshoot is not clipped unless RandAugment runs (which clips first),
so values can lie slightly outside [0, 255].
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

from data import records
from noisy_student.augment import randaugment
from noisy_student.runtime import errors

# Eval centre crop: the crop is image_size / (image_size + CROP_PADDING) of
# the shorter side (224 / 256 = 0.875 for B0).
CROP_PADDING = 32
# Small-image training crop: reflect-pad this many pixels, crop back.
SMALL_IMAGE_PAD = 4
# Inception-style crop of the original (`_random_crop`).
MIN_OBJECT_COVERED = 0.1
ASPECT_RATIO_RANGE = (3. / 4., 4. / 3.)
AREA_RANGE = (0.08, 1.0)
MAX_ATTEMPTS = 10
# Values of `augment_name` (`--augment_name`): None (or '') = crop/flip only.
AUGMENT_NAMES = (None, 'v1')


def _check_image(image: tf.Tensor, argument: str = 'image') -> tf.Tensor:
  image = tf.convert_to_tensor(image)
  if (image.dtype != tf.uint8 or image.shape.rank != 3 or
      image.shape[-1] not in (None, 3)):
    raise ValueError(f'{argument} must be uint8 [height, width, 3], received '
                     f'dtype={image.dtype.name} shape={image.shape}')
  return image


def _as_seed(seed: tf.Tensor) -> tf.Tensor:
  """int64 [2]: int32 and int64 seeds with equal values act the same."""
  return randaugment.as_seed(seed)


def _check_augment_name(augment_name: Optional[str]) -> None:
  if augment_name not in AUGMENT_NAMES + ('',):
    raise ValueError(f"augment_name must be None or 'v1', received: "
                     f'{augment_name!r}')


def decode_image(image_bytes: tf.Tensor) -> tf.Tensor:
  """JPEG/PNG/GIF (first frame)/BMP bytes -> uint8 [height, width, 3].

  Grayscale becomes RGB, alpha is dropped, 16-bit PNG is scaled to 8 bits.
  """
  image = tf.io.decode_image(image_bytes, channels=3, dtype=tf.uint8,
                             expand_animations=False)
  image.set_shape([None, None, 3])
  return image


def resize_bicubic(image: tf.Tensor, size: int) -> tf.Tensor:
  """TF1 `tf.image.resize_bicubic` to size x size: float32 [size, size, 3].

  `align_corners=False, half_pixel_centers=False` (not `tf.image.resize`,
  which uses half-pixel centres and antialiasing options).
  """
  resized = tf.raw_ops.ResizeBicubic(
      images=image[tf.newaxis], size=[size, size], align_corners=False,
      half_pixel_centers=False)
  return resized[0]


def center_crop_window(
    height: tf.Tensor, width: tf.Tensor,
    image_size: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """(offset_height, offset_width, crop_size) of the eval centre crop.

  crop_size = int(image_size / (image_size + 32) * min(height, width)) in
  float32 as the original; offsets = (side - crop_size + 1) // 2.
  """
  height = tf.cast(height, tf.int32)
  width = tf.cast(width, tf.int32)
  ratio = tf.constant(image_size / (image_size + CROP_PADDING), tf.float32)
  crop_size = tf.cast(
      ratio * tf.cast(tf.minimum(height, width), tf.float32), tf.int32)
  offset_height = ((height - crop_size) + 1) // 2
  offset_width = ((width - crop_size) + 1) // 2
  return offset_height, offset_width, crop_size


def center_crop(image: tf.Tensor, image_size: int) -> tf.Tensor:
  """Centre crop (CROP_PADDING) + bicubic resize: float32 [size, size, 3]."""
  shape = tf.shape(image)
  offset_height, offset_width, crop_size = center_crop_window(
      shape[0], shape[1], image_size)
  cropped = tf.slice(image, [offset_height, offset_width, 0],
                     [crop_size, crop_size, -1])
  return resize_bicubic(cropped, image_size)


def distorted_crop_window(image_shape: tf.Tensor,
                          seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """Inception-style crop window: (begin, size), int32 [3] each.

  `stateless_sample_distorted_bounding_box` with the original's settings:
  covers >= 10% of the image, aspect ratio (w/h) in [3/4, 4/3], area in
  [8%, 100%], 10 attempts, else the whole image.
  """
  whole_image = tf.constant([[[0.0, 0.0, 1.0, 1.0]]], tf.float32)
  begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
      image_shape, bounding_boxes=whole_image, seed=seed,
      min_object_covered=MIN_OBJECT_COVERED,
      aspect_ratio_range=ASPECT_RATIO_RANGE, area_range=AREA_RANGE,
      max_attempts=MAX_ATTEMPTS, use_image_if_no_bounding_boxes=True)
  return begin, size


def random_crop_and_resize(image: tf.Tensor, image_size: int,
                           seed: tf.Tensor) -> tf.Tensor:
  """The original's `_random_crop`: float32 [image_size, image_size, 3].

  A distorted crop resized bicubically; when sampling gave up (the window is
  the whole image), the eval centre crop instead.
  """
  shape = tf.shape(image)
  begin, size = distorted_crop_window(shape, seed)
  # (`size` has -1 for the channels.)
  whole = tf.reduce_all(tf.equal(size[:2], shape[:2]))
  return tf.cond(
      whole,
      lambda: center_crop(image, image_size),
      lambda: resize_bicubic(tf.slice(image, begin, size), image_size))


def small_image_crop(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """Reflect-pad 4 pixels on each side, crop back to the input size."""
  pad = SMALL_IMAGE_PAD
  padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]], mode='REFLECT')
  return tf.image.stateless_random_crop(padded, tf.shape(image), seed)


def _check_small_image(image: tf.Tensor, image_size: int) -> tf.Tensor:
  """The original reshapes to [image_size, image_size, 3]: check, then do so."""
  shape = tf.shape(image)
  check = tf.debugging.Assert(
      tf.reduce_all(tf.equal(shape[:2], [image_size, image_size])),
      [tf.strings.format(
          records.GRAPH_ERROR_MARKER + 'an image is {}x{} pixels but the '
          'small-image (32x32) pipeline reads images at the model\'s size, '
          f'{image_size}x{image_size} ({errors.field_name("image_size")}, {errors.field_name("small_image")})',
          [shape[0], shape[1]])])
  with tf.control_dependencies([check]):
    return tf.reshape(image, [image_size, image_size, 3])


def preprocess_for_train(image: tf.Tensor, image_size: int, seed: tf.Tensor, *,
                         small_image: bool,
                         augment_name: Optional[str] = None,
                         randaug_magnitude: float = 27,
                         randaug_num_layers: int = 2,
                         use_cutout_op: bool = True,
                         flip: bool = True) -> tf.Tensor:
  """Training view of one image, float32 [image_size, image_size, 3], 0-255.

  ImageNet-size (small_image False): distorted crop + bicubic resize (or the
  centre crop when the sampler gives up), random left-right flip when `flip`,
  then RandAugment on the uint8-clipped image when augment_name == 'v1'.

  Small images (the original's `_cifar10_preprocess_for_train`; the image
  must already be image_size x image_size): when augment_name == 'v1',
  RandAugment with cutout_const = translate_const = image_size // 8 followed by
  Cutout(pad_size=image_size // 4, fill 128); then a reflect-pad-4 random
  crop, and a flip when `flip` (False for SVHN and digits).

  Args:
    image: uint8 [height, width, 3] (from `decode_image`).
    image_size: output side in pixels.
    seed: int32/int64 [2] stateless seed of this element.
    small_image: the 32x32 path (`--small_image_model`).
    augment_name: None (or '') or 'v1' = RandAugment (`--augment_name`).
    randaug_magnitude: M (`--randaug_mag`).
    randaug_num_layers: N (`--randaug_layer`).
    use_cutout_op: Cutout among the RandAugment ops (`--cutout_op`).
    flip: random horizontal flips.

  Returns:
    float32 [image_size, image_size, 3]; in [0, 255] after RandAugment,
    otherwise possibly slightly outside it (bicubic overshoot, as the
    original).

  Raises:
    ValueError: unknown augment_name, or image not uint8 [h, w, 3].
  """
  _check_augment_name(augment_name)
  image = _check_image(image)
  seed = _as_seed(seed)
  crop_seed, flip_seed, augment_seed, cutout_seed = tf.unstack(
      tf.random.experimental.stateless_split(seed, 4))

  def augment(uint8_image, cutout_const, translate_const):
    return randaugment.distort_image_with_randaugment(
        uint8_image, randaug_num_layers, randaug_magnitude, augment_seed,
        cutout_const=cutout_const, translate_const=translate_const,
        use_cutout_op=use_cutout_op)

  if small_image:
    image = _check_small_image(image, image_size)
    if augment_name:
      image = augment(image, image_size // 8, image_size // 8)
      image = randaugment.cutout(image, pad_size=image_size // 4,
                                 replace=randaugment.FILL_VALUE,
                                 seed=cutout_seed)
    image = small_image_crop(tf.cast(image, tf.float32), crop_seed)
    if flip:
      image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    return tf.ensure_shape(image, [image_size, image_size, 3])

  image = random_crop_and_resize(image, image_size, crop_seed)
  if flip:
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
  image = tf.reshape(image, [image_size, image_size, 3])
  if augment_name:
    image = tf.cast(tf.clip_by_value(image, 0.0, 255.0), tf.uint8)
    image = augment(image, randaugment.DEFAULT_CUTOUT_CONST,
                    randaugment.DEFAULT_TRANSLATE_CONST)
    image = tf.cast(image, tf.float32)
  return image


def preprocess_for_eval(image: tf.Tensor, image_size: int, *,
                        small_image: bool) -> tf.Tensor:
  """Eval view of one image, float32 [image_size, image_size, 3], 0-255.

  ImageNet-size: the centre crop (image_size / (image_size + 32) of the
  shorter side) resized bicubically, not clipped. Small images: unchanged
  (must be image_size x image_size), cast to float32.

  Args:
    image: uint8 [height, width, 3].
    image_size: output side in pixels.
    small_image: the 32x32 path.

  Raises:
    ValueError: image not uint8 [h, w, 3].
  """
  image = _check_image(image)
  if small_image:
    return tf.cast(_check_small_image(image, image_size), tf.float32)
  return tf.reshape(center_crop(image, image_size),
                    [image_size, image_size, 3])


def preprocess_for_serving(image: tf.Tensor, image_size: int, *,
                           small_image: bool) -> tf.Tensor:
  """Serving view of an image of any size, float32 [image_size, image_size, 3].

  ImageNet-size models: the eval preprocessing (centre crop + bicubic resize,
  any input size). Small-image models: the whole image resized with
  `resize_bicubic` to image_size x image_size (no crop; the aspect ratio is
  not kept, as a 32x32 digit or object fills its frame). An image that is
  already image_size x image_size comes out unchanged, exactly as in
  `preprocess_for_eval` (the bicubic weights at whole pixels are 0, 1, 0, 0).

  Args:
    image: uint8 [height, width, 3] (from `decode_image`: grayscale is
      replicated, alpha dropped).
    image_size: the model's input side in pixels.
    small_image: the 32x32 path.

  Raises:
    ValueError: image not uint8 [h, w, 3].
  """
  image = _check_image(image)
  if small_image:
    return tf.reshape(resize_bicubic(image, image_size),
                      [image_size, image_size, 3])
  return preprocess_for_eval(image, image_size, small_image=False)
