"""timm `tf_efficientnet_*` state dicts (PyTorch layout) -> `build_model` models.

timm's `tf_efficientnet_b0.ns_jft_in1k` ... `tf_efficientnet_l2.ns_jft_in1k`
(and `_475`) are the Noisy Student TF1 checkpoints ported to PyTorch, with TF
'same' padding and BN epsilon 1e-3 (timm `BN_EPS_TF_DEFAULT`), i.e. the network
`build_model` builds. Their state dict names (timm `efficientnet.py`,
`_efficientnet_blocks.py`):

  conv_stem.weight, bn1.*                          stem conv + BN
  blocks.{stage}.{j}.<block tensors>               stage 0..6, block j
  conv_head.weight, bn2.*, classifier.{weight,bias}

Stage 0 blocks are `DepthwiseSeparableConv` (conv_dw, bn1, se, conv_pw, bn2);
the others `InvertedResidual` (conv_pw expansion, bn1, conv_dw, bn2, se,
conv_pwl projection, bn3). BN tensors are weight, bias, running_mean,
running_var (-> gamma, beta, moving_mean, moving_variance) and
num_batches_tracked (a training counter, ignored). Block (stage, j) is this
project's `blocks_{i}` in stage-major order. Layouts differ, values do not:

  conv kernel       [out, in, kh, kw] -> [kh, kw, in, out]
  depthwise kernel  [C, 1, kh, kw]    -> [kh, kw, C, 1]
  dense kernel      [out, in]         -> [in, out]
  biases, BN        unchanged

Inputs: timm normalises outside the model with IMAGENET_DEFAULT_MEAN/STD on
0-1 pixels; `build_model` does the same inside on 0-255 pixels
(`params.IMAGENET_MEAN_RGB` = mean * 255), so the converted model takes float
0-255 images. A state dict is a `.safetensors` file (read with numpy, no
torch: `safetensors_file`) or a {name: array} mapping.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Mapping, Union

import keras
import numpy as np

from efficientnet import name_listing
from efficientnet import params
from efficientnet import safetensors_file
from efficientnet.tf1_checkpoint import CheckpointMismatchError

StateDict = Mapping[str, np.ndarray]
Source = Union[str, os.PathLike, StateDict]

IGNORED_SUFFIX = '.num_batches_tracked'
_BLOCK = re.compile(r'^blocks\.(\d+)\.(\d+)\.')

# Keras layer (`<layer>` or `<layer>.<sublayer>`) -> timm module, per part.
_STEM = (('stem_conv', 'conv_stem'), ('stem_bn', 'bn1'))
_HEAD = (('head_conv', 'conv_head'), ('head_bn', 'bn2'),
         ('head_dense', 'classifier'))
# Block roles (after `blocks_{i}_`) -> module inside `blocks.{stage}.{j}.`.
_INVERTED_RESIDUAL = (
    ('expand_conv', 'conv_pw'), ('expand_bn', 'bn1'),
    ('dwconv', 'conv_dw'), ('dw_bn', 'bn2'),
    ('se.reduce', 'se.conv_reduce'), ('se.expand', 'se.conv_expand'),
    ('project_conv', 'conv_pwl'), ('project_bn', 'bn3'))
_DEPTHWISE_SEPARABLE = (  # blocks without expansion (expand_ratio 1)
    ('dwconv', 'conv_dw'), ('dw_bn', 'bn1'),
    ('se.reduce', 'se.conv_reduce'), ('se.expand', 'se.conv_expand'),
    ('project_conv', 'conv_pw'), ('project_bn', 'bn2'))
# Keras variable name -> timm tensor name.
_LEAVES = {'kernel': 'weight', 'bias': 'bias', 'gamma': 'weight',
           'beta': 'bias', 'moving_mean': 'running_mean',
           'moving_variance': 'running_var'}
# Axis order taking a timm kernel to the Keras layout.
CONV_TO_KERAS = (2, 3, 1, 0)
DEPTHWISE_TO_KERAS = (2, 3, 0, 1)
DENSE_TO_KERAS = (1, 0)


@dataclasses.dataclass(frozen=True)
class Target:
  """Where one timm tensor goes: `variable`, after `np.transpose(perm)`."""
  variable: keras.Variable
  perm: tuple[int, ...] | None  # None: copied unchanged

  @property
  def timm_shape(self) -> tuple[int, ...]:
    """The shape timm stores for this variable."""
    shape = tuple(self.variable.shape)
    if self.perm is None:
      return shape
    timm = [0] * len(shape)
    for keras_axis, timm_axis in enumerate(self.perm):
      timm[timm_axis] = shape[keras_axis]
    return tuple(timm)


@dataclasses.dataclass(frozen=True)
class Architecture:
  """The size facts a state dict (or a model) shows.

  Attributes:
    stem_filters: output channels of the stem conv.
    head_filters: output channels of the head conv.
    stage_sizes: blocks per stage, e.g. (1, 2, 2, 3, 3, 4, 1) for B0.
    num_classes: classifier width (None if absent).
  """
  stem_filters: int | None
  head_filters: int | None
  stage_sizes: tuple[int, ...]
  num_classes: int | None = None

  def __str__(self) -> str:
    return (f'stem {self.stem_filters}, head {self.head_filters}, stages '
            f'{list(self.stage_sizes)} ({sum(self.stage_sizes)} blocks), '
            f'{self.num_classes} classes')

  def same_size(self, other: 'Architecture') -> bool:
    return (self.stem_filters, self.head_filters, self.stage_sizes) == (
        other.stem_filters, other.head_filters, other.stage_sizes)


@dataclasses.dataclass(frozen=True)
class LoadReport:
  """What `load_timm_weights` did.

  Attributes:
    source: the file read, or '<state dict>'.
    num_variables: model variables assigned (all of them).
    num_ignored: tensors not used (num_batches_tracked counters).
    dtypes: the stored dtypes of the used tensors, e.g. ('F32',) or
      ('float32',).
  """
  source: str
  num_variables: int
  num_ignored: int
  dtypes: tuple[str, ...]

  def __str__(self) -> str:
    return (f'loaded {self.num_variables} variables ({"/".join(self.dtypes)}) '
            f'from timm state dict {self.source}; ignored {self.num_ignored} '
            f'{IGNORED_SUFFIX[1:]} tensors')


# --------------------------------------------------------------------------
# Architecture of a spec, a model and a state dict.
# --------------------------------------------------------------------------
def spec_architecture(model_name: str, *,
                      width_coefficient: float | None = None,
                      depth_coefficient: float | None = None,
                      num_classes: int | None = 1000) -> Architecture:
  """The `Architecture` `build_model(model_name, ...)` builds."""
  spec = params.get_spec(model_name)
  width = width_coefficient or spec.width_coefficient
  depth = depth_coefficient or spec.depth_coefficient
  return Architecture(
      params.round_filters(params.STEM_FILTERS, width),
      params.round_filters(params.HEAD_FILTERS, width),
      tuple(params.round_repeats(b.num_repeat, depth) for b in
            params.decode_block_strings(params.BASE_BLOCK_STRINGS)),
      num_classes)


def state_dict_architecture(shapes: Mapping[str, tuple[int, ...]]
                            ) -> Architecture:
  """The `Architecture` of a timm state dict, from its names and shapes."""
  def out_channels(name):
    return shapes[name][0] if name in shapes else None

  blocks = _state_dict_blocks(shapes)
  sizes = [0] * (max((s for s, _ in blocks), default=-1) + 1)
  for stage, _ in blocks:
    sizes[stage] += 1
  return Architecture(out_channels('conv_stem.weight'),
                      out_channels('conv_head.weight'), tuple(sizes),
                      out_channels('classifier.weight'))


def guess_model_names(shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
  """Spec names whose stem/head widths and stage sizes fit the state dict."""
  found = state_dict_architecture(shapes)
  return [name for name in params.MODEL_SPECS
          if spec_architecture(name).same_size(found)]


def _state_dict_blocks(names) -> list[tuple[int, int]]:
  """Sorted (stage, j) of the `blocks.{stage}.{j}.` names."""
  return sorted({(int(m.group(1)), int(m.group(2)))
                 for m in map(_BLOCK.match, names) if m})


def _model_blocks(by_name: Mapping[str, keras.layers.Layer]
                  ) -> list[tuple[int, int]]:
  """(stage, j) of each `blocks_{i}`, in order.

  A block starts a new stage when it has stride 2, or its kernel size,
  expansion or output width differs from the block before. Each of the B0
  rows (`params.BASE_BLOCK_STRINGS`) differs from the previous one in stride
  2 or kernel size, and the small-image rows by expansion or kernel size, so
  this finds the stages of every size, however narrow.
  """
  count = 0
  while f'blocks_{count}_dwconv' in by_name:
    count += 1
  if not count or 'stem_conv' not in by_name:
    raise ValueError('The model is not an efficientnet.build_model model '
                     '(stem_conv / blocks_0_dwconv layers not found)')
  positions, stage, j, previous = [], -1, 0, None
  for i in range(count):
    dwconv = by_name[f'blocks_{i}_dwconv']
    kind = (tuple(dwconv.kernel_size), f'blocks_{i}_expand_conv' in by_name,
            by_name[f'blocks_{i}_project_conv'].filters)
    if kind != previous or tuple(dwconv.strides) != (1, 1):
      stage, j, previous = stage + 1, 0, kind
    positions.append((stage, j))
    j += 1
  return positions


def model_architecture(model: keras.Model) -> Architecture:
  """The `Architecture` of a `build_model` model."""
  by_name = {layer.name: layer for layer in model.layers}
  blocks = _model_blocks(by_name)
  sizes = [0] * (blocks[-1][0] + 1)
  for stage, _ in blocks:
    sizes[stage] += 1
  return Architecture(by_name['stem_conv'].filters,
                      by_name['head_conv'].filters, tuple(sizes),
                      by_name['head_dense'].units)


# --------------------------------------------------------------------------
# The name table.
# --------------------------------------------------------------------------
def _perm(layer: keras.layers.Layer, variable) -> tuple[int, ...] | None:
  if variable.name != 'kernel':
    return None
  if isinstance(layer, keras.layers.DepthwiseConv2D):
    return DEPTHWISE_TO_KERAS
  if isinstance(layer, keras.layers.Conv2D):
    return CONV_TO_KERAS
  if isinstance(layer, keras.layers.Dense):
    return DENSE_TO_KERAS
  raise ValueError(f'No timm layout for {layer.name}/{variable.name}')


def timm_variable_map(model: keras.Model) -> dict[str, Target]:
  """Maps each timm state dict name to the model variable it fills.

  Args:
    model: a model from `build_model` (or loaded from its `.keras` file).

  Returns:
    {'conv_stem.weight': Target(<stem_conv/kernel>, CONV_TO_KERAS), ...},
    one entry per model weight (trainable and BN moving statistics), in
    model order; `num_batches_tracked` names are not included.

  Raises:
    ValueError if the model is not a `build_model` model or some weight of
    it has no timm name.
  """
  by_name = {layer.name: layer for layer in model.layers}
  rows = list(_STEM)
  for i, (stage, j) in enumerate(_model_blocks(by_name)):
    block = (_INVERTED_RESIDUAL if f'blocks_{i}_expand_conv' in by_name
             else _DEPTHWISE_SEPARABLE)
    rows += [(f'blocks_{i}_{role}', f'blocks.{stage}.{j}.{timm}')
             for role, timm in block]
  rows += _HEAD
  mapping = {}
  for keras_name, timm_name in rows:
    layer_name, _, sublayer = keras_name.partition('.')
    layer = by_name.get(layer_name)
    if layer is not None and sublayer:
      layer = getattr(layer, sublayer, None)
    if layer is None:
      continue  # e.g. a block without SE
    for variable in layer.weights:
      mapping[f'{timm_name}.{_LEAVES[variable.name]}'] = Target(
          variable, _perm(layer, variable))
  mapped = {id(t.variable) for t in mapping.values()}
  unmapped = [v.path for v in model.weights if id(v) not in mapped]
  if unmapped or len(mapped) != len(mapping):
    raise ValueError(f'Model {model.name!r}: weights without a timm name: '
                     f'{unmapped}')
  return mapping


def to_keras(array: np.ndarray, target: Target) -> np.ndarray:
  """A timm tensor in the Keras layout and dtype of `target.variable`."""
  array = np.asarray(array)
  if target.perm is not None:
    array = np.transpose(array, target.perm)
  return np.ascontiguousarray(array, dtype=target.variable.dtype)


# --------------------------------------------------------------------------
# Loading.
# --------------------------------------------------------------------------
def check_fits(model: keras.Model, shapes: Mapping[str, tuple[int, ...]],
               source: str) -> dict[str, Target]:
  """The name table of `model`, after checking the state dict fits it.

  Every model variable must have its tensor with the timm shape, and every
  tensor (but `num_batches_tracked`) must be used.

  Raises:
    CheckpointMismatchError naming `source`. Its first line gives the size
    the state dict looks like when that is not the model's, else the first
    wrong tensor with its shape and the expected one (or the first missing
    or unexpected name); the next lines list all missing, unexpected and
    wrongly-shaped tensors.
  """
  table = timm_variable_map(model)
  found, built = state_dict_architecture(shapes), model_architecture(model)
  missing = [n for n in table if n not in shapes]
  unexpected = sorted((n for n in shapes
                       if n not in table and not n.endswith(IGNORED_SUFFIX)),
                      key=name_listing.natural_key)
  wrong = [f'{n} has shape {list(shapes[n])}, expected '
           f'{list(t.timm_shape)}' for n, t in table.items()
           if n in shapes and tuple(shapes[n]) != t.timm_shape]
  if not (missing or unexpected or wrong):
    return table
  if not found.same_size(built):
    guesses = guess_model_names(shapes)
    first = (f'{source}: the timm state dict ({found}) does not fit model '
             f'{model.name!r} ({built}); it looks like '
             f'{" or ".join(guesses) or "no known EfficientNet size"}')
  elif wrong:
    first = f'{source}: tensor {wrong[0]} by model {model.name!r}'
  elif missing:
    first = f'{source}: tensor {missing[0]!r} is missing ({model.name!r})'
  else:
    first = (f'{source}: tensor {unexpected[0]!r} (shape '
             f'{list(shapes[unexpected[0]])}) has no place in model '
             f'{model.name!r}')
  if found.num_classes is not None and found.num_classes != built.num_classes:
    first += (f'; it has {found.num_classes} classes, the model '
              f'{built.num_classes} (num_classes)')
  for title, items in (('missing from the state dict', missing),
                       ('unexpected in the state dict', unexpected),
                       ('wrong shape', wrong)):
    if items:
      first += name_listing.listing(title, items)
  raise CheckpointMismatchError(first)


def read_source(source: Source
                ) -> tuple[str, dict[str, np.ndarray], dict[str, str]]:
  """(description, {name: array}, {name: stored dtype}) of a source.

  `source` is a `.safetensors` path (arrays memory-mapped, dtypes as the
  file names them, e.g. 'BF16') or a {name: array} mapping ('<state dict>').
  """
  if isinstance(source, Mapping):
    arrays = {n: np.asarray(v) for n, v in source.items()}
    return '<state dict>', arrays, {n: str(a.dtype) for n, a in arrays.items()}
  path = os.fspath(source)
  infos, _ = safetensors_file.read_header(path)
  return (path, safetensors_file.read_tensors(path),
          {n: info.dtype for n, info in infos.items()})


def load_timm_weights(model: keras.Model, source: Source) -> LoadReport:
  """Loads a timm `tf_efficientnet_*` state dict into `model`.

  All-or-nothing: names and shapes are checked (`check_fits`) before any
  variable is assigned.

  Args:
    model: a model from `build_model` with the state dict's size and
      num_classes (image size and small_image do not matter).
    source: a `.safetensors` file (F32, F16, BF16, ... read without torch)
      or a {timm name: array} mapping.

  Returns:
    A LoadReport.

  Raises:
    MissingFileError / SafetensorsError for a missing or malformed file;
    CheckpointMismatchError (a ValueError) when the state dict does not fit.
  """
  description, tensors, dtypes = read_source(source)
  table = check_fits(model, safetensors_file.shapes_of(tensors), description)
  for name, target in table.items():
    target.variable.assign(to_keras(tensors[name], target))
  return LoadReport(source=description, num_variables=len(table),
                    num_ignored=len(tensors) - len(table),
                    dtypes=tuple(sorted({dtypes[n] for n in table})))
