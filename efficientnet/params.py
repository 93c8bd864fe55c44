"""EfficientNet architecture as data: the size table, block strings, rounding.

Everything here is plain Python (no TensorFlow), so the architecture of every
size can be inspected and tested without building a model.

* `MODEL_SPECS`: efficientnet-b0 ... b7 (tensorflow/tpu `efficientnet_params`)
  and the Noisy Student paper's efficientnet-l0, l1, l2 (arXiv 1911.04252,
  table 7), with width/depth coefficients, train/eval resolution and dropout.
* The original block-string notation, e.g. `r2_k3_s22_e6_i16_o24_se0.25`:
  `r` repeats, `k` kernel size, `s` strides (two digits), `e` expansion ratio,
  `i`/`o` input/output filters, `se` squeeze-excite ratio, `noskip` disables
  the identity skip, `c` conv type (only 0, MBConv, exists).
  `decode_block_string` / `encode_block_string` convert both ways.
* `round_filters` / `round_repeats`: the compound-scaling rules.
* `scale_blocks`: B0 rows + coefficients -> one `BlockArgs` per block, in the
  order the blocks are built (`blocks_0`, `blocks_1`, ...).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Sequence

# ImageNet RGB statistics on 0-255 pixels (tensorflow/tpu efficientnet
# MEAN_RGB / STDDEV_RGB, applied inside the graph by eval_ckpt_main.py): the
# normalisation every published EfficientNet checkpoint expects.
IMAGENET_MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STDDEV_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)

# Channel counts are rounded to multiples of this (original `depth_divisor`).
DEPTH_DIVISOR = 8
# Stem and head widths of B0, scaled with `round_filters`.
STEM_FILTERS = 32
HEAD_FILTERS = 1280

# The B0 base network (same in tensorflow/tpu and google-research/noisystudent
# `efficientnet_builder.py`).
BASE_BLOCK_STRINGS: tuple[str, ...] = (
    'r1_k3_s11_e1_i32_o16_se0.25',
    'r2_k3_s22_e6_i16_o24_se0.25',
    'r2_k5_s22_e6_i24_o40_se0.25',
    'r3_k3_s22_e6_i40_o80_se0.25',
    'r3_k5_s11_e6_i80_o112_se0.25',
    'r4_k5_s22_e6_i112_o192_se0.25',
    'r1_k3_s11_e6_i192_o320_se0.25',
)
# noisystudent `--small_image_model` (32x32 SVHN/CIFAR): stages 1 and 2 keep
# the resolution; the stem keeps its stride 2.
SMALL_IMAGE_STRIDE1_STAGES = (1, 2)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """One EfficientNet size.

  Attributes:
    name: e.g. 'efficientnet-b0'.
    width_coefficient: channel multiplier (see `round_filters`).
    depth_coefficient: repeat multiplier (see `round_repeats`).
    train_resolution: training image size in pixels (square).
    eval_resolution: evaluation image size in pixels (square).
    dropout_rate: dropout before the classifier.
  """
  name: str
  width_coefficient: float
  depth_coefficient: float
  train_resolution: int
  eval_resolution: int
  dropout_rate: float


def _spec(name, width, depth, train_res, eval_res, dropout) -> ModelSpec:
  return ModelSpec(name, width, depth, train_res, eval_res, dropout)


# B0-B7: tensorflow/tpu efficientnet_builder.py `efficientnet_params` (train =
# eval resolution). L0/L1/L2: the Noisy Student paper; L2's (4.3, 5.3, 0.5) is
# also in efficientnet_params (there with resolution 800, the eval size).
MODEL_SPECS: dict[str, ModelSpec] = {s.name: s for s in (
    _spec('efficientnet-b0', 1.0, 1.0, 224, 224, 0.2),
    _spec('efficientnet-b1', 1.0, 1.1, 240, 240, 0.2),
    _spec('efficientnet-b2', 1.1, 1.2, 260, 260, 0.3),
    _spec('efficientnet-b3', 1.2, 1.4, 300, 300, 0.3),
    _spec('efficientnet-b4', 1.4, 1.8, 380, 380, 0.4),
    _spec('efficientnet-b5', 1.6, 2.2, 456, 456, 0.4),
    _spec('efficientnet-b6', 1.8, 2.6, 528, 528, 0.5),
    _spec('efficientnet-b7', 2.0, 3.1, 600, 600, 0.5),
    _spec('efficientnet-l0', 2.8, 3.7, 380, 500, 0.5),
    _spec('efficientnet-l1', 3.9, 3.7, 380, 500, 0.5),
    _spec('efficientnet-l2', 4.3, 5.3, 475, 800, 0.5),
)}


def list_models() -> list[str]:
  """The known model names, smallest first."""
  return list(MODEL_SPECS)


def get_spec(model_name: str) -> ModelSpec:
  """The `ModelSpec` of `model_name`; a ValueError lists the known names."""
  try:
    return MODEL_SPECS[model_name]
  except KeyError:
    raise ValueError(
        f'Unknown EfficientNet model_name={model_name!r}; known: '
        f'{", ".join(MODEL_SPECS)}') from None


def default_image_size(model_name: str, *, for_eval: bool = False) -> int:
  """Train (default) or eval resolution of `model_name`, in pixels."""
  spec = get_spec(model_name)
  return spec.eval_resolution if for_eval else spec.train_resolution


# --------------------------------------------------------------------------
# Block strings.
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class BlockArgs:
  """Arguments of one MBConv stage (or, after `scale_blocks`, one block).

  Attributes:
    kernel_size: depthwise kernel size (square).
    num_repeat: number of blocks in the stage.
    input_filters: channels entering the first block.
    output_filters: channels leaving every block.
    expand_ratio: expansion of the 1x1 conv (1: no expansion conv).
    id_skip: allow the identity skip (it is used only when strides are 1 and
      input_filters == output_filters).
    strides: (row, column) stride of the first block's depthwise conv.
    se_ratio: squeeze-excite ratio in (0, 1], or None for no SE.
    conv_type: 0 (MBConv), the only type the original defines.
  """
  kernel_size: int
  num_repeat: int
  input_filters: int
  output_filters: int
  expand_ratio: int
  id_skip: bool = True
  strides: tuple[int, int] = (1, 1)
  se_ratio: float | None = None
  conv_type: int = 0

  @property
  def has_se(self) -> bool:
    return self.se_ratio is not None and 0 < self.se_ratio <= 1

  @property
  def has_skip(self) -> bool:
    """Whether the block adds its input to its output (and can be dropped)."""
    return (self.id_skip and self.strides == (1, 1) and
            self.input_filters == self.output_filters)


_REQUIRED_KEYS = ('r', 'k', 's', 'e', 'i', 'o')
_TOKEN = re.compile(r'^([a-z]+)(\d.*)$')


def decode_block_string(block_string: str) -> BlockArgs:
  """Parses `r2_k3_s22_e6_i16_o24_se0.25` style notation into BlockArgs.

  Raises:
    ValueError naming `block_string` on an unknown/duplicate token, a missing
    key (r, k, s, e, i, o), a malformed value or a non-MBConv conv type.
  """
  if not isinstance(block_string, str) or not block_string:
    raise ValueError(f'Block string must be a non-empty str, received: '
                     f'{block_string!r}')
  options = {}
  id_skip = True
  for token in block_string.split('_'):
    if token == 'noskip':
      id_skip = False
      continue
    match = _TOKEN.match(token)
    if not match or match.group(1) not in _REQUIRED_KEYS + ('se', 'c'):
      raise ValueError(f'Block string {block_string!r}: unknown token '
                       f'{token!r}')
    key, value = match.groups()
    if key in options:
      raise ValueError(f'Block string {block_string!r}: key {key!r} appears '
                       'twice')
    options[key] = value
  missing = [k for k in _REQUIRED_KEYS if k not in options]
  if missing:
    raise ValueError(f'Block string {block_string!r}: missing {missing} '
                     f'(required: {list(_REQUIRED_KEYS)})')
  if not re.fullmatch(r'\d\d', options['s']):
    raise ValueError(f'Block string {block_string!r}: strides must be two '
                     f'digits like s22, received: s{options["s"]}')
  try:
    args = BlockArgs(
        kernel_size=int(options['k']),
        num_repeat=int(options['r']),
        input_filters=int(options['i']),
        output_filters=int(options['o']),
        expand_ratio=int(options['e']),
        id_skip=id_skip,
        strides=(int(options['s'][0]), int(options['s'][1])),
        se_ratio=float(options['se']) if 'se' in options else None,
        conv_type=int(options.get('c', 0)))
  except ValueError as e:
    raise ValueError(f'Block string {block_string!r}: malformed value '
                     f'({e})') from None
  if args.conv_type != 0:
    raise ValueError(f'Block string {block_string!r}: conv type '
                     f'c{args.conv_type} is not supported (only c0, MBConv)')
  if min(args.kernel_size, args.num_repeat, args.input_filters,
         args.output_filters, args.expand_ratio, *args.strides) < 1:
    raise ValueError(f'Block string {block_string!r}: r, k, s, e, i, o must '
                     'be positive')
  return args


def encode_block_string(args: BlockArgs) -> str:
  """BlockArgs -> block string; inverse of `decode_block_string`.

  The conv type is written only when it is not 0, so the B0 rows round-trip
  exactly.
  """
  tokens = [f'r{args.num_repeat}', f'k{args.kernel_size}',
            f's{args.strides[0]}{args.strides[1]}', f'e{args.expand_ratio}',
            f'i{args.input_filters}', f'o{args.output_filters}']
  if args.conv_type:
    tokens.append(f'c{args.conv_type}')
  if args.has_se:
    tokens.append(f'se{args.se_ratio:g}')
  if not args.id_skip:
    tokens.append('noskip')
  return '_'.join(tokens)


def decode_block_strings(block_strings: Sequence[str]) -> list[BlockArgs]:
  return [decode_block_string(s) for s in block_strings]


def encode_block_strings(blocks_args: Sequence[BlockArgs]) -> list[str]:
  return [encode_block_string(b) for b in blocks_args]


def base_block_strings(small_image: bool = False) -> list[str]:
  """The B0 rows; with `small_image`, stages 1 and 2 get stride 1."""
  rows = list(BASE_BLOCK_STRINGS)
  if small_image:
    for stage in SMALL_IMAGE_STRIDE1_STAGES:
      rows[stage] = encode_block_string(dataclasses.replace(
          decode_block_string(rows[stage]), strides=(1, 1)))
  return rows


# --------------------------------------------------------------------------
# Compound scaling.
# --------------------------------------------------------------------------
def round_filters(filters: int, width_coefficient: float | None,
                  depth_divisor: int = DEPTH_DIVISOR,
                  min_depth: int | None = None) -> int:
  """Scales a channel count by `width_coefficient`, rounded to the divisor.

  Rounds to the nearest multiple of `depth_divisor` (at least `min_depth`,
  default the divisor) and never more than 10% below the scaled value. A
  falsy `width_coefficient` returns `filters` unchanged, like the original.
  """
  if not width_coefficient:
    return filters
  scaled = filters * width_coefficient
  min_depth = min_depth or depth_divisor
  new_filters = max(min_depth,
                    int(scaled + depth_divisor / 2) // depth_divisor *
                    depth_divisor)
  if new_filters < 0.9 * scaled:
    new_filters += depth_divisor
  return int(new_filters)


def round_repeats(repeats: int, depth_coefficient: float | None) -> int:
  """Scales a stage's block count by `depth_coefficient`, rounding up."""
  if not depth_coefficient:
    return repeats
  return int(math.ceil(depth_coefficient * repeats))


def scale_blocks(blocks_args: Sequence[BlockArgs],
                 width_coefficient: float,
                 depth_coefficient: float) -> list[BlockArgs]:
  """Expands stage rows into one BlockArgs per block (num_repeat=1 each).

  The first block of a stage takes the stage's stride and input filters; the
  others have stride 1 and input filters = output filters.
  """
  blocks = []
  for stage in blocks_args:
    first = dataclasses.replace(
        stage, num_repeat=1,
        input_filters=round_filters(stage.input_filters, width_coefficient),
        output_filters=round_filters(stage.output_filters, width_coefficient))
    blocks.append(first)
    rest = dataclasses.replace(first, input_filters=first.output_filters,
                               strides=(1, 1))
    blocks.extend([rest] * (round_repeats(stage.num_repeat,
                                          depth_coefficient) - 1))
  return blocks


def se_reduced_filters(input_filters: int, se_ratio: float) -> int:
  """SE bottleneck width: a ratio of the block's input (not expanded) width."""
  return max(1, int(input_filters * se_ratio))
