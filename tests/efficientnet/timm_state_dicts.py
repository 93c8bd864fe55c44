"""Synthetic timm `tf_efficientnet_b0` state dicts and a hand-written writer.

Names and shapes are typed after timm (`efficientnet.py` `_gen_efficientnet`,
`_efficientnet_blocks.py` DepthwiseSeparableConv / InvertedResidual /
SqueezeExcite, a real `tf_efficientnet_b0` state dict: 360 tensors), not taken
from the loader's table. The `.safetensors` writer follows the format
description (huggingface/safetensors README) with numpy alone, independent of
`efficientnet.safetensors_file`.
"""

from __future__ import annotations

import json
import struct

import numpy as np

# B0 stages (anchors.md §1.2): repeats, kernel, stride, expand, in, out.
B0_ROWS = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40),
           (3, 3, 2, 6, 40, 80), (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192),
           (1, 3, 1, 6, 192, 320)]
BN_LEAVES = ('weight', 'bias', 'running_mean', 'running_var')
NUM_B0_TENSORS = 360      # as in timm's tf_efficientnet_b0 state dict
NUM_B0_COUNTERS = 49      # its BN num_batches_tracked tensors


def b0_timm_shapes(num_classes: int = 1000) -> dict[str, tuple[int, ...]]:
  """{name: shape} of timm's tf_efficientnet_b0 state dict (PyTorch layout)."""
  shapes = {}

  def bn(prefix, channels):
    for leaf in BN_LEAVES:
      shapes[f'{prefix}.{leaf}'] = (channels,)
    shapes[f'{prefix}.num_batches_tracked'] = ()

  def se(prefix, channels, reduced):
    shapes[f'{prefix}.se.conv_reduce.weight'] = (reduced, channels, 1, 1)
    shapes[f'{prefix}.se.conv_reduce.bias'] = (reduced,)
    shapes[f'{prefix}.se.conv_expand.weight'] = (channels, reduced, 1, 1)
    shapes[f'{prefix}.se.conv_expand.bias'] = (channels,)

  shapes['conv_stem.weight'] = (32, 3, 3, 3)
  bn('bn1', 32)
  for stage, (repeats, k, _, expand, c_in, c_out) in enumerate(B0_ROWS):
    for j in range(repeats):
      block_in = c_in if j == 0 else c_out
      mid, reduced = block_in * expand, max(1, int(block_in * 0.25))
      p = f'blocks.{stage}.{j}'
      if stage == 0:  # DepthwiseSeparableConv
        shapes[f'{p}.conv_dw.weight'] = (mid, 1, k, k)
        bn(f'{p}.bn1', mid)
        se(p, mid, reduced)
        shapes[f'{p}.conv_pw.weight'] = (c_out, mid, 1, 1)
        bn(f'{p}.bn2', c_out)
      else:  # InvertedResidual
        shapes[f'{p}.conv_pw.weight'] = (mid, block_in, 1, 1)
        bn(f'{p}.bn1', mid)
        shapes[f'{p}.conv_dw.weight'] = (mid, 1, k, k)
        bn(f'{p}.bn2', mid)
        se(p, mid, reduced)
        shapes[f'{p}.conv_pwl.weight'] = (c_out, mid, 1, 1)
        bn(f'{p}.bn3', c_out)
  shapes['conv_head.weight'] = (1280, 320, 1, 1)
  bn('bn2', 1280)
  shapes['classifier.weight'] = (num_classes, 1280)
  shapes['classifier.bias'] = (num_classes,)
  return shapes


def random_state_dict(shapes, seed: int = 0) -> dict[str, np.ndarray]:
  """Distinct random float32 values per tensor; int64 zero counters."""
  rng = np.random.default_rng(seed)
  state = {}
  for name, shape in shapes.items():
    if name.endswith('num_batches_tracked'):
      state[name] = np.zeros(shape, np.int64)
    elif name.endswith('running_var'):
      state[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    else:
      state[name] = rng.normal(0, 0.1, shape).astype(np.float32)
  return state


def encode(array: np.ndarray, dtype: str) -> bytes:
  """Little-endian bytes of `array` stored as safetensors `dtype`."""
  if dtype == 'BF16':  # the upper half of each float32 (truncation)
    bits = np.asarray(array, '<f4').view('<u4') >> 16
    return bits.astype('<u2').tobytes()
  numpy_dtype = {'F32': '<f4', 'F16': '<f2', 'F64': '<f8', 'I64': '<i8',
                 'I32': '<i4', 'U8': 'u1', 'BOOL': '?'}[dtype]
  return np.ascontiguousarray(array, numpy_dtype).tobytes()


def bf16_truncate(array: np.ndarray) -> np.ndarray:
  """What a BF16 file written by `encode` holds, as float32."""
  bits = np.asarray(array, '<f4').view('<u4') & np.uint32(0xFFFF0000)
  return bits.view('<f4')


def write_safetensors(path, state, float_dtype: str = 'F32',
                      header_extra: dict | None = None) -> str:
  """Writes {name: array}: floats as `float_dtype`, int64 as I64."""
  header, chunks, offset = {'__metadata__': {'format': 'pt'}}, [], 0
  for name, array in state.items():
    dtype = 'I64' if array.dtype == np.int64 else float_dtype
    data = encode(array, dtype)
    header[name] = {'dtype': dtype, 'shape': list(array.shape),
                    'data_offsets': [offset, offset + len(data)]}
    chunks.append(data)
    offset += len(data)
  header.update(header_extra or {})
  raw = json.dumps(header).encode('utf-8')
  raw += b' ' * (-len(raw) % 8)  # the reference pads the header to 8 bytes
  with open(path, 'wb') as f:
    f.write(struct.pack('<Q', len(raw)))
    f.write(raw)
    for chunk in chunks:
      f.write(chunk)
  return str(path)


def stage_shapes(stem: int, head: int, stage_sizes) -> dict[str, tuple]:
  """The size-telling tensors only: stem/head convs, one conv_dw per block."""
  shapes = {'conv_stem.weight': (stem, 3, 3, 3),
            'conv_head.weight': (head, 8, 1, 1),
            'classifier.weight': (1000, head)}
  for stage, size in enumerate(stage_sizes):
    for j in range(size):
      shapes[f'blocks.{stage}.{j}.conv_dw.weight'] = (8, 1, 3, 3)
  return shapes
