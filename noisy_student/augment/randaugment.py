"""RandAugment as the original release ran it: 15 uint8 image ops (+ Cutout).

Faithful to google-research/noisystudent `randaugment.py` (itself the
tensorflow/tpu autoaugment RandAugment), rewritten for TF2 as pure, graph-safe
functions with stateless, seeded randomness:

* ops: pure functions `op(image, *args) -> image` on uint8 [height, width, 3];
  `NAME_TO_FUNC` maps the original op names to them;
* `level_to_args(name, level, ...)`: the original level -> argument mappings
  on the `MAX_LEVEL = 10` scale. Levels above 10 extrapolate with the same
  formulas (M=27: rotate 81 degrees, enhance factor 4.96, posterize bits 10,
  solarize threshold 691, solarize-add 297, ...);
* `sample_layers` draws everything random (op indices, the +/- sign of the
  geometric ops, per-op seeds) from one seed; `apply_layers` applies the chosen
  ops with `tf.switch_case`; `distort_image_with_randaugment` = both.

Integer arguments meet uint8 tensors the way they did in the original graph:
a Python int passed to a uint8 op was converted to a uint8 constant modulo 256
(TF1 `make_tensor_proto` -> `np.array(value, dtype=np.uint8)`; TF 2.21 still
converts `uint8_tensor < 691` with 691 -> 179), and TF's bitwise shift kernels
clamp the shift to [0, 7]. Hence, exactly as in the original:
`posterize(image, 10)` shifts by uint8(8 - 10) = 254 -> clamped to 7 (keeps
only the top bit), `posterize(image, 0)` also keeps the top bit, and
`solarize(image, 691)` uses threshold 179 (`solarize(image, 256)` inverts every
pixel). See docs/augmentation.md for the table of M -> arguments.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Callable, NamedTuple, Sequence, Union

import tensorflow as tf

# The original's `_MAX_LEVEL`: magnitudes are on a 0-10 scale (and extrapolate).
MAX_LEVEL = 10.0
# Fill value of the geometric ops and of Cutout (`replace_value = [128] * 3`).
FILL_VALUE = 128
# Defaults of `distort_image_with_randaugment` (ImageNet-size images).
DEFAULT_CUTOUT_CONST = 40
DEFAULT_TRANSLATE_CONST = 100

# The op list of the original, in its order (the order fixes the op index).
BASE_OPS = ('AutoContrast', 'Equalize', 'Invert', 'Rotate', 'Posterize',
            'Solarize', 'Color', 'Contrast', 'Brightness', 'Sharpness',
            'ShearX', 'ShearY', 'TranslateX', 'TranslateY', 'SolarizeAdd')
CUTOUT_OP = 'Cutout'
# Ops whose argument gets a random sign (`_randomly_negate_tensor`).
SIGNED_OPS = frozenset({'Rotate', 'ShearX', 'ShearY', 'TranslateX',
                        'TranslateY'})
# Ops that take the fill value as their last argument.
_FILL_OPS = frozenset({'Rotate', 'ShearX', 'ShearY', 'TranslateX',
                       'TranslateY'})

Scalar = Union[int, float, tf.Tensor]


def available_ops(use_cutout_op: bool = True) -> tuple[str, ...]:
  """The 15 base ops, plus 'Cutout' when `use_cutout_op` (`--cutout_op`)."""
  return BASE_OPS + ((CUTOUT_OP,) if use_cutout_op else ())


# --------------------------------------------------------------------------
# Helpers.
# --------------------------------------------------------------------------
def _as_uint8_constant(value: Scalar) -> tf.Tensor:
  """An integer as the original graph saw it in a uint8 op: modulo 256."""
  return tf.cast(tf.cast(value, tf.int32), tf.uint8)


def as_seed(seed: tf.Tensor) -> tf.Tensor:
  """A stateless seed as int64 [2] (int32 and int64 values then agree)."""
  seed = tf.cast(seed, tf.int64)
  seed.shape.assert_is_compatible_with([2])
  return seed


def blend(image1: tf.Tensor, image2: tf.Tensor, factor: Scalar) -> tf.Tensor:
  """`image1 + factor * (image2 - image1)`, clipped to [0, 255], truncated.

  Args:
    image1, image2: uint8 [height, width, 3]. factor 0 gives image1, 1 gives
      image2; above 1 extrapolates. This is PIL's `Image.blend` arithmetic
      (float32, truncation towards zero).
    factor: float scalar.

  Returns:
    uint8 [height, width, 3].
  """
  image1 = tf.cast(image1, tf.float32)
  image2 = tf.cast(image2, tf.float32)
  blended = image1 + factor * (image2 - image1)
  return tf.cast(tf.clip_by_value(blended, 0.0, 255.0), tf.uint8)


def _projective_transform(image: tf.Tensor, transform: Sequence[Scalar],
                          replace: Scalar) -> tf.Tensor:
  """Nearest-neighbour projective transform; pixels from outside = replace.

  `transform` = [a0, a1, a2, b0, b1, b2, c0, c1] maps an output pixel (x, y)
  (column, row; pixel centres at integers) to the input pixel
  (round((a0 x + a1 y + a2) / k), round((b0 x + b1 y + b2) / k)),
  k = c0 x + c1 y + 1; inputs outside the image read `replace`. This equals the
  original's contrib `transform` on a wrapped image followed by `unwrap`
  with a constant replace value.
  """
  transform = tf.reshape(
      tf.stack([tf.cast(t, tf.float32) for t in transform]), [1, 8])
  out = tf.raw_ops.ImageProjectiveTransformV3(
      images=image[tf.newaxis], transforms=transform,
      output_shape=tf.shape(image)[:2],
      fill_value=tf.cast(replace, tf.float32),
      interpolation='NEAREST', fill_mode='CONSTANT')
  return tf.ensure_shape(out[0], image.shape)


# --------------------------------------------------------------------------
# Pixel ops (uint8 [height, width, 3] -> uint8 [height, width, 3]).
# --------------------------------------------------------------------------
def autocontrast(image: tf.Tensor) -> tf.Tensor:
  """PIL `ImageOps.autocontrast` (cutoff 0): stretch each channel to 0-255.

  Per channel, `uint8(clip(x * s - lo * s))` with `s = 255 / (hi - lo)` in
  float32; a constant channel is left unchanged.
  """
  pixels = tf.cast(image, tf.float32)
  lo = tf.reduce_min(pixels, axis=[0, 1])
  hi = tf.reduce_max(pixels, axis=[0, 1])
  has_range = hi > lo
  scale = 255.0 / tf.where(has_range, hi - lo, 1.0)
  offset = -lo * scale
  stretched = tf.cast(
      tf.clip_by_value(pixels * scale + offset, 0.0, 255.0), tf.uint8)
  return tf.where(has_range, stretched, image)


def equalize(image: tf.Tensor) -> tf.Tensor:
  """PIL `ImageOps.equalize`: per-channel histogram equalisation.

  With the channel histogram h over 0..255 and the last non-empty bin h[max],
  `step = (sum(h) - h[max]) // 255`; a pixel v maps to
  `(step // 2 + sum(h[:v])) // step` (clipped to 255). step 0 leaves the
  channel unchanged.
  """
  shape = tf.shape(image)
  pixels = tf.reshape(tf.cast(image, tf.int32), [-1, 3])
  channel_offsets = tf.range(3, dtype=tf.int32) * 256
  binned = pixels + channel_offsets                          # [n, 3]
  hist = tf.reshape(
      tf.math.bincount(binned, minlength=768, maxlength=768), [3, 256])
  max_value = tf.reduce_max(pixels, axis=0)                  # [3]
  last_count = tf.gather(hist, max_value, batch_dims=1)
  step = (tf.reduce_sum(hist, axis=1) - last_count) // 255   # [3]
  safe_step = tf.maximum(step, 1)[:, tf.newaxis]
  lut = (tf.cumsum(hist, axis=1, exclusive=True) + safe_step // 2) // safe_step
  lut = tf.clip_by_value(lut, 0, 255)
  equalized = tf.gather(tf.reshape(lut, [-1]), binned)
  out = tf.where(step > 0, equalized, pixels)
  return tf.reshape(tf.cast(out, tf.uint8), shape)


def invert(image: tf.Tensor) -> tf.Tensor:
  """PIL `ImageOps.invert`: 255 - pixel."""
  return 255 - image


def posterize(image: tf.Tensor, bits: Scalar) -> tf.Tensor:
  """Keep the top `bits` bits: `(x >> (8 - bits)) << (8 - bits)`.

  Equals PIL `ImageOps.posterize` for bits 1..8. As in the original, the shift
  is a uint8 (modulo 256) and TF's shift kernels clamp it to [0, 7]: bits 0
  (M <= 2) and bits >= 9 (M >= 22.5) both keep only the top bit (x >= 128 ->
  128, else 0), where PIL would give 0 and "no change".
  """
  shift = _as_uint8_constant(8 - tf.cast(bits, tf.int32))
  return tf.bitwise.left_shift(tf.bitwise.right_shift(image, shift), shift)


def solarize(image: tf.Tensor, threshold: Scalar = 128) -> tf.Tensor:
  """PIL `ImageOps.solarize`: invert pixels >= threshold.

  The threshold is a uint8 (modulo 256) as in the original graph: 691
  (M=27) acts as 179 and 256 (M=10) as 0, i.e. every pixel is inverted.
  """
  threshold = _as_uint8_constant(threshold)
  return tf.where(image < threshold, image, 255 - image)


def solarize_add(image: tf.Tensor, addition: Scalar = 0,
                 threshold: Scalar = 128) -> tf.Tensor:
  """Add `addition` (clipped to 0-255) to the pixels below `threshold`."""
  added = tf.cast(image, tf.int64) + tf.cast(addition, tf.int64)
  added = tf.cast(tf.clip_by_value(added, 0, 255), tf.uint8)
  return tf.where(image < _as_uint8_constant(threshold), added, image)


def color(image: tf.Tensor, factor: Scalar) -> tf.Tensor:
  """PIL `ImageEnhance.Color`: blend from the grayscale image.

  The grayscale is TF's `rgb_to_grayscale` (0.2989 R + 0.587 G + 0.114 B,
  truncated), PIL's rounds its ITU-R 601 luma: they differ by at most 1.
  """
  degenerate = tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(image))
  return blend(degenerate, image, factor)


def contrast(image: tf.Tensor, factor: Scalar) -> tf.Tensor:
  """The original's Contrast: blend from a constant gray of H*W/256.

  PIL's `ImageEnhance.Contrast` blends from the mean gray level. The
  original (the TPU autoaugment code) meant to compute that mean from a
  256-bin histogram but divided the histogram's *sum* by 256, so its gray
  level is `uint8(min(height * width / 256, 255))` whatever the pixels are
  (196 at 224x224, 4 at 32x32). We reproduce it; the two agree only when the
  image's mean gray happens to equal that value.
  """
  shape = tf.shape(image)
  num_pixels = tf.cast(shape[0] * shape[1], tf.float32)
  gray = tf.cast(tf.clip_by_value(num_pixels / 256.0, 0.0, 255.0), tf.uint8)
  degenerate = tf.fill(shape, gray)
  return blend(degenerate, image, factor)


def brightness(image: tf.Tensor, factor: Scalar) -> tf.Tensor:
  """PIL `ImageEnhance.Brightness`: blend from black."""
  return blend(tf.zeros_like(image), image, factor)


def sharpness(image: tf.Tensor, factor: Scalar) -> tf.Tensor:
  """PIL `ImageEnhance.Sharpness`: blend from PIL's SMOOTH-filtered image.

  SMOOTH is the 3x3 kernel [[1, 1, 1], [1, 5, 1], [1, 1, 1]] / 13 on the
  interior (float32, truncated, where PIL rounds); border pixels keep their
  values.
  """
  pixels = tf.cast(image, tf.float32)[tf.newaxis]
  kernel = tf.constant([[1., 1., 1.], [1., 5., 1.], [1., 1., 1.]],
                       shape=[3, 3, 1, 1]) / 13.0
  kernel = tf.tile(kernel, [1, 1, 3, 1])
  smoothed = tf.nn.depthwise_conv2d(pixels, kernel, strides=[1, 1, 1, 1],
                                    padding='VALID')
  smoothed = tf.cast(tf.clip_by_value(smoothed[0], 0.0, 255.0), tf.uint8)
  paddings = [[1, 1], [1, 1], [0, 0]]
  interior = tf.pad(tf.ones_like(smoothed, dtype=tf.bool), paddings)
  degenerate = tf.where(interior, tf.pad(smoothed, paddings), image)
  return blend(degenerate, image, factor)


# --------------------------------------------------------------------------
# Geometric ops (nearest neighbour, pixels from outside filled with replace).
# --------------------------------------------------------------------------
def rotate(image: tf.Tensor, degrees: Scalar, replace: Scalar) -> tf.Tensor:
  """Rotate about the image centre, counter-clockwise for degrees > 0.

  The same convention as PIL's `Image.rotate(degrees)` (nearest neighbour,
  no expand) and the original's contrib `rotate`: the output pixel (x, y)
  reads the input at the centre-relative point rotated by `degrees`.
  """
  radians = tf.cast(degrees, tf.float32) * (math.pi / 180.0)
  height = tf.cast(tf.shape(image)[0], tf.float32)
  width = tf.cast(tf.shape(image)[1], tf.float32)
  cos, sin = tf.cos(radians), tf.sin(radians)
  x_offset = ((width - 1) - (cos * (width - 1) - sin * (height - 1))) / 2.0
  y_offset = ((height - 1) - (sin * (width - 1) + cos * (height - 1))) / 2.0
  return _projective_transform(
      image, [cos, -sin, x_offset, sin, cos, y_offset, 0., 0.], replace)


def shear_x(image: tf.Tensor, level: Scalar, replace: Scalar) -> tf.Tensor:
  """output(x, y) = input(x + level * y, y) (PIL AFFINE (1, level, 0, 0, 1, 0)).

  Pixel centres are at integer coordinates here; PIL's AFFINE puts them at
  +0.5, which shifts its result by level / 2 pixels along x.
  """
  return _projective_transform(
      image, [1., level, 0., 0., 1., 0., 0., 0.], replace)


def shear_y(image: tf.Tensor, level: Scalar, replace: Scalar) -> tf.Tensor:
  """output(x, y) = input(x, level * x + y).

  PIL AFFINE (1, 0, 0, level, 1, 0), up to the same half-pixel shift (along
  y) as `shear_x`.
  """
  return _projective_transform(
      image, [1., 0., 0., level, 1., 0., 0., 0.], replace)


def translate_x(image: tf.Tensor, pixels: Scalar, replace: Scalar) -> tf.Tensor:
  """output(x, y) = input(x + pixels, y): content moves left for pixels > 0."""
  return _projective_transform(
      image, [1., 0., pixels, 0., 1., 0., 0., 0.], replace)


def translate_y(image: tf.Tensor, pixels: Scalar, replace: Scalar) -> tf.Tensor:
  """output(x, y) = input(x, y + pixels): content moves up for pixels > 0."""
  return _projective_transform(
      image, [1., 0., 0., 0., 1., pixels, 0., 0.], replace)


# --------------------------------------------------------------------------
# Cutout.
# --------------------------------------------------------------------------
def cutout_center(height: Scalar, width: Scalar,
                  seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """int32 scalars (row, column), uniform over the image, from `seed` [2]."""
  row_seed, col_seed = tf.unstack(
      tf.random.experimental.stateless_split(as_seed(seed), 2))
  row = tf.random.stateless_uniform([], row_seed, minval=0, maxval=height,
                                    dtype=tf.int32)
  col = tf.random.stateless_uniform([], col_seed, minval=0, maxval=width,
                                    dtype=tf.int32)
  return row, col


def apply_cutout(image: tf.Tensor, center_row: Scalar, center_col: Scalar,
                 pad_size: Scalar, replace: Scalar) -> tf.Tensor:
  """Fill rows [r - p, r + p) x columns [c - p, c + p) (clipped) with replace.

  Args:
    image: uint8 [height, width, 3].
    center_row, center_col: int32 scalars, the square's centre in pixels.
    pad_size: int, half the side p of the (at most 2p x 2p) square, pixels.
    replace: the fill value (0-255).
  """
  shape = tf.shape(image)
  pad_size = tf.cast(pad_size, tf.int32)
  rows = tf.range(shape[0])
  cols = tf.range(shape[1])
  in_rows = (rows >= center_row - pad_size) & (rows < center_row + pad_size)
  in_cols = (cols >= center_col - pad_size) & (cols < center_col + pad_size)
  mask = in_rows[:, tf.newaxis, tf.newaxis] & in_cols[tf.newaxis, :, tf.newaxis]
  return tf.where(mask, tf.cast(replace, image.dtype), image)


def cutout(image: tf.Tensor, pad_size: Scalar, replace: Scalar,
           seed: tf.Tensor) -> tf.Tensor:
  """Cutout (arXiv 1708.04552) at a centre drawn uniformly from `seed`.

  Args:
    image: uint8 [height, width, 3].
    pad_size: int, the square is up to 2 * pad_size pixels on a side.
    replace: fill value (the original uses 128).
    seed: int32/int64 [2] stateless seed.
  """
  shape = tf.shape(image)
  row, col = cutout_center(shape[0], shape[1], seed)
  return apply_cutout(image, row, col, pad_size, replace)


NAME_TO_FUNC: dict[str, Callable[..., tf.Tensor]] = {
    'AutoContrast': autocontrast,
    'Equalize': equalize,
    'Invert': invert,
    'Rotate': rotate,
    'Posterize': posterize,
    'Solarize': solarize,
    'SolarizeAdd': solarize_add,
    'Color': color,
    'Contrast': contrast,
    'Brightness': brightness,
    'Sharpness': sharpness,
    'ShearX': shear_x,
    'ShearY': shear_y,
    'TranslateX': translate_x,
    'TranslateY': translate_y,
    'Cutout': cutout,
}


# --------------------------------------------------------------------------
# Level (magnitude) -> arguments, as in the original.
# --------------------------------------------------------------------------
def _scaled(level: float, maximum: float) -> float:
  """level / MAX_LEVEL * maximum, in the original's order of operations."""
  return (level / MAX_LEVEL) * maximum


# name -> f(level, cutout_const, translate_const) -> positional op arguments
# (before the fill value / seed). Signed ops return the magnitude; the sign is
# drawn by `sample_layers`. Enhance ops: factor (level / 10) * 1.8 + 0.1.
# pylint: disable=g-long-lambda
LEVEL_TO_ARGS: dict[str, Callable[[float, int, int], tuple]] = {
    'AutoContrast': lambda level, cutout, translate: (),
    'Equalize': lambda level, cutout, translate: (),
    'Invert': lambda level, cutout, translate: (),
    'Rotate': lambda level, cutout, translate: (_scaled(level, 30.),),
    'Posterize': lambda level, cutout, translate: (int(_scaled(level, 4)),),
    'Solarize': lambda level, cutout, translate: (int(_scaled(level, 256)),),
    'SolarizeAdd': lambda level, cutout, translate: (
        int(_scaled(level, 110)),),
    'Color': lambda level, cutout, translate: (_scaled(level, 1.8) + 0.1,),
    'Contrast': lambda level, cutout, translate: (_scaled(level, 1.8) + 0.1,),
    'Brightness': lambda level, cutout, translate: (
        _scaled(level, 1.8) + 0.1,),
    'Sharpness': lambda level, cutout, translate: (_scaled(level, 1.8) + 0.1,),
    'ShearX': lambda level, cutout, translate: (_scaled(level, 0.3),),
    'ShearY': lambda level, cutout, translate: (_scaled(level, 0.3),),
    'TranslateX': lambda level, cutout, translate: (
        _scaled(level, float(translate)),),
    'TranslateY': lambda level, cutout, translate: (
        _scaled(level, float(translate)),),
    'Cutout': lambda level, cutout, translate: (int(_scaled(level, cutout)),),
}
# pylint: enable=g-long-lambda


def level_to_args(name: str, level: float, *,
                  cutout_const: int = DEFAULT_CUTOUT_CONST,
                  translate_const: int = DEFAULT_TRANSLATE_CONST) -> tuple:
  """The original's arguments of op `name` at magnitude `level` (unsigned).

  Raises:
    ValueError: unknown op name.
  """
  if name not in LEVEL_TO_ARGS:
    raise ValueError(f'name must be one of {sorted(LEVEL_TO_ARGS)}, '
                     f'received: {name!r}')
  return LEVEL_TO_ARGS[name](float(level), cutout_const, translate_const)


def apply_op(image: tf.Tensor, name: str, level: float, *, sign: Scalar = 1.0,
             seed: tf.Tensor | None = None,
             cutout_const: int = DEFAULT_CUTOUT_CONST,
             translate_const: int = DEFAULT_TRANSLATE_CONST,
             replace: int = FILL_VALUE) -> tf.Tensor:
  """Applies op `name` at magnitude `level` the way RandAugment does.

  Args:
    image: uint8 [height, width, 3].
    name: a key of NAME_TO_FUNC.
    level: the magnitude M (0-10 scale, may exceed 10).
    sign: +1 or -1 (float scalar), multiplies the argument of SIGNED_OPS.
    seed: int [2] stateless seed, needed by 'Cutout' only.
    cutout_const, translate_const: scale of the Cutout / Translate arguments
      at level 10, in pixels.
    replace: fill value of geometric ops and Cutout.

  Returns:
    uint8 [height, width, 3].
  """
  args = level_to_args(name, level, cutout_const=cutout_const,
                       translate_const=translate_const)
  if name in SIGNED_OPS:
    args = (tf.cast(sign, tf.float32) * args[0],)
  if name in _FILL_OPS:
    args += (replace,)
  if name == CUTOUT_OP:
    if seed is None:
      raise ValueError("op 'Cutout' needs a seed, received: seed=None")
    args += (replace, seed)
  return NAME_TO_FUNC[name](image, *args)


# --------------------------------------------------------------------------
# RandAugment: sample, then apply.
# --------------------------------------------------------------------------
class LayerChoices(NamedTuple):
  """The random choices of RandAugment for one image.

  Attributes:
    op_indices: int32 [num_layers], indices into the op list.
    signs: float32 [num_layers], +1 or -1 for the geometric ops.
    op_seeds: [num_layers, 2] stateless seeds (Cutout's centre).
  """
  op_indices: tf.Tensor
  signs: tf.Tensor
  op_seeds: tf.Tensor


def sample_layers(seed: tf.Tensor, num_layers: int,
                  num_ops: int) -> LayerChoices:
  """Draws `num_layers` ops uniformly (with replacement) and their signs.

  Args:
    seed: int32/int64 [2] stateless seed.
    num_layers: N, number of ops applied in sequence.
    num_ops: size of the op list (15, or 16 with Cutout).

  Returns:
    LayerChoices, a deterministic function of (seed, num_layers, num_ops).
  """
  seed = as_seed(seed)
  seeds = tf.reshape(
      tf.random.experimental.stateless_split(seed, 3 * num_layers),
      [num_layers, 3, 2])
  op_indices, signs = [], []
  for layer in range(num_layers):
    op_indices.append(tf.random.stateless_uniform(
        [], seeds[layer, 0], minval=0, maxval=num_ops, dtype=tf.int32))
    coin = tf.random.stateless_uniform([], seeds[layer, 1])
    signs.append(tf.where(coin < 0.5, -1.0, 1.0))
  if not num_layers:
    op_indices, signs = tf.zeros([0], tf.int32), tf.zeros([0], tf.float32)
  return LayerChoices(op_indices=tf.stack(op_indices), signs=tf.stack(signs),
                      op_seeds=seeds[:, 2])


def apply_layers(image: tf.Tensor, choices: LayerChoices, magnitude: float, *,
                 ops: Sequence[str] = BASE_OPS + (CUTOUT_OP,),
                 cutout_const: int = DEFAULT_CUTOUT_CONST,
                 translate_const: int = DEFAULT_TRANSLATE_CONST) -> tf.Tensor:
  """Applies the chosen ops in sequence (`tf.switch_case`, graph-safe).

  Args:
    image: uint8 [height, width, 3].
    choices: from `sample_layers`; its op indices index `ops`.
    magnitude: fixed M shared by all ops (a Python number).
    ops: the op list the indices refer to.
    cutout_const, translate_const: see `apply_op`.

  Returns:
    uint8 [height, width, 3], the same shape as `image`.
  """
  num_layers = choices.op_indices.shape[0]
  for layer in range(num_layers):
    branches = [
        functools.partial(
            apply_op, image, name, magnitude, sign=choices.signs[layer],
            seed=choices.op_seeds[layer], cutout_const=cutout_const,
            translate_const=translate_const)
        for name in ops]
    out = tf.switch_case(choices.op_indices[layer], branches)
    image = tf.ensure_shape(out, image.shape)
  return image


def _check_inputs(image: tf.Tensor, num_layers: int, magnitude: float) -> None:
  if image.dtype != tf.uint8:
    raise ValueError(f'image must be uint8 [height, width, 3], received '
                     f'dtype={image.dtype.name}')
  if image.shape.rank != 3 or image.shape[-1] not in (None, 3):
    raise ValueError(f'image must be uint8 [height, width, 3], received '
                     f'shape={image.shape}')
  if (not isinstance(num_layers, numbers.Integral) or
      isinstance(num_layers, bool) or num_layers < 0):
    raise ValueError(
        f'num_layers must be an int >= 0, received: {num_layers!r}')
  if (not isinstance(magnitude, numbers.Real) or
      isinstance(magnitude, bool) or magnitude < 0):
    raise ValueError(f'magnitude must be a number >= 0, received: '
                     f'{magnitude!r}')


def distort_image_with_randaugment(
    image: tf.Tensor, num_layers: int, magnitude: float, seed: tf.Tensor, *,
    cutout_const: int = DEFAULT_CUTOUT_CONST,
    translate_const: int = DEFAULT_TRANSLATE_CONST,
    use_cutout_op: bool = True) -> tf.Tensor:
  """RandAugment (arXiv 1909.13719) exactly as the original applied it.

  `num_layers` ops are drawn uniformly from `available_ops(use_cutout_op)`
  and each is applied (probability 1) at the fixed magnitude `magnitude`,
  with a random sign for rotate/shear/translate. Stateless: the output is a
  function of (image, seed, arguments), also inside `tf.data.Dataset.map`.

  Args:
    image: uint8 [height, width, 3].
    num_layers: N (`--randaug_layer`, default 2).
    magnitude: M (`--randaug_mag`, default 27), a Python number >= 0.
    seed: int32/int64 [2] stateless seed.
    cutout_const: Cutout half-size at M = 10, pixels (40; the 32x32 path
      uses image_size // 8).
    translate_const: translation at M = 10, pixels (100; 32x32 path:
      image_size // 8).
    use_cutout_op: include 'Cutout' in the op list (`--cutout_op`).

  Returns:
    uint8 [height, width, 3].

  Raises:
    ValueError: bad dtype/shape of image, num_layers or magnitude.
  """
  image = tf.convert_to_tensor(image)
  _check_inputs(image, num_layers, magnitude)
  ops = available_ops(use_cutout_op)
  choices = sample_layers(seed, num_layers, len(ops))
  return apply_layers(image, choices, magnitude, ops=ops,
                      cutout_const=cutout_const,
                      translate_const=translate_const)
