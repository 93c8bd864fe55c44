"""Image bytes <-> uint8 RGB arrays, for every data preparation binary.

PNG (lossless) is the default for the arrays we write ourselves (SVHN, digits);
JPEG (with a quality) is what the original release wrote. Both decode with
`tf.io.decode_image` / `tf.io.decode_jpeg` (which also reads PNG). Encoding and
decoding use Pillow, so these functions run in worker processes without
starting the TensorFlow runtime.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from PIL import UnidentifiedImageError

from noisy_student.runtime import errors

FORMATS = ('png', 'jpeg')
# Formats whose bytes are stored unchanged when they hold an RGB image.
PASSTHROUGH_FORMATS = ('jpeg', 'png')
DEFAULT_JPEG_QUALITY = 100  # the original proc_svhn.py and ImageNet tools

_MAGIC = (
    (b'\xff\xd8\xff', 'jpeg'),
    (b'\x89PNG\r\n\x1a\n', 'png'),
    (b'GIF87a', 'gif'),
    (b'GIF89a', 'gif'),
    (b'BM', 'bmp'),
    (b'II*\x00', 'tiff'),
    (b'MM\x00*', 'tiff'),
)


class ImageDecodeError(errors.NoisyStudentError):
  """Bytes that are not a complete, decodable image; names the source."""


def detect_format(data: bytes) -> str | None:
  """'jpeg', 'png', 'gif', 'bmp', 'tiff' or 'webp' by magic bytes, else None."""
  for magic, name in _MAGIC:
    if data.startswith(magic):
      return name
  if data[:4] == b'RIFF' and data[8:12] == b'WEBP':
    return 'webp'
  return None


def check_format(image_format: str) -> str:
  """Returns `image_format` lower-cased; a ValueError names an unknown one."""
  name = image_format.lower()
  if name == 'jpg':
    name = 'jpeg'
  if name not in FORMATS:
    raise ValueError(f'image_format must be one of {FORMATS}, received: '
                     f'{image_format!r}')
  return name


def encode(image: np.ndarray, image_format: str = 'png',
           quality: int = DEFAULT_JPEG_QUALITY) -> bytes:
  """Encodes one image.

  Args:
    image: uint8 [height, width, 3] RGB in [0, 255].
    image_format: 'png' (lossless, compression level 6) or 'jpeg'.
    quality: JPEG quality in [1, 100] (4:2:0 chroma subsampling); unused for
      PNG.

  Returns:
    The encoded bytes.
  """
  image_format = check_format(image_format)
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError('image must be uint8 [height, width, 3], received: '
                     f'{image.dtype} {list(image.shape)}')
  buffer = io.BytesIO()
  pil_image = Image.fromarray(np.ascontiguousarray(image), mode='RGB')
  if image_format == 'png':
    pil_image.save(buffer, format='PNG', compress_level=6)
  else:
    if not 1 <= quality <= 100:
      raise ValueError(f'JPEG quality must be in [1, 100], received: {quality}')
    pil_image.save(buffer, format='JPEG', quality=int(quality))
  return buffer.getvalue()


def open_image(data: bytes, source: str | None = None) -> Image.Image:
  """Opens and fully decodes `data` with Pillow (a truncated file fails).

  Raises:
    ImageDecodeError: naming `source` (a path or record id) and the cause.
  """
  where = f'{source}: ' if source else ''
  if not data:
    raise ImageDecodeError(f'{where}empty image data')
  try:
    pil_image = Image.open(io.BytesIO(data))
    pil_image.load()
  except Exception as err:  # Pillow raises many types; all mean "unusable".
    kind = detect_format(data) or 'unknown format'
    if isinstance(err, UnidentifiedImageError):
      cause = 'not an image format Pillow can read'
    else:
      cause = f'{type(err).__name__}: {err}'
    raise ImageDecodeError(
        f'{where}cannot decode image ({kind}, {len(data)} bytes): {cause}'
    ) from err
  return pil_image


def to_rgb_array(pil_image: Image.Image) -> np.ndarray:
  """uint8 [height, width, 3] RGB; drops alpha, converts palette/CMYK/gray."""
  if pil_image.mode in ('I;16', 'I;16B', 'I;16L', 'I'):
    # 16/32-bit gray: keep the top 8 bits instead of clipping at 255.
    array = np.asarray(pil_image, dtype=np.uint32)
    bits = 16 if pil_image.mode.startswith('I;16') else 32
    gray = (array >> (bits - 8)).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=-1)
  return np.asarray(pil_image.convert('RGB'), dtype=np.uint8)


def decode(data: bytes, source: str | None = None) -> np.ndarray:
  """Decodes any Pillow-readable image to uint8 [height, width, 3] RGB.

  Raises:
    ImageDecodeError: naming `source` when the bytes cannot be decoded.
  """
  return to_rgb_array(open_image(data, source))


def storable_bytes(data: bytes, *, reencode: bool = False,
                   image_format: str = 'jpeg',
                   quality: int = DEFAULT_JPEG_QUALITY,
                   source: str | None = None) -> tuple[bytes, bool]:
  """The bytes to store for one image file, and whether they were re-encoded.

  JPEG and PNG files that decode completely to an RGB image are kept byte for
  byte (unless `reencode`); everything else (GIF, BMP, TIFF, WebP, grayscale,
  CMYK, palette or alpha images) is converted to RGB and encoded as
  `image_format`.

  Raises:
    ImageDecodeError: naming `source` when the bytes cannot be decoded.
  """
  stored, reencoded, _ = storable_image(data, reencode=reencode,
                                       image_format=image_format,
                                       quality=quality, source=source)
  return stored, reencoded


def storable_image(data: bytes, *, reencode: bool = False,
                   image_format: str = 'jpeg',
                   quality: int = DEFAULT_JPEG_QUALITY,
                   source: str | None = None
                   ) -> tuple[bytes, bool, np.ndarray]:
  """`storable_bytes` plus the decoded uint8 [height, width, 3] RGB image."""
  image_format = check_format(image_format)
  pil_image = open_image(data, source)
  rgb = to_rgb_array(pil_image)
  keep = (not reencode and pil_image.mode == 'RGB'
          and detect_format(data) in PASSTHROUGH_FORMATS)
  if keep:
    return data, False, rgb
  return encode(rgb, image_format, quality), True, rgb
