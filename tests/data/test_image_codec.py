"""Tests for data/image_codec.py on real photos (scikit-image's bundled ones)."""

import io

import numpy as np
from PIL import Image
import pytest
import skimage.data
import tensorflow as tf

from data import image_codec


@pytest.fixture(scope='module')
def photo():
  return skimage.data.chelsea()[:96, :128]  # uint8 [96, 128, 3], a real cat


def _pil_bytes(image: Image.Image, fmt: str, **kwargs) -> bytes:
  buffer = io.BytesIO()
  image.save(buffer, format=fmt, **kwargs)
  return buffer.getvalue()


def test_png_round_trip_is_exact_in_pillow_and_tensorflow(photo):
  data = image_codec.encode(photo, 'png')
  assert image_codec.detect_format(data) == 'png'
  np.testing.assert_array_equal(image_codec.decode(data), photo)
  np.testing.assert_array_equal(tf.io.decode_image(data).numpy(), photo)
  # The original's reader (decode_jpeg) also accepts PNG bytes.
  np.testing.assert_array_equal(tf.io.decode_jpeg(data, channels=3).numpy(),
                                photo)


def test_jpeg_round_trip_within_tolerance_and_quality_matters(photo):
  q100 = image_codec.encode(photo, 'jpeg', quality=100)
  q30 = image_codec.encode(photo, 'jpeg', quality=30)
  assert image_codec.detect_format(q100) == 'jpeg'
  err100 = np.abs(tf.io.decode_image(q100).numpy().astype(int) - photo).mean()
  err30 = np.abs(image_codec.decode(q30).astype(int) - photo).mean()
  assert err100 < 1.5
  assert err30 > 2 * err100
  assert len(q30) < len(q100)


def test_detect_format_of_common_files(photo):
  pil = Image.fromarray(photo)
  assert image_codec.detect_format(_pil_bytes(pil, 'GIF')) == 'gif'
  assert image_codec.detect_format(_pil_bytes(pil, 'BMP')) == 'bmp'
  assert image_codec.detect_format(_pil_bytes(pil, 'WEBP')) == 'webp'
  assert image_codec.detect_format(_pil_bytes(pil, 'TIFF')) == 'tiff'
  assert image_codec.detect_format(b'hello world') is None


def test_encode_rejects_bad_arrays_and_formats(photo):
  with pytest.raises(ValueError, match=r'float32 \[4, 4, 3\]'):
    image_codec.encode(np.zeros((4, 4, 3), np.float32))
  with pytest.raises(ValueError, match=r'\[4, 4\]'):
    image_codec.encode(np.zeros((4, 4), np.uint8))
  with pytest.raises(ValueError, match="'gif'"):
    image_codec.encode(photo, 'gif')
  with pytest.raises(ValueError, match='quality'):
    image_codec.encode(photo, 'jpeg', quality=0)


def test_decode_errors_name_the_source(photo):
  good = image_codec.encode(photo, 'jpeg')
  with pytest.raises(image_codec.ImageDecodeError, match='cat.jpg.*truncated'):
    image_codec.decode(good[:len(good) // 2], source='dir/cat.jpg')
  with pytest.raises(image_codec.ImageDecodeError,
                     match='noise.jpg.*unknown format'):
    image_codec.decode(np.random.default_rng(0).bytes(500),
                       source='noise.jpg')
  with pytest.raises(image_codec.ImageDecodeError, match='empty'):
    image_codec.decode(b'', source='x')


def test_storable_bytes_keeps_rgb_jpeg_and_png_unchanged(photo):
  for data in (image_codec.encode(photo, 'jpeg', 90),
               image_codec.encode(photo, 'png')):
    out, reencoded = image_codec.storable_bytes(data)
    assert out == data and not reencoded
  out, reencoded = image_codec.storable_bytes(
      image_codec.encode(photo, 'jpeg'), reencode=True, image_format='png')
  assert reencoded and image_codec.detect_format(out) == 'png'


def test_storable_bytes_converts_other_formats_to_rgb(photo):
  pil = Image.fromarray(photo)
  gray = pil.convert('L')
  cases = {
      'bmp': (_pil_bytes(pil, 'BMP'), photo),
      'gif': (_pil_bytes(pil, 'GIF'), None),
      'gray jpeg': (_pil_bytes(gray, 'JPEG', quality=95), None),
      'cmyk jpeg': (_pil_bytes(pil.convert('CMYK'), 'JPEG', quality=95), None),
      'rgba png': (_pil_bytes(pil.convert('RGBA'), 'PNG'), photo),
      'palette png': (_pil_bytes(pil.quantize(64), 'PNG'), None),
  }
  for name, (data, exact) in cases.items():
    out, reencoded = image_codec.storable_bytes(data, image_format='png')
    assert reencoded, name
    decoded = tf.io.decode_image(out).numpy()
    assert decoded.shape == photo.shape, name
    if exact is not None:
      np.testing.assert_array_equal(decoded, exact, err_msg=name)
    elif name == 'gray jpeg':
      assert (decoded[..., 0] == decoded[..., 2]).all()
    else:
      assert np.abs(decoded.astype(int) - photo).mean() < 25, name
