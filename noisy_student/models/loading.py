"""The one loader: any model reference -> a model and its `ModelConfig`.

`noisy_student.core.model_refs.kind` says what a reference is; this module is
the only one that reads model files (`tests/test_ownership.py`):

* `build(config)`: the network of a `ModelConfig`, built fresh for a name
  (`efficientnet-b0`, `keras:ResNet50`) or read from its `.keras` file;
* `restore(model, ref)`: weights from our checkpoint (EMA by default), an
  original TF1 checkpoint or a `.keras` file into a built model;
* `load_model(ref)`: a `.keras` file, or a checkpoint (ours: architecture
  from its `model_config.json`; TF1: from `fallback`);
* `load_for_inference(ref)`: a model at its inference size with its config,
  for predicting and evaluating (SavedModels too, as a callable);
* `load_classifier(ref)`: images -> logits for any reference
  (robustness benchmarks, the demo);
* `load_saved_model(path)`: the SavedModel object (its signatures).
Every failure is a `CheckpointError` (or `MissingFileError`) naming the path.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

from absl import logging
import keras
import tensorflow as tf

import efficientnet  # noqa: F401  (registers the custom layers .keras files use)
from efficientnet import safetensors_file
from efficientnet import saved_model as serving
from data import file_identity
from data import layout
from noisy_student.core import config as config_lib
from noisy_student.core import datasets
from noisy_student.core import factory
from noisy_student.core import model_refs
from noisy_student.models import backbones
from noisy_student.models import checkpoints
from noisy_student.models import classifier as classifier_lib
from noisy_student.models import teacher as teacher_lib
from noisy_student.runtime import errors


# ---------------------------------------------------------------------------
# Files.
# ---------------------------------------------------------------------------
def _first_line(err: BaseException) -> str:
  return str(err).splitlines()[0][:300] if str(err) else type(err).__name__


def load_keras_file(path: str) -> keras.Model:
  """A `.keras` file (ours or any Keras 3 model), not compiled."""
  if not tf.io.gfile.exists(path):
    raise errors.CheckpointError(f'{path}: no such .keras file')
  if tf.io.gfile.isdir(path):
    raise errors.CheckpointError(f'{path}: a folder, not a .keras file')
  with tf.io.gfile.GFile(path, 'rb') as f:
    magic = f.read(4)
  if magic != b'PK\x03\x04':
    raise errors.CheckpointError(
        f'{path}: not a .keras file (a .keras file is a zip archive; this one '
        f'starts with {magic!r}): save it with model.save("....keras")')
  try:
    return keras.models.load_model(path, compile=False)
  except (ValueError, TypeError, OSError) as err:
    raise errors.CheckpointError(f'{path}: cannot load this .keras file: '
                                 f'{_first_line(err)}') from err


def load_classifier_file(path: str) -> keras.Model:
  """A `.keras` file used as a classifier (trained, evaluated, a teacher):
  checked by `check_trainable_classifier`."""
  model = load_keras_file(path)
  check_trainable_classifier(model, path)
  return model


def check_job_models(model: config_lib.ModelConfig,
                     teacher: Optional[config_lib.TeacherConfig]) -> None:
  """Loads a `.keras` model or teacher file once to check it (not a `.keras`,
  ends in a softmax, other size or classes: CheckpointError / ConfigError
  naming the file); other references are checked when they load. A teacher
  whose class names are known must have the model's (ConfigError naming the
  teacher and the first class that differs)."""
  if teacher is not None:
    teacher_lib.check_class_names(teacher.path, teacher.model.class_names,
                                  model.class_names)
  if model_refs.name_kind(model.model_name) == model_refs.KERAS_FILE:
    build(model)
  if teacher is not None and model_refs.name_kind(
      teacher.path) == model_refs.KERAS_FILE:
    load_classifier_file(teacher.path)


def labels_images(path: str) -> bool:
  """True when `path` holds a model that can label images: a model folder or
  checkpoint of ours, a SavedModel, or an existing `.keras` file."""
  try:
    found = model_refs.kind(path)
  except errors.MissingFileError:
    return False
  return found in (model_refs.SAVED_MODEL, model_refs.CHECKPOINT) or (
      found == model_refs.KERAS_FILE and tf.io.gfile.exists(path))


def load_saved_model(path: str):
  """The SavedModel in folder `path` (`.signatures['serving_default']`, ...)."""
  try:
    return tf.saved_model.load(path)
  except (ValueError, OSError, tf.errors.OpError) as err:
    raise errors.CheckpointError(f'{path}: cannot load this SavedModel: '
                                 f'{_first_line(err)}') from None


# ---------------------------------------------------------------------------
# Building and restoring.
# ---------------------------------------------------------------------------
def build(config: config_lib.ModelConfig,
          name: Optional[str] = None) -> keras.Model:
  """The keras.Model of `config`: fresh, or the `.keras` file's (its weights).

  A `.keras` model_name must take the config's image size and classes.
  """
  if model_refs.name_kind(config.model_name) != model_refs.KERAS_FILE:
    return backbones.build_model(config, name=name)
  path = config.model_name
  model = load_classifier_file(path)
  shape = tuple(model.input_shape)
  classes = int(model.output_shape[-1])
  if shape[1:3] != (config.image_size, config.image_size) or (
      classes != config.num_classes):
    raise errors.ConfigError(
        f'{path} takes {shape[1]}x{shape[2]} images and predicts {classes} '
        f'classes, but the job needs {config.image_size}x{config.image_size} '
        f'and {config.num_classes} ({errors.field_name("image_size")}, '
        f'{errors.field_name("num_classes")})')
  return model


# Final operations that turn logits into probabilities (type or activation).
_PROBABILITY_OPS = ('softmax', 'sigmoid')


def _ends_in_probabilities(model: keras.Model) -> Optional[tuple[str, str]]:
  """(operation name, 'softmax' or 'sigmoid') when the model's output is made
  by one, else None.

  Follows the output back through nested models (a Sequential or a
  `keras.applications` model inside a functional one); `keras.ops.softmax` /
  `keras.ops.sigmoid` count as well as a Softmax layer or a layer whose
  activation is one of them.
  """
  operation = model
  for _ in range(100):  # nesting depth; a cycle is impossible
    if isinstance(operation, keras.Model):
      outputs = operation.outputs or []
      history = getattr(outputs[0], '_keras_history', None) if outputs else None
      inner = history.operation if history is not None else (
          operation.layers[-1] if operation.layers else None)
      if inner is None or inner is operation:
        return None
      operation = inner
      continue
    kind = type(operation).__name__.lower()  # the layer or keras.ops.*
    if kind in _PROBABILITY_OPS:
      return operation.name, kind
    activation = getattr(getattr(operation, 'activation', None), '__name__',
                         '')
    if activation in _PROBABILITY_OPS:
      return operation.name, activation
    return None
  return None


def check_trainable_classifier(model: keras.Model, path: str) -> None:
  """Refuses a file model that training, evaluation or labeling cannot use.

  They feed one float image batch [N, S, S, 3] and treat the one output
  [N, classes] as logits (they apply the softmax themselves; a softmax or a
  sigmoid in the file would squash them twice).

  Raises:
    ConfigError naming `path` and what does not fit.
  """
  if len(model.inputs) != 1 or len(model.outputs) != 1:
    raise errors.ConfigError(
        f'{path} has {len(model.inputs)} inputs and {len(model.outputs)} '
        'outputs; a classifier here takes one image batch and gives one '
        'logits tensor')
  shape = tuple(model.input_shape)
  if len(shape) != 4 or shape[-1] != 3:
    raise errors.ConfigError(
        f'{path} takes inputs of shape {shape}; images here are '
        '[batch, size, size, 3] (RGB)')
  if shape[1] is None or shape[2] is None or shape[1] != shape[2]:
    raise errors.ConfigError(
        f'{path} takes images of shape {shape[1:3]} (None: any size); '
        'training, evaluation, teachers and export here need one square '
        'size: save the model with a fixed input, e.g. '
        'keras.Input((224, 224, 3)) in front of it')
  if len(model.output_shape) != 2:
    raise errors.ConfigError(
        f'{path} gives outputs of shape {tuple(model.output_shape)}; a '
        'classifier here gives [batch, classes]')
  ending = _ends_in_probabilities(model)
  if ending:
    name, kind = ending
    raise errors.ConfigError(
        f'{path} ends in a {kind} ({name!r}); the model must give '
        f'logits: save the model without its final {kind} (e.g. '
        'keras.applications with classifier_activation=None)')


def _weights_kind(ref: str) -> str:
  """The kind of a reference that holds weights (not a name to build)."""
  kind = model_refs.name_kind(ref)
  if kind is None:
    kind = (model_refs.SAVED_MODEL if model_refs.is_saved_model(ref)
            else model_refs.CHECKPOINT)  # ours or TF1: checkpoints decides
  if kind in (model_refs.EFFICIENTNET, model_refs.KERAS_APPLICATION,
              model_refs.SAVED_MODEL):
    raise errors.CheckpointError(
        f'{ref}: a {kind.replace("_", " ")} holds no weights to restore into '
        'a model (expected a model_dir, a checkpoint, a .keras or a timm '
        '.safetensors file)')
  return kind


def reference_num_classes(ref: str) -> Optional[int]:
  """The classes of the classifier stored in `ref`, None when unknown."""
  kind = _weights_kind(ref)
  if kind == model_refs.KERAS_FILE:
    return int(load_keras_file(ref).output_shape[-1])
  if kind == model_refs.SAFETENSORS:
    infos, _ = safetensors_file.read_header(ref)
    head = infos.get('classifier.weight')
    return int(head.shape[0]) if head is not None else None
  saved = checkpoints.read_model_config(ref)
  if saved is not None:
    return saved.num_classes
  try:
    prefix = checkpoints.resolve_checkpoint(ref)
    shapes = dict(tf.train.list_variables(prefix))
  except (errors.CheckpointError, tf.errors.OpError, ValueError):
    return None
  heads = [shape for name, shape in shapes.items()
           if name.endswith('head/dense/kernel')]
  return int(heads[0][-1]) if len(heads) == 1 else None


def reference_class_names(ref: str) -> Optional[tuple[str, ...]]:
  """The class names a model reference records, None when unknown: a model
  folder's `model_config.json`, or an exported SavedModel's
  `assets/class_names.txt`."""
  if model_refs.is_saved_model(ref):
    return serving.read_class_names(ref)
  saved = checkpoints.read_model_config(ref)
  return saved.class_names if saved is not None else None


def _restore_same(model: keras.Model, ref: str, kind: str,
                  use_ema: bool) -> str:
  if kind == model_refs.KERAS_FILE:
    return checkpoints.copy_weights(load_keras_file(ref), model, ref)
  if kind == model_refs.SAFETENSORS:
    efficientnet.load_timm_weights(model, ref)
    return ref
  return checkpoints.restore_model_weights(model, ref, use_ema=use_ema)


def _classifier(model: keras.Model) -> keras.layers.Layer:
  """The model's last Dense layer (the classifier the logits come from)."""
  for layer in reversed(model.layers):
    if isinstance(layer, keras.layers.Dense):
      return layer
  raise errors.CheckpointError(f'{model.name}: no Dense classifier layer')


def restore(model: keras.Model, ref: str, *, use_ema: bool = True,
            config: Optional[config_lib.ModelConfig] = None,
            new_classifier_ok: bool = False) -> str:
  """Loads the weights of `ref` into `model`; returns what was read.

  `ref` is our checkpoint (a model_dir or prefix; a truncated latest
  checkpoint falls back to the previous one), an original TF1 checkpoint, a
  `.keras` file of the same architecture or a timm `.safetensors` state dict.

  With `new_classifier_ok` (fine-tuning: `--init_model_path`) a `ref` with
  another number of classes initialises everything but the classifier,
  which keeps its fresh initialisation (one log line says so); `config` is
  `model`'s architecture (needed to read a TF1 or timm file of the other
  class count).

  Raises:
    CheckpointError naming `ref` when nothing matches or shapes differ.
  """
  kind = _weights_kind(ref)
  own = int(model.output_shape[-1])
  theirs = reference_num_classes(ref) if new_classifier_ok else None
  if theirs is None or theirs == own:
    return _restore_same(model, ref, kind, use_ema)
  if kind == model_refs.KERAS_FILE:
    source = load_keras_file(ref)
  else:
    base = checkpoints.read_model_config(ref) or config
    if base is None:
      raise errors.CheckpointError(
          f'{ref}: has {theirs} classes, the model {own}; its architecture is '
          'needed to keep all but the classifier (pass the model config)')
    source = backbones.build_model(dataclasses.replace(
        base, num_classes=theirs, class_names=None, sync_batch_norm=False))
    _restore_same(source, ref, kind, use_ema)
  head = _classifier(model)
  source_head = _classifier(source)
  skip = {id(w) for w in head.weights}
  skip_source = {id(w) for w in source_head.weights}
  body = [w for w in model.weights if id(w) not in skip]
  source_body = [w for w in source.weights if id(w) not in skip_source]
  if len(body) != len(source_body) or any(
      tuple(a.shape) != tuple(b.shape) for a, b in zip(body, source_body)):
    raise errors.CheckpointError(
        f'{ref}: besides its classifier ({theirs} classes, the model {own}) '
        f'its weights do not fit the {model.name} model (another '
        'architecture?)')
  for target, value in zip(body, source_body):
    target.assign(value)
  logging.info('Initialised %d weights from %s; the classifier %s was '
               're-initialised (%d classes there, %d here)', len(body), ref,
               head.name, theirs, own)
  return ref


def load_model(ref: str, fallback: Optional[config_lib.ModelConfig] = None, *,
               use_ema: bool = True, name: Optional[str] = None,
               **overrides) -> keras.Model:
  """A keras.Model with the weights of a `.keras` file or a checkpoint.

  For checkpoints the architecture comes from `model_config.json` next to it
  (ours), else from `fallback`; `overrides` (e.g. image_size, num_classes,
  sync_batch_norm) replace fields of that config (None values are ignored).
  """
  if model_refs.name_kind(ref) == model_refs.KERAS_FILE:
    return load_classifier_file(ref)
  config = checkpoints.read_model_config(ref) or fallback
  if config is None:
    raise errors.CheckpointError(
        f'{ref}: no {layout.MODEL_CONFIG_FILE} next to the checkpoint; '
        f'pass the architecture (e.g. {errors.field_name("model_name")}, {errors.field_name("num_classes")})')
  overrides = {k: v for k, v in overrides.items() if v is not None}
  if overrides:
    config = dataclasses.replace(config, **overrides)
  model = backbones.build_model(config, name=name)
  restore(model, ref, use_ema=use_ema)
  return model


# ---------------------------------------------------------------------------
# Inference: evaluation, prediction, teachers.
# ---------------------------------------------------------------------------
def inference_config(ref: str, fallback: Optional[config_lib.ModelConfig],
                     image_size: Optional[int] = None
                     ) -> config_lib.ModelConfig:
  """The checkpoint's architecture (else `fallback`) at its inference size."""
  config = checkpoints.read_model_config(ref) or fallback
  if config is None:
    raise errors.CheckpointError(
        f'{ref}: no {layout.MODEL_CONFIG_FILE} next to the checkpoint; '
        f'pass the architecture (e.g. {errors.field_name("model_name")}, {errors.field_name("num_classes")})')
  return dataclasses.replace(
      config, sync_batch_norm=False,
      image_size=image_size or factory.inference_image_size(config))


class SavedModelTeacher:
  """A SavedModel called like a Keras model: `(images, training=False)` -> logits."""

  def __init__(self, classifier: classifier_lib.Classifier):
    self.classifier = classifier
    self.name = classifier.name

  def __call__(self, images, training=False):
    del training
    return self.classifier.logits(images)


def load_for_inference(ref: str, fallback: Optional[config_lib.ModelConfig],
                       strategy: Optional[tf.distribute.Strategy] = None, *,
                       image_size: Optional[int] = None,
                       small_image: Optional[bool] = None,
                       name: str = 'inference'):
  """(model with EMA weights, its ModelConfig at the inference size).

  The architecture is the checkpoint's own (model_config.json), else
  `fallback` (original TF1 checkpoints). A `.keras` file or a SavedModel
  records no small-image setting: `small_image`, else `fallback`'s, else
  False. `image_size` overrides the inference size
  (`factory.inference_image_size`); a `.keras` file or SavedModel runs at its
  own. A SavedModel comes back as a `SavedModelTeacher`.
  """
  strategy = strategy or tf.distribute.get_strategy()
  kind = model_refs.kind(ref)
  if small_image is None:
    small_image = bool(fallback and fallback.small_image)
  if kind == model_refs.SAVED_MODEL:
    classifier = load_classifier(ref)
    _check_own_size(ref, image_size, classifier.image_size)
    return SavedModelTeacher(classifier), config_lib.ModelConfig(
        model_name=ref, num_classes=classifier.num_classes,
        image_size=classifier.image_size, small_image=small_image)
  if kind == model_refs.KERAS_FILE:
    with strategy.scope():
      model = load_classifier_file(ref)
    size = int(model.input_shape[1])
    _check_own_size(ref, image_size, size)
    return model, config_lib.ModelConfig(
        model_name=ref, num_classes=int(model.output_shape[-1]),
        image_size=size, small_image=small_image)
  config = inference_config(ref, fallback, image_size)
  with strategy.scope():
    model = backbones.build_model(config, name=name)
    restore(model, ref, use_ema=True)
  return model, config


def _check_own_size(ref: str, asked: Optional[int], own: int) -> None:
  if asked not in (None, own):
    raise errors.ConfigError(
        f'{errors.field_name("image_size")}={asked}: {ref} takes '
        f'{own}x{own} images')


def _saved_model_classifier(path: str, name: str) -> classifier_lib.Classifier:
  loaded = load_saved_model(path)
  if 'serving_default' not in loaded.signatures:
    raise errors.CheckpointError(
        f'{path}: the SavedModel has no serving_default signature')
  signature = loaded.signatures['serving_default']
  input_name, input_spec = next(iter(
      signature.structured_input_signature[1].items()))
  outputs = signature.structured_outputs
  if 'logits' in outputs:
    output_key = 'logits'
  elif 'probabilities' in outputs:
    output_key = 'probabilities'
  else:
    raise errors.CheckpointError(
        f'{path}: serving_default returns {sorted(outputs)}; expected '
        '`logits` or `probabilities`')
  num_classes = int(outputs[output_key].shape[-1])
  image_size = input_spec.shape[1]
  if image_size is None:
    raise errors.CheckpointError(f'{path}: serving_default input '
                                 f'`{input_name}` has no fixed image size')

  def logits_fn(images):
    out = signature(**{input_name: images})[output_key]
    if output_key == 'probabilities':  # log-probabilities order like logits
      out = tf.math.log(tf.maximum(out, 1e-12))
    return out

  classifier = classifier_lib.Classifier(logits_fn, int(image_size),
                                         num_classes, name)
  classifier._saved_model = loaded  # keep the trackable alive
  return classifier


def weights_identity(ref: str) -> str:
  """What the weights of model reference `ref` are, without loading them:
  'sha256:<hex>' of the `.keras` file, of the latest checkpoint's `.index`
  (it holds a checksum of every tensor: ours or TF1), or of a SavedModel's
  `variables/variables.index`. Two references with the same identity hold
  the same weights; outputs made from one can be recognised.

  Raises:
    MissingFileError / CheckpointError naming `ref`.
  """
  kind = model_refs.kind(ref)
  if kind == model_refs.KERAS_FILE:
    path = ref
  elif kind == model_refs.SAVED_MODEL:
    path = os.path.join(ref, 'variables', 'variables.index')
  elif kind in (model_refs.CHECKPOINT, model_refs.TF1_CHECKPOINT):
    path = checkpoints.resolve_checkpoint(ref) + '.index'
  else:  # a model name: built fresh, no weights to identify
    return f'name:{ref}'
  return file_identity.sha256(path)


def tf1_fallback_config(model_name: str, *, num_classes: Optional[int] = None,
                        image_size: Optional[int] = None,
                        small_image: Optional[bool] = None,
                        mean_rgb=None, stddev_rgb=None
                        ) -> config_lib.ModelConfig:
  """The architecture of an original checkpoint: ImageNet unless overridden.

  Normalisation defaults to the ImageNet mean/std and the size to the model's
  eval resolution, as the original evaluation used.
  """
  return factory.model_config(
      datasets.get_builtin('imagenet'), model_name, num_classes=num_classes,
      image_size_override=image_size, small_image=small_image,
      mean_rgb=mean_rgb, stddev_rgb=stddev_rgb, for_eval=True)


def load_classifier(ref: str, *, model_name: Optional[str] = None,
                    num_classes: Optional[int] = None,
                    image_size: Optional[int] = None,
                    small_image: Optional[bool] = None,
                    mean_rgb=None, stddev_rgb=None,
                    use_ema: bool = True) -> classifier_lib.Classifier:
  """A classifier (images -> logits) from any model reference with weights.

  Args:
    ref: a `.keras` file, a SavedModel folder, a training `model_dir` /
      checkpoint prefix of ours, or an original TF1 checkpoint prefix.
    model_name .. stddev_rgb: the architecture of a TF1 checkpoint (ours carry
      it in model_config.json); `image_size` also resizes ours.
    use_ema: load the EMA weights of a checkpoint.

  Raises:
    CheckpointError / MissingFileError naming `ref` when it cannot be loaded.
  """
  name = os.path.basename(os.path.normpath(ref))
  if not (tf.io.gfile.exists(ref) or tf.io.gfile.exists(ref + '.index')):
    raise errors.MissingFileError(
        f'{ref}: no such model (a .keras file, a SavedModel folder, a '
        'model_dir or a checkpoint prefix)')
  if model_refs.kind(ref) == model_refs.SAVED_MODEL:
    return _saved_model_classifier(ref, name)
  fallback = None
  if model_name:
    fallback = tf1_fallback_config(
        model_name, num_classes=num_classes, image_size=image_size,
        small_image=small_image, mean_rgb=mean_rgb, stddev_rgb=stddev_rgb)
  model = load_model(ref, fallback, use_ema=use_ema, image_size=image_size)
  return classifier_lib.Classifier.from_keras(model, name=name)
