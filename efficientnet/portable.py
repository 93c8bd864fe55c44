"""`to_portable`: the same EfficientNet for inference, built-in Keras layers only.

A `.keras` file of `build_model`'s network names this package's classes
(ImageNormalization, SqueezeExcite, StochasticDepth, ReplicaDropout and two
initializers), so `keras.saving.load_model` finds them only after
`import efficientnet`. `to_portable(model)` rebuilds the functional graph
layer by layer from `keras.layers` only and copies every weight:

  ImageNormalization 'normalize' -> Normalization 'normalize'
                                    (mean, variance = stddev ** 2 in float32)
  SqueezeExcite 'blocks_{i}_se'  -> GlobalAveragePooling2D '..._se_squeeze'
                                    Conv2D '..._se_reduce', Activation
                                    '..._se_reduce_swish', Conv2D
                                    '..._se_expand', Activation '..._se_gate'
                                    (sigmoid), Multiply 'blocks_{i}_se'
  StochasticDepth                -> nothing (the identity at inference)
  ReplicaDropout                 -> Dropout (same rate)
  other layers                   -> the same class from the same config
Initializers of this package become the `VarianceScaling` they subclass.
Every layer computes in float32 and BatchNormalization is not synchronized.
Names and the order of `weights` are the source's (the SE weights are the
same four tensors, under `..._se_reduce/` and `..._se_expand/`).

The result computes `model(x, training=False)`: float32 [N, S, S, 3] images
-> float32 logits [N, C]. It has no stochastic depth, so training it further
(e.g. `--model_name=file.keras`) trains without stochastic depth.
"""

from __future__ import annotations

import contextlib
import json
from typing import Callable

import keras
import numpy as np

from efficientnet import layers as layers_lib

# Classes of this package -> the built-in class with the same config.
_SAME_CONFIG = {layers_lib.ReplicaDropout: keras.layers.Dropout}


def custom_objects(model: keras.Model) -> list[str]:
  """Sorted '<module>.<class>' of every non-Keras object in `model`'s config.

  Layers, initializers, regularizers, ...: what `keras.saving.load_model`
  would have to import. [] for a model of built-in Keras classes only.
  """
  found = set()

  def walk(node):
    if isinstance(node, dict):
      module = node.get('module')
      if isinstance(module, str) and 'class_name' in node and not (
          module == 'keras' or module.startswith('keras.')):
        found.add(f'{module}.{node["class_name"]}')
      for value in node.values():
        walk(value)
    elif isinstance(node, list):
      for value in node:
        walk(value)

  walk(json.loads(json.dumps(keras.saving.serialize_keras_object(model),
                             default=str)))
  return sorted(found)


def _builtin_initializer(initializer):
  """A VarianceScaling subclass of ours -> the plain VarianceScaling."""
  if isinstance(initializer, keras.initializers.VarianceScaling):
    return keras.initializers.VarianceScaling(
        **keras.initializers.VarianceScaling.get_config(initializer))
  raise ValueError(f'cannot replace the initializer {initializer!r} by a '
                   'built-in one')


def _clone(layer: keras.layers.Layer, name: str | None = None,
           cls: type | None = None) -> keras.layers.Layer:
  """A built-in copy of `layer` (unbuilt): float32, initializers built-in."""
  config = layer.get_config()
  config['dtype'] = 'float32'
  if name is not None:
    config['name'] = name
  for key, value in config.items():
    if (key.endswith('_initializer') and isinstance(value, dict) and
        not str(value.get('module', 'keras')).startswith('keras')):
      config[key] = _builtin_initializer(getattr(layer, key))
  if isinstance(layer, keras.layers.BatchNormalization):
    config['synchronized'] = False
  return (cls or type(layer)).from_config(config)


def _normalization(layer: layers_lib.ImageNormalization, x, pairs):
  del pairs  # no weights
  # In float32, sqrt(float32(s)**2) == float32(s) exactly: Normalization's
  # (x - mean) / max(sqrt(variance), 1e-7) divides by the same numbers.
  stddev = np.asarray(layer.stddev_rgb, np.float32)
  return keras.layers.Normalization(
      mean=np.asarray(layer.mean_rgb, np.float32).tolist(),
      variance=(stddev * stddev).tolist(), dtype='float32', name=layer.name)(x)


def _squeeze_excite(layer: layers_lib.SqueezeExcite, x, pairs):
  name = layer.name
  gate = keras.layers.GlobalAveragePooling2D(
      keepdims=True, dtype='float32', name=f'{name}_squeeze')(x)
  for role, conv, activation in (('reduce', layer.reduce, layers_lib.ACTIVATION),
                                 ('expand', layer.expand, 'sigmoid')):
    new_conv = _clone(conv, f'{name}_{role}')
    gate = new_conv(gate)
    pairs.append((conv, new_conv))
    gate = keras.layers.Activation(
        activation, dtype='float32',
        name=f'{name}_reduce_swish' if role == 'reduce' else f'{name}_gate'
    )(gate)
  return keras.layers.Multiply(dtype='float32', name=name)([x, gate])


def _stochastic_depth(layer, x, pairs):
  del layer, pairs
  return x


_REWRITES: dict[type, Callable] = {
    layers_lib.ImageNormalization: _normalization,
    layers_lib.SqueezeExcite: _squeeze_excite,
    layers_lib.StochasticDepth: _stochastic_depth,
}


def _copy_weights(source: keras.Model, target: keras.Model, pairs) -> None:
  """Assigns each pair's weights in order; every weight exactly once."""
  copied_from, copied_to = set(), set()
  for old, new in pairs:
    if len(old.weights) != len(new.weights):
      raise ValueError(f'{old.name}: {len(old.weights)} weights, but its '
                       f'portable {new.name} has {len(new.weights)}')
    for src, dst in zip(old.weights, new.weights):
      if tuple(src.shape) != tuple(dst.shape):
        raise ValueError(f'{src.path}: shape {tuple(src.shape)} does not fit '
                         f'{dst.path} {tuple(dst.shape)}')
      dst.assign(keras.ops.convert_to_numpy(src))
      copied_from.add(id(src))
      copied_to.add(id(dst))
  for model, done, what in ((source, copied_from, 'copied'),
                            (target, copied_to, 'assigned')):
    missed = [w.path for w in model.weights if id(w) not in done]
    if missed:
      raise ValueError(f'{model.name}: {len(missed)} weights not {what}: '
                       f'{missed[:5]}')


@contextlib.contextmanager
def _float32_policy():
  """The global dtype policy is float32 inside (Input layers, the Model)."""
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy('float32')
  try:
    yield
  finally:
    keras.config.set_dtype_policy(previous)


def to_portable(model: keras.Model) -> keras.Model:
  """The same network from built-in Keras layers, with `model`'s weights.

  Args:
    model: a functional model of `build_model` (or loaded from its `.keras`
      file), any dtype policy; single input, each layer called once.

  Returns:
    A new float32 functional `keras.Model`, same name, same input and output
    shapes, for inference (`custom_objects(result) == []`).

  Raises:
    ValueError naming the layer that has no built-in equivalent, or the
    weight that was not copied.
  """
  if len(model.inputs) != 1:
    raise ValueError(f'{model.name}: to_portable takes one input, the model '
                     f'has {len(model.inputs)}')
  with _float32_policy():
    portable, pairs = _rebuild(model)
  _copy_weights(model, portable, pairs)
  left = custom_objects(portable)
  if left:
    raise ValueError(f'{model.name}: the portable model still uses {left}')
  return portable


def _rebuild(model: keras.Model) -> tuple[keras.Model, list]:
  """The built-in graph and the (source, new) layer pairs with weights."""
  (source_input,) = model.inputs
  images = keras.Input(tuple(source_input.shape[1:]), dtype='float32',
                       name=source_input.name)
  tensors = {id(source_input): images}
  pairs = []
  for layer in model.layers:
    if isinstance(layer, keras.layers.InputLayer):
      continue
    try:
      inputs = keras.tree.map_structure(lambda t: tensors[id(t)], layer.input)
    except KeyError:
      raise ValueError(f'{model.name}: layer {layer.name} is reused or its '
                       'input is not in the graph; to_portable needs each '
                       'layer called once') from None
    rewrite = _REWRITES.get(type(layer))
    if rewrite is not None:
      output = rewrite(layer, inputs, pairs)
    else:
      cls = _SAME_CONFIG.get(type(layer), type(layer))
      if not cls.__module__.startswith('keras.'):
        raise ValueError(f'{model.name}: layer {layer.name} is a '
                         f'{cls.__module__}.{cls.__name__}, which has no '
                         'built-in Keras equivalent')
      new = _clone(layer, cls=cls)
      output = new(inputs)
      pairs.append((layer, new))
    tensors[id(layer.output)] = output
  outputs = keras.tree.map_structure(lambda t: tensors[id(t)], model.outputs)
  if len(outputs) == 1:
    outputs = outputs[0]
  return keras.Model(images, outputs, name=model.name), pairs
