"""Decode / train / eval preprocessing on real photos."""

import io

import numpy as np
from PIL import Image
import pytest
import skimage.data
import tensorflow as tf

from noisy_student.augment import preprocessing as pp
from tests.conftest import shared_path
from tests.helpers import tf1_bicubic_reference

CHELSEA = skimage.data.chelsea()          # 300 x 451
COFFEE = skimage.data.coffee()            # 400 x 600
SMALL = np.ascontiguousarray(CHELSEA[100:132, 200:232])   # a 32x32 photo crop


def _encode(array: np.ndarray, fmt: str, **kwargs) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format=fmt, **kwargs)
  return buffer.getvalue()


def _seed(a: int, b: int) -> tf.Tensor:
  return tf.constant([a, b], tf.int64)


# --------------------------------------------------------------------------
# decode_image
# --------------------------------------------------------------------------
def test_decode_png_bmp_exact_and_gray_to_rgb():
  image = np.ascontiguousarray(COFFEE[::4, ::4])
  for fmt in ('PNG', 'BMP'):
    np.testing.assert_array_equal(pp.decode_image(_encode(image, fmt)), image)
  gray = np.ascontiguousarray(image[..., 1])
  decoded = pp.decode_image(_encode(gray, 'PNG')).numpy()
  assert decoded.shape == gray.shape + (3,)
  for channel in range(3):
    np.testing.assert_array_equal(decoded[..., channel], gray)
  rgba = np.concatenate([image, np.full(image.shape[:2] + (1,), 7, np.uint8)],
                        axis=-1)
  np.testing.assert_array_equal(pp.decode_image(_encode(rgba, 'PNG')), image)


def test_decode_jpeg_and_gif_first_frame():
  image = np.ascontiguousarray(CHELSEA[::2, ::2])
  decoded = pp.decode_image(_encode(image, 'JPEG', quality=95)).numpy()
  assert decoded.shape == image.shape and decoded.dtype == np.uint8
  assert np.mean(np.abs(decoded.astype(int) - image)) < 3
  frames = [Image.fromarray(image).convert('P'),
            Image.fromarray(255 - image).convert('P')]
  buffer = io.BytesIO()
  frames[0].save(buffer, format='GIF', save_all=True,
                 append_images=frames[1:])
  decoded = pp.decode_image(buffer.getvalue()).numpy()
  np.testing.assert_array_equal(decoded, np.asarray(frames[0].convert('RGB')))


def test_decode_shared_panda():
  data = shared_path('images', 'panda.jpg').read_bytes()
  assert pp.decode_image(data).shape == (613, 696, 3)


# --------------------------------------------------------------------------
# Bicubic resize and the eval centre crop.
# --------------------------------------------------------------------------
@pytest.mark.parametrize('size', (64, 224))
def test_resize_bicubic_is_tf1_resize_bicubic(size):
  image = np.ascontiguousarray(CHELSEA[::2, ::2])
  ours = pp.resize_bicubic(tf.constant(image), size).numpy()
  assert ours.dtype == np.float32 and ours.shape == (size, size, 3)
  raw = tf.raw_ops.ResizeBicubic(images=image[None], size=[size, size],
                                 align_corners=False, half_pixel_centers=False)
  np.testing.assert_array_equal(ours, raw[0])
  np.testing.assert_allclose(ours, tf1_bicubic_reference(image, size),
                             atol=1e-3)
  # The TF2 default (half-pixel centres) is a different resize.
  half_pixel = tf.image.resize(image[None], [size, size], 'bicubic')[0]
  assert np.abs(ours - half_pixel).max() > 10


@pytest.mark.parametrize('shape,image_size,expected', [
    ((300, 451), 224, (19, 95, 262)),    # int(224 / 256 * 300) = 262
    ((613, 696), 224, (39, 80, 536)),    # panda.jpg
    ((600, 800), 600, (16, 116, 569)),   # B7: int(600 / 632 * 600) = 569
    ((32, 32), 32, (8, 8, 16)),          # 32 / 64 of the side
])
def test_center_crop_window(shape, image_size, expected):
  window = pp.center_crop_window(shape[0], shape[1], image_size)
  assert tuple(int(v) for v in window) == expected


def test_eval_crop_and_resize_on_a_photo():
  out = pp.preprocess_for_eval(tf.constant(CHELSEA), 224, small_image=False)
  assert out.dtype == tf.float32 and out.shape == (224, 224, 3)
  crop = CHELSEA[19:19 + 262, 95:95 + 262]
  np.testing.assert_array_equal(out, pp.resize_bicubic(tf.constant(crop), 224))
  np.testing.assert_allclose(out, tf1_bicubic_reference(crop, 224), atol=1e-3)


def test_eval_shared_panda():
  image = pp.decode_image(shared_path('images', 'panda.jpg').read_bytes())
  out = pp.preprocess_for_eval(image, 224, small_image=False).numpy()
  crop = image.numpy()[39:39 + 536, 80:80 + 536]
  np.testing.assert_allclose(out, tf1_bicubic_reference(crop, 224), atol=1e-3)


def test_eval_small_image_is_unchanged():
  out = pp.preprocess_for_eval(tf.constant(SMALL), 32, small_image=True)
  assert out.dtype == tf.float32
  np.testing.assert_array_equal(out, SMALL.astype(np.float32))
  with pytest.raises(tf.errors.InvalidArgumentError, match='32x32'):
    pp.preprocess_for_eval(tf.constant(CHELSEA[:40, :40]), 32,
                           small_image=True)


def test_serving_small_image_resizes_any_size_to_the_model_size():
  # A 32x32 image is unchanged, as in eval; any other size is resized whole.
  out = pp.preprocess_for_serving(tf.constant(SMALL), 32, small_image=True)
  np.testing.assert_array_equal(out, SMALL.astype(np.float32))
  for shape in ((48, 64), (20, 20), (33, 100)):
    image = np.ascontiguousarray(CHELSEA[:shape[0], :shape[1]])
    out = pp.preprocess_for_serving(tf.constant(image), 32, small_image=True)
    assert out.shape == (32, 32, 3) and out.dtype == tf.float32
    np.testing.assert_allclose(out, tf1_bicubic_reference(image, 32), atol=1e-3)


def test_serving_large_image_is_the_eval_view():
  out = pp.preprocess_for_serving(tf.constant(CHELSEA), 224, small_image=False)
  np.testing.assert_array_equal(
      out, pp.preprocess_for_eval(tf.constant(CHELSEA), 224, small_image=False))


# --------------------------------------------------------------------------
# Training crops.
# --------------------------------------------------------------------------
def test_distorted_crop_windows_follow_the_original_constraints():
  height, width = CHELSEA.shape[:2]
  sizes = set()
  for i in range(40):
    begin, size = pp.distorted_crop_window(tf.shape(CHELSEA), _seed(1, i))
    (top, left, channel), (h, w, _) = begin.numpy(), size.numpy()
    assert channel == 0
    assert 0 <= top and top + h <= height and 0 <= left and left + w <= width
    if (h, w) != (height, width):
      assert h * w >= 0.1 * height * width - (h + w)   # covers >= 10%
      assert 3 / 4 - 0.05 <= w / h <= 4 / 3 + 0.05
    sizes.add((h, w))
  assert len(sizes) > 30


def test_random_crop_resizes_the_sampled_window():
  image = tf.constant(CHELSEA)
  for i in range(3):
    begin, size = pp.distorted_crop_window(tf.shape(image), _seed(2, i))
    expected = pp.resize_bicubic(tf.slice(image, begin, size), 96)
    np.testing.assert_array_equal(
        pp.random_crop_and_resize(image, 96, _seed(2, i)), expected)


def test_random_crop_falls_back_to_center_crop():
  # A 10 x 640 strip admits no 3/4..4/3 window covering >= 10% of it.
  strip = tf.constant(np.ascontiguousarray(skimage.data.rocket()[200:210]))
  begin, size = pp.distorted_crop_window(tf.shape(strip), _seed(3, 0))
  assert tuple(size.numpy()[:2]) == (10, 640)
  np.testing.assert_array_equal(
      pp.random_crop_and_resize(strip, 64, _seed(3, 0)),
      pp.center_crop(strip, 64))


def _ramp(height: int, width: int) -> np.ndarray:
  """Brightness grows left to right: a flip makes it decrease."""
  row = np.linspace(0, 255, width).astype(np.uint8)
  return np.repeat(np.repeat(row[None, :, None], height, 0), 3, -1)


@pytest.mark.parametrize('small_image', (False, True))
def test_flip_off_never_flips(small_image):
  size = 32 if small_image else 48
  image = tf.constant(_ramp(32, 32) if small_image else _ramp(120, 160))
  orientation = {True: set(), False: set()}
  for flip in (False, True):
    for i in range(30):
      out = pp.preprocess_for_train(image, size, _seed(4, i),
                                    small_image=small_image, flip=flip).numpy()
      third = size // 3
      orientation[flip].add(out[:, :third].mean() < out[:, -third:].mean())
  assert orientation[False] == {True}
  assert orientation[True] == {True, False}


def test_small_image_crop_is_one_reflect_pad_shift():
  padded = np.pad(SMALL, [(4, 4), (4, 4), (0, 0)], mode='reflect')
  shifts = set()
  for i in range(40):
    out = pp.preprocess_for_train(tf.constant(SMALL), 32, _seed(5, i),
                                  small_image=True, flip=False).numpy()
    found = [(dy, dx) for dy in range(9) for dx in range(9)
             if np.array_equal(out, padded[dy:dy + 32, dx:dx + 32])]
    assert found, f'seed {i}: not a shift of the reflect-padded image'
    shifts.update(found)
  assert len(shifts) >= 10


def _has_gray_block(image: np.ndarray, side: int = 4) -> bool:
  gray = np.all(image == 128, axis=-1).astype(np.int32)
  windows = np.lib.stride_tricks.sliding_window_view(gray, (side, side))
  return bool((windows.sum(axis=(-1, -2)) == side * side).any())


def test_small_image_randaugment_is_followed_by_cutout():
  assert not _has_gray_block(SMALL)
  for i in range(10):
    plain = pp.preprocess_for_train(tf.constant(SMALL), 32, _seed(6, i),
                                    small_image=True, flip=False).numpy()
    assert not _has_gray_block(plain)
    # No RandAugment layers: what remains is the 16x16 Cutout (fill 128).
    cut = pp.preprocess_for_train(tf.constant(SMALL), 32, _seed(6, i),
                                  small_image=True, flip=False,
                                  augment_name='v1', randaug_num_layers=0)
    assert _has_gray_block(cut.numpy())


@pytest.mark.parametrize('small_image,image_size', [(False, 64), (True, 32)])
@pytest.mark.parametrize('augment_name', (None, 'v1'))
def test_train_output_shape_dtype_range(small_image, image_size, augment_name):
  image = tf.constant(SMALL if small_image else COFFEE)
  for magnitude in (5, 27):
    out = pp.preprocess_for_train(image, image_size, _seed(7, magnitude),
                                  small_image=small_image,
                                  augment_name=augment_name,
                                  randaug_magnitude=magnitude).numpy()
    assert out.dtype == np.float32 and out.shape == (image_size,
                                                     image_size, 3)
    if augment_name or small_image:
      assert out.min() >= 0 and out.max() <= 255
      np.testing.assert_array_equal(out, np.round(out))
    else:   # bicubic overshoot is kept, as in the original
      assert -40 < out.min() and out.max() < 295


@pytest.mark.parametrize('small_image', (False, True))
def test_train_is_reproducible_and_seed_dependent(small_image):
  image = tf.constant(SMALL if small_image else CHELSEA)
  size = 32 if small_image else 64

  def run(seed):
    return pp.preprocess_for_train(image, size, seed, small_image=small_image,
                                   augment_name='v1').numpy()

  first = run(_seed(8, 0))
  np.testing.assert_array_equal(first, run(_seed(8, 0)))
  np.testing.assert_array_equal(first, run(tf.constant([8, 0], tf.int32)))
  outputs = {run(_seed(8, i)).tobytes() for i in range(1, 5)}
  assert len(outputs | {first.tobytes()}) == 5


def test_empty_augment_name_means_none():
  image = tf.constant(COFFEE)
  np.testing.assert_array_equal(
      pp.preprocess_for_train(image, 64, _seed(9, 0), small_image=False,
                              augment_name=''),
      pp.preprocess_for_train(image, 64, _seed(9, 0), small_image=False))


@pytest.mark.parametrize('small_image,photo,size', [
    (False, COFFEE[::2, ::2], 64), (True, SMALL, 32)])
def test_dataset_map_decode_and_train_matches_eager(small_image, photo, size):
  encoded = [_encode(np.ascontiguousarray(photo), 'PNG'),
             _encode(np.ascontiguousarray(photo[::-1]), 'JPEG')]

  def element(index, data):
    seed = tf.stack([tf.constant(10, tf.int64), index])
    return pp.preprocess_for_train(
        pp.decode_image(data), size, seed, small_image=small_image,
        augment_name='v1', randaug_magnitude=27,
        flip=not small_image)

  ds = (tf.data.Dataset.from_tensor_slices(encoded).enumerate()
        .map(element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .batch(2))
  batch = next(iter(ds)).numpy()
  assert batch.shape == (2, size, size, 3) and batch.dtype == np.float32
  for i, data in enumerate(encoded):
    np.testing.assert_array_equal(
        batch[i], element(tf.constant(i, tf.int64), tf.constant(data)))


def test_bad_arguments_are_named():
  with pytest.raises(ValueError, match="augment_name must be None or 'v1', "
                     "received: 'v2'"):
    pp.preprocess_for_train(tf.constant(SMALL), 32, _seed(0, 0),
                            small_image=True, augment_name='v2')
  with pytest.raises(ValueError, match='image must be uint8.*float32'):
    pp.preprocess_for_eval(tf.constant(SMALL, tf.float32), 32,
                           small_image=True)
