"""RandAugment ops against PIL / numpy references on real photos.

PIL (ImageOps, ImageEnhance, Image.rotate/transform) defines what most ops
mean; where PIL rounds and the original's TF ops truncate, the tolerance is
stated in the test. Contrast, SolarizeAdd and Cutout are checked against
numpy references of the original formulas.
"""

import math

import numpy as np
from PIL import Image
from PIL import ImageEnhance
from PIL import ImageFilter
from PIL import ImageOps
from PIL import ImageStat
import pytest
import skimage.data
import tensorflow as tf

from noisy_student.augment import randaugment as ra
from tests.conftest import shared_path

FILL = (128, 128, 128)
MAGNITUDES = (5, 10, 27)
# The original's arguments at M = 5, 10, 27 (cutout_const 40, translate 100).
EXPECTED_ARGS = {
    5: {'Rotate': 15.0, 'Posterize': 2, 'Solarize': 128, 'SolarizeAdd': 55,
        'Enhance': 1.0, 'Shear': 0.15, 'Translate': 50.0, 'Cutout': 20,
        'Translate4': 2.0, 'Cutout4': 2},
    10: {'Rotate': 30.0, 'Posterize': 4, 'Solarize': 256, 'SolarizeAdd': 110,
         'Enhance': 1.9, 'Shear': 0.3, 'Translate': 100.0, 'Cutout': 40,
         'Translate4': 4.0, 'Cutout4': 4},
    27: {'Rotate': 81.0, 'Posterize': 10, 'Solarize': 691, 'SolarizeAdd': 297,
         'Enhance': 4.96, 'Shear': 0.81, 'Translate': 270.0, 'Cutout': 108,
         'Translate4': 10.8, 'Cutout4': 10},
}


def _photo(name: str) -> np.ndarray:
  """A real photo, downscaled by 3 (about 100-140 x 150-210 pixels)."""
  return np.ascontiguousarray(getattr(skimage.data, name)()[::3, ::3])


PHOTOS = {name: _photo(name) for name in ('chelsea', 'coffee', 'rocket')}
PHOTO_NAMES = tuple(PHOTOS)
SHARED_JPEGS = ('panda.jpg', 'cat.jpg', 'car.jpg', 'fish.jpg')


def _shared_photo(filename: str) -> np.ndarray:
  with Image.open(shared_path('images', filename)) as im:
    im = im.convert('RGB')
    im.thumbnail((160, 160))
    return np.asarray(im)


def _apply(image: np.ndarray, name: str, magnitude: float, sign: float = 1.0,
           **kwargs) -> np.ndarray:
  out = ra.apply_op(tf.constant(image), name, magnitude, sign=sign, **kwargs)
  assert out.dtype == tf.uint8 and out.shape == image.shape
  return out.numpy()


def _diff(a, b) -> np.ndarray:
  return np.abs(np.asarray(a, np.int32) - np.asarray(b, np.int32))


# --------------------------------------------------------------------------
# Tables.
# --------------------------------------------------------------------------
def test_op_lists_and_tables_agree():
  assert ra.available_ops(True) == ra.BASE_OPS + ('Cutout',)
  assert ra.available_ops(False) == (
      'AutoContrast', 'Equalize', 'Invert', 'Rotate', 'Posterize', 'Solarize',
      'Color', 'Contrast', 'Brightness', 'Sharpness', 'ShearX', 'ShearY',
      'TranslateX', 'TranslateY', 'SolarizeAdd')
  assert set(ra.NAME_TO_FUNC) == set(ra.LEVEL_TO_ARGS)
  assert set(ra.NAME_TO_FUNC) == set(ra.available_ops())


@pytest.mark.parametrize('magnitude', MAGNITUDES)
def test_level_to_args_matches_original(magnitude):
  expected = EXPECTED_ARGS[magnitude]
  args = {name: ra.level_to_args(name, magnitude)
          for name in ra.available_ops()}
  for name in ('AutoContrast', 'Equalize', 'Invert'):
    assert args[name] == ()
  for name in ('Posterize', 'Solarize', 'SolarizeAdd', 'Cutout'):
    assert args[name] == (expected[name],)
    assert isinstance(args[name][0], int)
  assert args['Rotate'] == (pytest.approx(expected['Rotate']),)
  for name in ('Color', 'Contrast', 'Brightness', 'Sharpness'):
    assert args[name] == (pytest.approx(expected['Enhance']),)
  for name in ('ShearX', 'ShearY'):
    assert args[name] == (pytest.approx(expected['Shear']),)
  for name in ('TranslateX', 'TranslateY'):
    assert args[name] == (pytest.approx(expected['Translate']),)
  # The 32x32 path: cutout_const = translate_const = 32 // 8.
  assert ra.level_to_args('TranslateX', magnitude, translate_const=4) == (
      pytest.approx(expected['Translate4']),)
  assert ra.level_to_args('Cutout', magnitude, cutout_const=4) == (
      expected['Cutout4'],)


def test_level_to_args_rejects_unknown_op():
  with pytest.raises(ValueError, match="name must be one of.*'Identity'"):
    ra.level_to_args('Identity', 5)


# --------------------------------------------------------------------------
# Exact pixels on tiny images.
# --------------------------------------------------------------------------
TINY = np.arange(9, dtype=np.uint8).reshape(3, 3)[..., None].repeat(3, -1) * 10


@pytest.mark.parametrize('degrees,expected', [
    (90., [[20, 50, 80], [10, 40, 70], [0, 30, 60]]),
    (-90., [[60, 30, 0], [70, 40, 10], [80, 50, 20]]),
    (180., [[80, 70, 60], [50, 40, 30], [20, 10, 0]]),
    (0., [[0, 10, 20], [30, 40, 50], [60, 70, 80]]),
])
def test_rotate_tiny_image_exact(degrees, expected):
  out = ra.rotate(tf.constant(TINY), degrees, 128).numpy()
  np.testing.assert_array_equal(out[..., 0], expected)
  np.testing.assert_array_equal(out, np.asarray(
      Image.fromarray(TINY).rotate(degrees, fillcolor=FILL)))


def test_geometric_ops_tiny_image_exact():
  t = tf.constant(TINY)
  np.testing.assert_array_equal(
      ra.translate_x(t, 1., 128)[..., 0], [[10, 20, 128], [40, 50, 128],
                                           [70, 80, 128]])
  np.testing.assert_array_equal(
      ra.translate_y(t, -1., 128)[..., 0], [[128, 128, 128], [0, 10, 20],
                                            [30, 40, 50]])
  # output(x, y) = input(x + y, y) for level 1.
  np.testing.assert_array_equal(
      ra.shear_x(t, 1., 128)[..., 0], [[0, 10, 20], [40, 50, 128],
                                       [80, 128, 128]])
  # output(x, y) = input(x, x + y) for level 1.
  np.testing.assert_array_equal(
      ra.shear_y(t, 1., 128)[..., 0], [[0, 40, 80], [30, 70, 128],
                                       [60, 128, 128]])


def test_pixel_ops_on_constant_images_exact():
  const = tf.fill([4, 4, 3], tf.constant(200, tf.uint8))
  assert set(ra.solarize(const, 691).numpy().ravel()) == {55}   # 691 -> 179
  assert set(ra.solarize(const, 201).numpy().ravel()) == {200}
  assert set(ra.solarize(const, 256).numpy().ravel()) == {55}   # 256 -> 0
  assert set(ra.posterize(const, 10).numpy().ravel()) == {128}  # top bit
  assert set(ra.posterize(const, 3).numpy().ravel()) == {192}
  assert set(ra.solarize_add(const, 297).numpy().ravel()) == {200}
  assert set(ra.solarize_add(tf.fill([4, 4, 3], tf.constant(100, tf.uint8)),
                             297).numpy().ravel()) == {255}
  assert set(ra.invert(const).numpy().ravel()) == {55}
  for op in (ra.autocontrast, ra.equalize):
    np.testing.assert_array_equal(op(const), const)
  for op in (ra.color, ra.sharpness, ra.brightness):
    np.testing.assert_array_equal(op(const, 1.0), const)
  assert set(ra.brightness(const, 4.96).numpy().ravel()) == {255}
  # Contrast's gray level is 16 * 16 / 256 = 1: 1 + 0.5 * (200 - 1) = 100.5.
  const16 = tf.fill([16, 16, 3], tf.constant(200, tf.uint8))
  assert set(ra.contrast(const16, 0.5).numpy().ravel()) == {100}


# --------------------------------------------------------------------------
# Each op against PIL / numpy on real photos, at M = 5, 10, 27.
# --------------------------------------------------------------------------
@pytest.mark.parametrize('photo', PHOTO_NAMES)
def test_autocontrast_matches_pil(photo):
  image = PHOTOS[photo]
  ours = _apply(image, 'AutoContrast', 27)
  # PIL computes the lut in float64, the original in float32 (truncating both).
  diff = _diff(ours, ImageOps.autocontrast(Image.fromarray(image)))
  assert diff.max() <= 1 and np.mean(diff == 0) >= 0.99
  pixels = image.astype(np.float32)
  lo, hi = pixels.min((0, 1)), pixels.max((0, 1))
  scale = np.float32(255.0) / (hi - lo)
  reference = np.clip(pixels * scale - lo * scale, 0, 255).astype(np.uint8)
  np.testing.assert_array_equal(ours, reference)


@pytest.mark.parametrize('photo', PHOTO_NAMES)
def test_equalize_invert_match_pil_exactly(photo):
  image = PHOTOS[photo]
  pil = Image.fromarray(image)
  np.testing.assert_array_equal(_apply(image, 'Equalize', 27),
                                ImageOps.equalize(pil))
  np.testing.assert_array_equal(_apply(image, 'Invert', 27),
                                ImageOps.invert(pil))


@pytest.mark.parametrize('photo', PHOTO_NAMES)
@pytest.mark.parametrize('op, pil_op, args', [
    (ra.posterize, ImageOps.posterize, range(1, 9)),
    (ra.solarize, ImageOps.solarize, (0, 1, 64, 128, 200, 255)),
])
def test_posterize_and_solarize_match_pil(photo, op, pil_op, args):
  image = PHOTOS[photo]
  for arg in args:
    np.testing.assert_array_equal(op(tf.constant(image), arg),
                                  pil_op(Image.fromarray(image), arg))


@pytest.mark.parametrize('magnitude', MAGNITUDES)
def test_posterize_at_magnitudes(magnitude):
  image = PHOTOS['chelsea']
  ours = _apply(image, 'Posterize', magnitude)
  bits = EXPECTED_ARGS[magnitude]['Posterize']   # 2, 4, 10
  # bits 10: the uint8 shift 8 - 10 = 254 is clamped to 7 by TF's kernels, so
  # only the top bit survives (PIL's posterize(1)), as in the original.
  effective_bits = bits if bits <= 8 else 1
  np.testing.assert_array_equal(
      ours, ImageOps.posterize(Image.fromarray(image), effective_bits))
  if magnitude == 27:
    np.testing.assert_array_equal(ours, np.where(image >= 128, 128, 0))


@pytest.mark.parametrize('bits', [0, 9, 10, 11])
def test_posterize_out_of_range_bits_keep_top_bit(bits):
  image = PHOTOS['coffee']
  np.testing.assert_array_equal(ra.posterize(tf.constant(image), bits),
                                np.where(image >= 128, 128, 0))


@pytest.mark.parametrize('magnitude', MAGNITUDES)
def test_solarize_at_magnitudes_wraps_threshold_like_the_original(magnitude):
  image = PHOTOS['rocket']
  ours = _apply(image, 'Solarize', magnitude)
  # The original compares uint8 pixels with a uint8 constant: 256 -> 0
  # (M=10 inverts everything), 691 -> 179 (M=27).
  threshold = EXPECTED_ARGS[magnitude]['Solarize'] % 256
  np.testing.assert_array_equal(
      ours, ImageOps.solarize(Image.fromarray(image), threshold))


@pytest.mark.parametrize('magnitude', MAGNITUDES)
def test_solarize_add_matches_numpy(magnitude):
  image = PHOTOS['coffee']
  addition = EXPECTED_ARGS[magnitude]['SolarizeAdd']
  reference = np.where(image < 128,
                       np.clip(image.astype(np.int64) + addition, 0, 255),
                       image)
  np.testing.assert_array_equal(_apply(image, 'SolarizeAdd', magnitude),
                                reference)


@pytest.mark.parametrize('magnitude', MAGNITUDES)
@pytest.mark.parametrize('photo', PHOTO_NAMES)
def test_brightness_matches_pil_exactly(photo, magnitude):
  image = PHOTOS[photo]
  factor = EXPECTED_ARGS[magnitude]['Enhance']
  np.testing.assert_array_equal(
      _apply(image, 'Brightness', magnitude),
      ImageEnhance.Brightness(Image.fromarray(image)).enhance(factor))


def _enhance_case(photo: str, magnitude: float):
  """(image, PIL image, enhance factor of the original's level mapping)."""
  image = PHOTOS[photo]
  return image, Image.fromarray(image), (magnitude / 10) * 1.8 + 0.1


@pytest.mark.parametrize('magnitude', (0,) + MAGNITUDES)
@pytest.mark.parametrize('photo', PHOTO_NAMES)
def test_color_matches_pil(photo, magnitude):
  image, pil, factor = _enhance_case(photo, magnitude)
  ours = _apply(image, 'Color', magnitude)
  # The gray image: TF truncates 0.2989 R + 0.587 G + 0.114 B, PIL rounds.
  gray = ra.color(tf.constant(image), 0.0).numpy()
  assert _diff(gray, ImageEnhance.Color(pil).enhance(0.0)).max() <= 1
  # The blend is PIL's exactly.
  np.testing.assert_array_equal(
      ours, Image.blend(Image.fromarray(gray), pil, factor))
  # Overall: a 1-level gray difference moves the output by |1 - factor| + 1.
  tolerance = math.ceil(abs(1 - factor)) + 1
  assert _diff(ours, ImageEnhance.Color(pil).enhance(factor)).max() <= tolerance


@pytest.mark.parametrize('magnitude', (0,) + MAGNITUDES)
@pytest.mark.parametrize('photo', PHOTO_NAMES)
def test_sharpness_matches_pil(photo, magnitude):
  image, pil, factor = _enhance_case(photo, magnitude)
  ours = _apply(image, 'Sharpness', magnitude)
  smooth = ra.sharpness(tf.constant(image), 0.0).numpy()
  pil_smooth = np.asarray(pil.filter(ImageFilter.SMOOTH))
  # Interior: PIL rounds the /13 filter, the original truncates (<= 1 apart).
  assert _diff(smooth, pil_smooth).max() <= 1
  np.testing.assert_array_equal(smooth[[0, -1]], image[[0, -1]])
  np.testing.assert_array_equal(smooth[:, [0, -1]], image[:, [0, -1]])
  np.testing.assert_array_equal(
      ours, Image.blend(Image.fromarray(smooth), pil, factor))
  tolerance = math.ceil(abs(1 - factor)) + 1
  assert _diff(ours, ImageEnhance.Sharpness(pil).enhance(factor)).max() <= (
      tolerance)


def _original_contrast(image: np.ndarray, factor: float) -> np.ndarray:
  """numpy of the original: gray = uint8(min(H*W/256, 255)), then blend."""
  gray = np.float32(np.uint8(min(image.shape[0] * image.shape[1] / 256, 255)))
  blended = gray + np.float32(factor) * (image.astype(np.float32) - gray)
  return np.clip(blended, 0, 255).astype(np.uint8)


@pytest.mark.parametrize('magnitude', (0,) + MAGNITUDES)
@pytest.mark.parametrize('photo', PHOTO_NAMES)
def test_contrast_matches_original_formula(photo, magnitude):
  image = PHOTOS[photo]
  factor = (magnitude / 10) * 1.8 + 0.1
  np.testing.assert_array_equal(_apply(image, 'Contrast', magnitude),
                                _original_contrast(image, factor))


@pytest.mark.parametrize('magnitude', (0,) + MAGNITUDES)
def test_contrast_equals_pil_when_the_means_coincide(magnitude):
  # 110 x 256 pixels: the original's "mean" is 110 * 256 / 256 = 110, and this
  # crop's PIL mean gray is 109.9 -> 110.
  image = np.ascontiguousarray(skimage.data.chelsea()[:110, 32:288])
  pil = Image.fromarray(image)
  factor = (magnitude / 10) * 1.8 + 0.1
  np.testing.assert_array_equal(
      _apply(image, 'Contrast', magnitude),
      ImageEnhance.Contrast(pil).enhance(factor))


def test_contrast_differs_from_pil_on_a_generic_image():
  image = PHOTOS['chelsea']   # 100 x 151: the original's gray level is 58.
  assert image.shape[0] * image.shape[1] // 256 == 58
  assert ImageStat.Stat(Image.fromarray(image).convert('L')).mean[0] > 100
  diff = _diff(_apply(image, 'Contrast', 5),  # factor 1.0: identity for both
               image)
  assert diff.max() == 0
  diff = _diff(_apply(image, 'Contrast', 27),
               ImageEnhance.Contrast(Image.fromarray(image)).enhance(4.96))
  assert np.mean(diff > 10) > 0.3


@pytest.mark.parametrize('magnitude', MAGNITUDES)
@pytest.mark.parametrize('sign', (1.0, -1.0))
@pytest.mark.parametrize('photo', PHOTO_NAMES)
def test_rotate_matches_pil(photo, sign, magnitude):
  image = PHOTOS[photo]
  degrees = sign * EXPECTED_ARGS[magnitude]['Rotate']
  ours = _apply(image, 'Rotate', magnitude, sign=sign)
  pil = Image.fromarray(image).rotate(degrees, resample=Image.NEAREST,
                                      fillcolor=FILL)
  # Only pixels whose source lands on a rounding tie (float32 vs float64) may
  # differ.
  assert np.mean(np.all(ours == np.asarray(pil), axis=-1)) >= 0.999


def _not_tie(level: float, n: int) -> np.ndarray:
  """Rows/columns i whose shear offset level * i is not near a .5 tie."""
  frac = np.mod(level * np.arange(n), 1.0)
  return np.abs(frac - 0.5) > 1e-3


@pytest.mark.parametrize('magnitude', MAGNITUDES)
@pytest.mark.parametrize('sign', (1.0, -1.0))
@pytest.mark.parametrize('photo', PHOTO_NAMES)
def test_shear_matches_pil_affine(photo, sign, magnitude):
  image = PHOTOS[photo]
  height, width = image.shape[:2]
  level = sign * EXPECTED_ARGS[magnitude]['Shear']
  pil = Image.fromarray(image)
  # PIL's AFFINE samples at pixel centres (x + 0.5, y + 0.5); the original's
  # output(x, y) = input(x + level * y, y) on integer centres equals PIL's
  # (1, level, -level / 2, 0, 1, 0).
  ours_x = _apply(image, 'ShearX', magnitude, sign=sign)
  pil_x = np.asarray(pil.transform(pil.size, Image.AFFINE,
                                   (1, level, -level / 2, 0, 1, 0),
                                   resample=Image.NEAREST, fillcolor=FILL))
  rows = _not_tie(level, height)
  np.testing.assert_array_equal(ours_x[rows], pil_x[rows])
  ours_y = _apply(image, 'ShearY', magnitude, sign=sign)
  pil_y = np.asarray(pil.transform(pil.size, Image.AFFINE,
                                   (1, 0, 0, level, 1, -level / 2),
                                   resample=Image.NEAREST, fillcolor=FILL))
  cols = _not_tie(level, width)
  np.testing.assert_array_equal(ours_y[:, cols], pil_y[:, cols])


@pytest.mark.parametrize('magnitude', MAGNITUDES)
@pytest.mark.parametrize('sign', (1.0, -1.0))
@pytest.mark.parametrize('translate_const', (100, 4))
def test_translate_matches_pil_exactly(translate_const, sign, magnitude):
  image = PHOTOS['coffee']
  key = 'Translate' if translate_const == 100 else 'Translate4'
  pixels = sign * EXPECTED_ARGS[magnitude][key]
  pil = Image.fromarray(image)
  for name, data in (('TranslateX', (1, 0, pixels, 0, 1, 0)),
                     ('TranslateY', (1, 0, 0, 0, 1, pixels))):
    ours = _apply(image, name, magnitude, sign=sign,
                  translate_const=translate_const)
    np.testing.assert_array_equal(
        ours, pil.transform(pil.size, Image.AFFINE, data,
                            resample=Image.NEAREST, fillcolor=FILL))


def _cutout_reference(image, row, col, pad, replace=128):
  out = image.copy()
  top, bottom = max(0, row - pad), max(0, row + pad)
  left, right = max(0, col - pad), max(0, col + pad)
  out[top:bottom, left:right] = replace
  return out


@pytest.mark.parametrize('row,col', [(0, 0), (50, 70), (99, 150), (3, 148)])
@pytest.mark.parametrize('pad', (0, 2, 20, 108))
def test_apply_cutout_matches_numpy(row, col, pad):
  image = PHOTOS['chelsea']   # 100 x 151
  np.testing.assert_array_equal(
      ra.apply_cutout(tf.constant(image), row, col, pad, 128),
      _cutout_reference(image, row, col, pad))


@pytest.mark.parametrize('magnitude', MAGNITUDES)
def test_cutout_op_uses_seeded_centre(magnitude):
  image = PHOTOS['rocket']
  seed = tf.constant([11, magnitude], tf.int64)
  ours = _apply(image, 'Cutout', magnitude, seed=seed)
  row, col = ra.cutout_center(image.shape[0], image.shape[1], seed)
  assert 0 <= int(row) < image.shape[0] and 0 <= int(col) < image.shape[1]
  np.testing.assert_array_equal(ours, _cutout_reference(
      image, int(row), int(col), EXPECTED_ARGS[magnitude]['Cutout']))
  pad = EXPECTED_ARGS[magnitude]['Cutout']
  np.testing.assert_array_equal(ours,
                                ra.cutout(tf.constant(image), pad, 128, seed))


def test_cutout_needs_a_seed():
  with pytest.raises(ValueError, match='seed=None'):
    ra.apply_op(tf.constant(TINY), 'Cutout', 5)


@pytest.mark.parametrize('filename', SHARED_JPEGS)
def test_exact_ops_at_m27_on_shared_photos(filename):
  image = _shared_photo(filename)
  pil = Image.fromarray(image)
  np.testing.assert_array_equal(_apply(image, 'Equalize', 27),
                                ImageOps.equalize(pil))
  np.testing.assert_array_equal(_apply(image, 'Solarize', 27),
                                ImageOps.solarize(pil, 179))
  np.testing.assert_array_equal(_apply(image, 'Posterize', 27),
                                ImageOps.posterize(pil, 1))
  np.testing.assert_array_equal(
      _apply(image, 'Brightness', 27),
      ImageEnhance.Brightness(pil).enhance(4.96))
  np.testing.assert_array_equal(
      _apply(image, 'TranslateY', 27, sign=-1.0, translate_const=40),
      pil.transform(pil.size, Image.AFFINE, (1, 0, 0, 0, 1, -108.0),
                    resample=Image.NEAREST, fillcolor=FILL))
  rotated = _apply(image, 'Rotate', 27, sign=-1.0)
  pil_rotated = np.asarray(pil.rotate(-81.0, fillcolor=FILL))
  assert np.mean(np.all(rotated == pil_rotated, axis=-1)) >= 0.999
  assert _diff(_apply(image, 'AutoContrast', 27),
               ImageOps.autocontrast(pil)).max() <= 1


# --------------------------------------------------------------------------
# Sampling and the full policy.
# --------------------------------------------------------------------------
def test_every_op_index_and_both_signs_are_sampled():
  def choices(index):
    c = ra.sample_layers(tf.stack([tf.constant(3, tf.int64), index]), 2, 16)
    return c.op_indices, c.signs
  ds = tf.data.Dataset.range(400).map(choices).batch(400)
  op_indices, signs = (x.numpy() for x in next(iter(ds)))
  counts = np.bincount(op_indices.ravel(), minlength=16)
  assert len(counts) == 16 and counts.min() > 0
  # 800 draws, 50 expected per op: all within a loose +-60%.
  assert counts.min() >= 20 and counts.max() <= 80
  assert set(np.unique(signs)) == {-1.0, 1.0}
  assert 0.4 < np.mean(signs > 0) < 0.6


def test_without_cutout_op_indices_stay_below_15():
  ops = ra.available_ops(use_cutout_op=False)
  c = ra.sample_layers(tf.constant([5, 6]), 300, len(ops))
  assert set(c.op_indices.numpy()) == set(range(15))


def test_pinned_choices_apply_the_named_ops():
  image = tf.constant(PHOTOS['chelsea'])
  ops = ra.available_ops()
  seeds = tf.constant([[1, 2], [3, 4]], tf.int64)
  choices = ra.LayerChoices(
      op_indices=tf.constant([ops.index('Rotate'), ops.index('Invert')]),
      signs=tf.constant([-1.0, 1.0]), op_seeds=seeds)
  out = ra.apply_layers(image, choices, 27)
  np.testing.assert_array_equal(out, ra.invert(ra.rotate(image, -81.0, 128)))
  choices = ra.LayerChoices(
      op_indices=tf.constant([ops.index('Cutout'), ops.index('TranslateX')]),
      signs=tf.constant([1.0, -1.0]), op_seeds=seeds)
  out = ra.apply_layers(image, choices, 5, cutout_const=4, translate_const=4)
  expected = ra.translate_x(ra.cutout(image, 2, 128, seeds[0]), -2.0, 128)
  np.testing.assert_array_equal(out, expected)


def test_same_seed_same_output_and_different_seeds_differ():
  image = tf.constant(PHOTOS['coffee'])
  outs = [ra.distort_image_with_randaugment(image, 2, 27, tf.constant(s))
          for s in ([1, 2], [1, 2], [1, 3], [2, 2], [7, 9])]
  np.testing.assert_array_equal(outs[0], outs[1])
  distinct = {o.numpy().tobytes() for o in outs}
  assert len(distinct) >= 4


def test_zero_layers_is_identity():
  image = tf.constant(PHOTOS['rocket'])
  np.testing.assert_array_equal(
      ra.distort_image_with_randaugment(image, 0, 27, tf.constant([1, 2])),
      image)


def test_dataset_map_matches_eager_and_keeps_uint8_shape():
  images = [PHOTOS['chelsea'], PHOTOS['coffee'][:90, :120]]

  def gen():
    for image in images:
      yield image

  ds = tf.data.Dataset.from_generator(
      gen, output_signature=tf.TensorSpec([None, None, 3], tf.uint8))
  ds = ds.enumerate().map(
      lambda i, image: ra.distort_image_with_randaugment(
          image, 2, 27, tf.stack([tf.constant(42, tf.int64), i])),
      num_parallel_calls=2, deterministic=True)
  for i, (out, image) in enumerate(zip(ds, images)):
    assert out.dtype == tf.uint8 and out.shape == image.shape
    eager = ra.distort_image_with_randaugment(
        tf.constant(image), 2, 27, tf.constant([42, i], tf.int64))
    np.testing.assert_array_equal(out, eager)


def test_all_ops_run_in_graph_with_unknown_shape():
  @tf.function(input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
  def all_ops(image):
    return [ra.apply_op(image, name, 27, sign=-1.0, seed=tf.constant([1, 2]))
            for name in ra.available_ops()]

  image = PHOTOS['rocket'][:50, :70]
  for name, out in zip(ra.available_ops(), all_ops(tf.constant(image))):
    assert out.dtype == tf.uint8 and out.shape == image.shape, name
    np.testing.assert_array_equal(
        out, _apply(image, name, 27, sign=-1.0, seed=tf.constant([1, 2])))


@pytest.mark.parametrize('kwargs,match', [
    (dict(image=np.zeros([8, 8, 3], np.float32)),
     'image must be uint8.*float32'),
    (dict(image=np.zeros([8, 8], np.uint8)), 'image must be uint8.*shape'),
    (dict(num_layers=-1), 'num_layers must be an int >= 0, received: -1'),
    (dict(num_layers=2.0), 'num_layers must be an int'),
    (dict(magnitude='27'), "magnitude must be a number >= 0, received: '27'"),
    (dict(magnitude=-1), 'magnitude must be a number >= 0'),
])
def test_bad_arguments_are_named(kwargs, match):
  args = dict(image=TINY, num_layers=2, magnitude=27)
  args.update(kwargs)
  with pytest.raises(ValueError, match=match):
    ra.distort_image_with_randaugment(
        tf.constant(args['image']), args['num_layers'], args['magnitude'],
        tf.constant([1, 2]))
