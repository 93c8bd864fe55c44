"""Encoding uint8 RGB arrays to PNG/JPEG bytes and decoding them back (PIL).

Used by every preparation binary so that all shards are written the same way.
PNG is lossless (the default); JPEG is what ImageNet shards and the original
SVHN shards hold (the original used quality 100).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

FORMATS = ('png', 'jpeg')
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
JPEG_SIGNATURE = b'\xff\xd8\xff'


def encode(image: np.ndarray, image_format: str = 'png', quality: int = 100) -> bytes:
  """Encodes uint8 [H, W, 3] (or [H, W]) pixels as PNG or JPEG bytes."""
  if image_format not in FORMATS:
    raise ValueError(f'image_format must be one of {FORMATS}, received: {image_format!r}')
  array = np.asarray(image)
  if array.dtype != np.uint8 or array.ndim not in (2, 3):
    raise ValueError(f'expected uint8 [H, W] or [H, W, 3] pixels, received '
                     f'{array.dtype} {array.shape}')
  buffer = io.BytesIO()
  pil = Image.fromarray(array)
  if image_format == 'png':
    pil.save(buffer, format='PNG', compress_level=6)
  else:
    pil.save(buffer, format='JPEG', quality=quality, subsampling=0)
  return buffer.getvalue()


def sniff_format(data: bytes) -> str | None:
  """'png', 'jpeg' or None from the first bytes."""
  if data.startswith(PNG_SIGNATURE):
    return 'png'
  if data.startswith(JPEG_SIGNATURE):
    return 'jpeg'
  return None


def decode(data: bytes) -> np.ndarray:
  """Decodes any PIL-readable image to uint8 RGB [H, W, 3] (first frame).

  Raises:
    ValueError when the bytes are not a decodable image.
  """
  try:
    with Image.open(io.BytesIO(data)) as pil:
      pil.load()
      return np.asarray(pil.convert('RGB'), dtype=np.uint8)
  except Exception as err:  # PIL raises many types for broken files.
    raise ValueError(f'not a decodable image ({type(err).__name__}: {err})') from err


def to_tfrecord_bytes(data: bytes, reencode: bool = False,
                      image_format: str = 'jpeg') -> tuple[bytes, np.ndarray]:
  """(bytes to store, decoded pixels) for an image file's contents.

  JPEG and PNG files are stored unchanged (unless `reencode`); anything else
  (GIF, BMP, TIFF, CMYK or grayscale JPEG, ...) is decoded and re-encoded as
  RGB `image_format`. Raises ValueError when the file cannot be decoded.
  """
  pixels = decode(data)
  kind = sniff_format(data)
  if not reencode and kind in FORMATS and _is_rgb(data):
    return data, pixels
  return encode(pixels, image_format), pixels


def _is_rgb(data: bytes) -> bool:
  with Image.open(io.BytesIO(data)) as pil:
    return pil.mode == 'RGB'
