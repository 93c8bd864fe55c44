"""Reads `.safetensors` files with numpy alone (no torch, no safetensors package).

The format (huggingface/safetensors README): an 8-byte little-endian unsigned
header length N, N bytes of JSON

  {"<name>": {"dtype": "F32", "shape": [32, 3, 3, 3],
              "data_offsets": [begin, end]}, ...,
   "__metadata__": {"format": "pt"}}        (optional, str -> str)

(possibly padded with spaces), then the raw little-endian tensor bytes; the
offsets are relative to the first byte after the header. Tensors are
memory-mapped, so reading the header of a 2 GB file costs nothing and a tensor
is copied only when used. BF16 (which numpy lacks) is widened to float32.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import struct
from typing import Iterable, Mapping

import numpy as np

from noisy_student.runtime import errors

# safetensors dtype -> numpy dtype (little-endian). BF16 is read as uint16 and
# widened to float32 (`_bf16_to_float32`); the F8 types are not supported.
NUMPY_DTYPES: dict[str, str] = {
    'BOOL': '?', 'U8': 'u1', 'I8': 'i1', 'U16': '<u2', 'I16': '<i2',
    'F16': '<f2', 'BF16': '<u2', 'U32': '<u4', 'I32': '<i4', 'F32': '<f4',
    'U64': '<u8', 'I64': '<i8', 'F64': '<f8',
}
METADATA_KEY = '__metadata__'
# The reference implementation refuses headers over 100 MB.
MAX_HEADER_BYTES = 100 * 2**20


class SafetensorsError(errors.NoisyStudentError):
  """A `.safetensors` file is malformed; the message names the file."""


@dataclasses.dataclass(frozen=True)
class TensorInfo:
  """One header entry.

  Attributes:
    dtype: safetensors dtype string, e.g. 'F32', 'BF16', 'I64'.
    shape: the tensor's shape (PyTorch layout as saved).
    begin / end: absolute byte offsets of the data in the file.
  """
  dtype: str
  shape: tuple[int, ...]
  begin: int
  end: int


def read_header(path: str) -> tuple[dict[str, TensorInfo], dict[str, str]]:
  """({name: TensorInfo}, metadata) of the `.safetensors` file at `path`.

  Raises:
    MissingFileError: no file at `path`.
    SafetensorsError naming `path` (and the tensor) when the header is not
      valid: bad length or JSON, an unknown dtype, offsets outside the file
      or not matching the shape.
  """
  if not os.path.isfile(path):
    raise errors.MissingFileError(f'{path}: no such file')
  file_size = os.path.getsize(path)
  with open(path, 'rb') as f:
    prefix = f.read(8)
    if len(prefix) < 8:
      raise SafetensorsError(f'{path}: not a .safetensors file ({file_size} '
                             'bytes, shorter than the 8-byte header length)')
    (length,) = struct.unpack('<Q', prefix)
    if length > min(MAX_HEADER_BYTES, file_size - 8):
      raise SafetensorsError(
          f'{path}: not a .safetensors file (header length {length} does not '
          f'fit a {file_size}-byte file)')
    raw = f.read(length)
  try:
    header = json.loads(raw.decode('utf-8'))
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise SafetensorsError(f'{path}: the .safetensors header is not JSON '
                           f'({e})') from None
  if not isinstance(header, dict):
    raise SafetensorsError(f'{path}: the .safetensors header is not a JSON '
                           'object')
  metadata = header.pop(METADATA_KEY, None) or {}
  data_start = 8 + length
  infos = {}
  for name, entry in header.items():
    infos[name] = _tensor_info(path, name, entry, data_start, file_size)
  return infos, dict(metadata)


def _tensor_info(path: str, name: str, entry, data_start: int,
                 file_size: int) -> TensorInfo:
  try:
    dtype = entry['dtype']
    shape = tuple(int(d) for d in entry['shape'])
    begin, end = (int(o) for o in entry['data_offsets'])
  except (TypeError, KeyError, ValueError) as e:
    raise SafetensorsError(f'{path}: tensor {name!r} has a malformed header '
                           f'entry {entry!r} ({e!r})') from None
  if dtype not in NUMPY_DTYPES:
    raise SafetensorsError(f'{path}: tensor {name!r} has dtype {dtype!r}; '
                           f'supported: {", ".join(NUMPY_DTYPES)}')
  expected = math.prod(shape) * np.dtype(NUMPY_DTYPES[dtype]).itemsize
  if min(shape, default=0) < 0 or not 0 <= begin <= end or (
      end - begin != expected) or data_start + end > file_size:
    raise SafetensorsError(
        f'{path}: tensor {name!r} ({dtype} {list(shape)}, {expected} bytes) '
        f'has data_offsets [{begin}, {end}] that do not fit it or the file')
  return TensorInfo(dtype, shape, data_start + begin, data_start + end)


def _bf16_to_float32(bits: np.ndarray) -> np.ndarray:
  """bfloat16 bit patterns (uint16) -> the same values as float32."""
  return (bits.astype(np.uint32) << 16).view(np.float32)


def read_tensors(path: str, names: Iterable[str] | None = None
                 ) -> dict[str, np.ndarray]:
  """{name: array} of the file's tensors (all, or only `names`).

  Arrays are read-only views of a memory map (BF16: float32 copies), in the
  dtype and shape stored.

  Raises:
    MissingFileError / SafetensorsError as `read_header`; SafetensorsError
    for a name in `names` the file does not hold.
  """
  infos, _ = read_header(path)
  names = list(infos) if names is None else list(names)
  absent = [n for n in names if n not in infos]
  if absent:
    raise SafetensorsError(f'{path}: no tensor named {absent[0]!r} '
                           f'({len(absent)} requested names absent)')
  data = np.memmap(path, dtype=np.uint8, mode='r')
  arrays = {}
  for name in names:
    info = infos[name]
    array = data[info.begin:info.end].view(NUMPY_DTYPES[info.dtype]).reshape(
        info.shape)
    arrays[name] = _bf16_to_float32(array) if info.dtype == 'BF16' else array
  return arrays


def shapes_of(tensors: Mapping[str, object]) -> dict[str, tuple[int, ...]]:
  """{name: shape} of a header ({name: TensorInfo}) or of {name: array}."""
  return {name: tuple(int(d) for d in value.shape)
          for name, value in tensors.items()}
