"""Original TF1 EfficientNet checkpoints <-> models built by `build_model`.

The TF1 code (tensorflow/tpu and google-research/noisystudent
`efficientnet_model.py`) names variables by scope and by the auto-names of
tf.layers, in creation order within each scope:

  <scope>/stem/conv2d/kernel
  <scope>/stem/tpu_batch_normalization/{gamma,beta,moving_mean,moving_variance}
  <scope>/blocks_{i}/conv2d/kernel                  expand (expand_ratio != 1)
  <scope>/blocks_{i}/tpu_batch_normalization/...    expand BN
  <scope>/blocks_{i}/depthwise_conv2d/depthwise_kernel
  <scope>/blocks_{i}/tpu_batch_normalization_1/...  depthwise BN
  <scope>/blocks_{i}/se/conv2d/{kernel,bias}        SE reduce
  <scope>/blocks_{i}/se/conv2d_1/{kernel,bias}      SE expand
  <scope>/blocks_{i}/conv2d_1/kernel                project
  <scope>/blocks_{i}/tpu_batch_normalization_2/...  project BN
  <scope>/head/conv2d/kernel, head/tpu_batch_normalization/..., head/dense/...

Blocks without expansion (blocks_0 of B0) shift the numbering down by one
(`conv2d` is the projection, `tpu_batch_normalization` the depthwise BN).
`<scope>` is the model name, e.g. `efficientnet-b0`, possibly nested
(`teacher_model/efficientnet-b7` in noisystudent training checkpoints).
EMA shadows are `<variable>/ExponentialMovingAverage`; optimizer slots
(`<variable>/RMSProp`, `/RMSProp_1`, `/Momentum`) and `global_step` are
ignored. Kernel shapes are the same in TF1 and Keras, so values are copied
unchanged.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Iterable, Mapping

import keras
import numpy as np
import tensorflow as tf

from noisy_student.runtime import errors
from noisy_student.runtime import temp_names
from efficientnet import name_listing
from efficientnet import params

EMA_SUFFIX = '/ExponentialMovingAverage'
# The checkpoint prefix inside save_tf1_checkpoint's temporary folder.
_TEMP_BASE = 'ckpt'
# Last name component of optimizer slot variables (TF1 optimizers).
_SLOT = re.compile(r'(RMSProp|Momentum|Adam|Adagrad|Ftrl|LARS\w*)(_\d+)?')
_STEM_KERNEL = '/stem/conv2d/kernel'
_BLOCK_INDEX = re.compile(r'/blocks_(\d+)/')

# Keras layer (or `<layer>.<sublayer>`) -> TF1 layer scope.
_STEM_LAYERS = (('stem_conv', 'stem/conv2d'),
                ('stem_bn', 'stem/tpu_batch_normalization'))
_HEAD_LAYERS = (('head_conv', 'head/conv2d'),
                ('head_bn', 'head/tpu_batch_normalization'),
                ('head_dense', 'head/dense'))
# Block roles (suffix after `blocks_{i}_`) -> TF1 name inside `blocks_{i}/`.
_BLOCK_WITH_EXPANSION = (
    ('expand_conv', 'conv2d'),
    ('expand_bn', 'tpu_batch_normalization'),
    ('dwconv', 'depthwise_conv2d'),
    ('dw_bn', 'tpu_batch_normalization_1'),
    ('se.reduce', 'se/conv2d'),
    ('se.expand', 'se/conv2d_1'),
    ('project_conv', 'conv2d_1'),
    ('project_bn', 'tpu_batch_normalization_2'),
)
_BLOCK_WITHOUT_EXPANSION = (
    ('dwconv', 'depthwise_conv2d'),
    ('dw_bn', 'tpu_batch_normalization'),
    ('se.reduce', 'se/conv2d'),
    ('se.expand', 'se/conv2d_1'),
    ('project_conv', 'conv2d'),
    ('project_bn', 'tpu_batch_normalization_1'),
)


class CheckpointMismatchError(errors.NoisyStudentError):
  """The checkpoint's variables do not fit the model (names or shapes)."""


@dataclasses.dataclass(frozen=True)
class LoadReport:
  """What `load_tf1_checkpoint` did.

  Attributes:
    checkpoint: the checkpoint prefix read.
    scope: the variable scope used, e.g. 'efficientnet-b0'.
    num_variables: model variables assigned (all of them).
    num_from_ema: how many of those came from `/ExponentialMovingAverage`.
    num_ignored: checkpoint entries not used (optimizer slots, global_step,
      other scopes, raw values superseded by their EMA shadow).
  """
  checkpoint: str
  scope: str
  num_variables: int
  num_from_ema: int
  num_ignored: int

  def __str__(self) -> str:
    return (f'loaded {self.num_variables} variables ({self.num_from_ema} from '
            f'EMA shadows) from {self.checkpoint} scope {self.scope!r}; '
            f'ignored {self.num_ignored} other entries')


# --------------------------------------------------------------------------
# The name table.
# --------------------------------------------------------------------------
def _tf1_layers(model: keras.Model) -> list[tuple[keras.layers.Layer, str]]:
  """(Keras layer, TF1 layer scope relative to the model scope) pairs."""
  by_name = {layer.name: layer for layer in model.layers}

  def get(name):
    layer_name, _, sublayer = name.partition('.')
    layer = by_name.get(layer_name)
    if layer is not None and sublayer:
      layer = getattr(layer, sublayer, None)
    return layer

  block_ids = sorted(int(m.group(1)) for m in (
      re.fullmatch(r'blocks_(\d+)_dwconv', n) for n in by_name) if m)
  if block_ids != list(range(len(block_ids))) or 'stem_conv' not in by_name:
    raise ValueError(f'Model {model.name!r} is not an efficientnet.build_model '
                     f'model (stem_conv / blocks_0..n layers not found)')
  rows = list(_STEM_LAYERS)
  for i in block_ids:
    block = (_BLOCK_WITH_EXPANSION if f'blocks_{i}_expand_conv' in by_name
             else _BLOCK_WITHOUT_EXPANSION)
    rows += [(f'blocks_{i}_{role}', f'blocks_{i}/{tf1}') for role, tf1 in block]
  rows += _HEAD_LAYERS
  pairs = []
  for name, tf1 in rows:
    layer = get(name)
    if layer is not None:
      pairs.append((layer, tf1))
  return pairs


def _leaf_name(layer: keras.layers.Layer, variable) -> str:
  if isinstance(layer, keras.layers.DepthwiseConv2D) and (
      variable.name == 'kernel'):
    return 'depthwise_kernel'
  return variable.name


def tf1_variable_map(model: keras.Model, scope: str | None = None
                     ) -> dict[str, keras.Variable]:
  """Maps each original TF1 variable name to the model's variable.

  Args:
    model: a model from `build_model` (or loaded from its `.keras` file).
    scope: the TF1 scope, e.g. 'efficientnet-b0' or
      'teacher_model/efficientnet-b0'; None: the model's name.

  Returns:
    {'<scope>/stem/conv2d/kernel': <Variable stem_conv/kernel>, ...}, one
    entry per model weight (trainable and BN moving statistics), in model
    order.

  Raises:
    ValueError if some weight of the model has no TF1 name.
  """
  scope = (scope or model.name).strip('/')
  mapping = {}
  for layer, tf1 in _tf1_layers(model):
    for variable in layer.weights:
      mapping[f'{scope}/{tf1}/{_leaf_name(layer, variable)}'] = variable
  mapped = {id(v) for v in mapping.values()}
  unmapped = [v.path for v in model.weights if id(v) not in mapped]
  if unmapped or len(mapped) != len(mapping):
    raise ValueError(f'Model {model.name!r}: weights without a TF1 name: '
                     f'{unmapped}')
  return mapping


# --------------------------------------------------------------------------
# Comparing a checkpoint's variables with a model (pure, on name -> shape).
# --------------------------------------------------------------------------
def _is_auxiliary(name: str, names: Mapping[str, object]) -> bool:
  """EMA shadow, optimizer slot, or any variable nested under another one."""
  if name.endswith(EMA_SUFFIX):
    return True
  parent, _, leaf = name.rpartition('/')
  return bool(_SLOT.fullmatch(leaf)) or parent in names


@dataclasses.dataclass
class _Comparison:
  sources: dict[str, str]                 # model name -> checkpoint entry
  missing: list[str]
  unexpected: list[str]
  wrong_shape: list[tuple[str, tuple, tuple]]

  @property
  def ok(self) -> bool:
    return not (self.missing or self.unexpected or self.wrong_shape)


def _compare(expected: Mapping[str, tuple], shapes: Mapping[str, list],
             scope: str, use_ema: bool) -> _Comparison:
  """Matches expected {name: shape} with the checkpoint's {name: shape}."""
  present = {
      name.removesuffix(EMA_SUFFIX) for name in shapes
      if name.startswith(scope + '/') and
      not _is_auxiliary(name.removesuffix(EMA_SUFFIX), shapes)}
  sources, missing, wrong = {}, [], []
  for name, shape in expected.items():
    ema = name + EMA_SUFFIX
    source = ema if use_ema and ema in shapes else (
        name if name in shapes else None)
    if source is None:
      missing.append(name)
    elif tuple(shapes[source]) != tuple(shape):
      wrong.append((name, tuple(shapes[source]), tuple(shape)))
    else:
      sources[name] = source
  unexpected = sorted(present - set(expected), key=name_listing.natural_key)
  return _Comparison(sources, missing, unexpected, wrong)


def scope_candidates(names: Iterable[str]) -> list[str]:
  """Scopes that hold an EfficientNet stem (`<scope>/stem/conv2d/kernel`)."""
  return sorted({name.removesuffix(EMA_SUFFIX)[:-len(_STEM_KERNEL)]
                 for name in names
                 if name.removesuffix(EMA_SUFFIX).endswith(_STEM_KERNEL)})


def guess_model_names(shapes: Mapping[str, list], scope: str) -> list[str]:
  """Spec names whose stem/head widths and block count fit the checkpoint."""
  def width(layer):
    for name in (f'{scope}/{layer}/kernel',
                 f'{scope}/{layer}/kernel{EMA_SUFFIX}'):
      if name in shapes:
        return shapes[name][-1]
    return None

  stem, head = width('stem/conv2d'), width('head/conv2d')
  num_blocks = len({m.group(1) for m in (
      _BLOCK_INDEX.search(n) for n in shapes if n.startswith(scope + '/'))
                    if m})
  guesses = []
  for name, spec in params.MODEL_SPECS.items():
    blocks = sum(params.round_repeats(b.num_repeat, spec.depth_coefficient)
                 for b in params.decode_block_strings(
                     params.BASE_BLOCK_STRINGS))
    if (stem == params.round_filters(params.STEM_FILTERS,
                                     spec.width_coefficient) and
        head == params.round_filters(params.HEAD_FILTERS,
                                     spec.width_coefficient) and
        num_blocks == blocks):
      guesses.append(name)
  return guesses


def _mismatch_message(path: str, scope: str, model: keras.Model,
                      comparison: _Comparison,
                      shapes: Mapping[str, list]) -> str:
  message = (f'{path}: the checkpoint variables under scope {scope!r} do not '
             f'fit model {model.name!r} ({len(model.weights)} weights).')
  guesses = guess_model_names(shapes, scope)
  if guesses:
    message += (f'\n  The checkpoint looks like {" or ".join(guesses)}; '
                f'build the model with that model_name.')
  dense = shapes.get(f'{scope}/head/dense/kernel')
  if dense and dense[-1] != model.output_shape[-1]:
    message += (f'\n  The checkpoint has {dense[-1]} classes, the model '
                f'{model.output_shape[-1]} (num_classes).')
  if comparison.missing:
    message += name_listing.listing('missing from the checkpoint', comparison.missing)
  if comparison.unexpected:
    message += name_listing.listing('unexpected in the checkpoint', comparison.unexpected)
  if comparison.wrong_shape:
    message += name_listing.listing('wrong shape, checkpoint vs model', [
        f'{n} {list(c)} vs {list(m)}' for n, c, m in comparison.wrong_shape])
  return message


# --------------------------------------------------------------------------
# Loading and saving.
# --------------------------------------------------------------------------
class CheckpointNotFoundError(errors.NoisyStudentError, FileNotFoundError):
  """No checkpoint at the given path; the message names it."""


def resolve_checkpoint(path: str) -> str:
  """The checkpoint prefix of `path`: a prefix, or a directory's latest.

  Works for any TF checkpoint (TF1 name-based or TF2 object-based).

  Raises:
    CheckpointNotFoundError naming `path` when there is none.
  """
  if tf.io.gfile.isdir(path):
    prefix = tf.train.latest_checkpoint(path)
    if prefix is None:
      raise CheckpointNotFoundError(
          f'{path}: no checkpoint in this directory (no `checkpoint` state '
          'file naming one); pass a prefix such as .../model.ckpt')
    return prefix
  if not tf.io.gfile.exists(path + '.index'):
    raise CheckpointNotFoundError(
        f'{path}: neither a checkpoint directory nor a checkpoint prefix '
        f'({path}.index does not exist)')
  return path


def _choose_scope(path: str, shapes, expected_for, scope, use_ema) -> str:
  candidates = scope_candidates(shapes)
  if scope is not None:
    scope = scope.strip('/')
    if scope not in candidates:
      raise CheckpointMismatchError(
          f'{path}: scope={scope!r} has no EfficientNet variables '
          f'({scope}{_STEM_KERNEL}); scopes found: {candidates}')
    return scope
  if not candidates:
    raise CheckpointMismatchError(
        f'{path}: no EfficientNet variables (<scope>{_STEM_KERNEL}) found; '
        f'first names: {sorted(shapes)[:10]}')
  if len(candidates) == 1:
    return candidates[0]
  fitting = [c for c in candidates
             if _compare(expected_for(c), shapes, c, use_ema).ok]
  if len(fitting) == 1:
    return fitting[0]
  raise CheckpointMismatchError(
      f'{path}: several EfficientNet scopes {candidates} '
      f'({len(fitting)} fit the model); pass scope=... to choose one')


def load_tf1_checkpoint(model: keras.Model, ckpt_path: str, *,
                        use_ema: bool = True,
                        scope: str | None = None) -> LoadReport:
  """Loads an original TF1 EfficientNet checkpoint into `model`.

  All-or-nothing: every model weight (kernels, biases, BN gamma/beta and
  moving statistics) must be found with the right shape, and every
  EfficientNet variable of the scope must be used, before anything is
  assigned.

  Args:
    model: a model from `build_model` with the checkpoint's size and
      num_classes (the image size and small_image do not matter).
    ckpt_path: checkpoint prefix (`.../model.ckpt-12345`) or a directory with
      a `checkpoint` state file.
    use_ema: take `<name>/ExponentialMovingAverage` when present (the
      original evaluates with the EMA weights).
    scope: variable scope, e.g. 'efficientnet-b0'; None: detected from
      `<scope>/stem/conv2d/kernel` (if several scopes exist, the only one
      that fits the model).

  Returns:
    A LoadReport.

  Raises:
    CheckpointNotFoundError: no checkpoint at `ckpt_path`.
    CheckpointMismatchError (a ValueError): one message listing missing,
      unexpected and wrongly-shaped variables, with a guess of the model
      size the checkpoint holds.
  """
  path = resolve_checkpoint(ckpt_path)
  reader = tf.train.load_checkpoint(path)
  shapes = reader.get_variable_to_shape_map()

  def expected_for(candidate):
    return {name: tuple(v.shape)
            for name, v in tf1_variable_map(model, candidate).items()}

  scope = _choose_scope(path, shapes, expected_for, scope, use_ema)
  variables = tf1_variable_map(model, scope)
  comparison = _compare(expected_for(scope), shapes, scope, use_ema)
  if not comparison.ok:
    raise CheckpointMismatchError(
        _mismatch_message(path, scope, model, comparison, shapes))
  values = {name: reader.get_tensor(source)
            for name, source in comparison.sources.items()}
  for name, variable in variables.items():
    variable.assign(np.asarray(values[name]).astype(variable.dtype))
  num_from_ema = sum(s.endswith(EMA_SUFFIX)
                     for s in comparison.sources.values())
  return LoadReport(checkpoint=path, scope=scope,
                    num_variables=len(variables), num_from_ema=num_from_ema,
                    num_ignored=len(shapes) - len(variables))


def save_tf1_checkpoint(model: keras.Model, prefix: str,
                        scope: str | None = None, *,
                        include_ema: bool = False) -> str:
  """Writes the model's weights under the original TF1 names.

  The result reads with `tf.train.load_checkpoint(prefix)`, with
  `load_tf1_checkpoint` and with the original TF1 code. Atomic: the
  `.data-00000-of-00001` and `.index` files appear only when complete.

  Args:
    model: a model from `build_model`.
    prefix: checkpoint prefix, e.g. '/tmp/export/model.ckpt'.
    scope: TF1 scope; None: the model's name (e.g. 'efficientnet-b0').
    include_ema: also write each value as `<name>/ExponentialMovingAverage`
      (the original eval code restores the EMA names by default).

  Returns:
    `prefix`.
  """
  variables = tf1_variable_map(model, scope)
  names, tensors = [], []
  for name, variable in variables.items():
    value = tf.convert_to_tensor(variable.numpy())
    names.append(name)
    tensors.append(value)
    if include_ema:
      names.append(name + EMA_SUFFIX)
      tensors.append(value)
  directory = os.path.dirname(prefix)
  if directory:
    tf.io.gfile.makedirs(directory)
  # SaveV2 writes `<tmp>/ckpt` + its endings (data shard, index) into a
  # hidden folder; each file is renamed to `prefix` + the same ending, the
  # index last, so a reader never finds an index without its data.
  tmp = temp_names.temp_path(prefix)
  tf.raw_ops.SaveV2(prefix=os.path.join(tmp, _TEMP_BASE), tensor_names=names,
                    shape_and_slices=[''] * len(names), tensors=tensors)
  try:
    written = sorted(tf.io.gfile.listdir(tmp),
                     key=lambda name: name.endswith('.index'))
    for name in written:
      tf.io.gfile.rename(os.path.join(tmp, name),
                         prefix + name[len(_TEMP_BASE):], overwrite=True)
  finally:
    tf.io.gfile.rmtree(tmp)
  return prefix
