"""SavedModel and .keras export of a trained model's EMA weights.

`export(model_dir, export_dir)` writes the SavedModel to `export_dir` and, by
default, the same model as a `.keras` file beside it, `<export_dir>.keras`
(docs/serving.md). The SavedModel is the model zoo's serving export
(`efficientnet/saved_model.py`, shared with the checkpoint converter) with
this project's serving view (`preprocessing.preprocess_for_serving`: the
eval centre crop + bicubic resize, or for small-image (32x32) models the
whole image resized bicubically to S). Its two signatures:
* `serving_default`: `images` float32 [N, S, S, 3], pixels 0-255, already
  cropped/resized to S (the model's image size) -> `probabilities` float32
  [N, C], `classes` int64 [N], `logits` float32 [N, C], and `class_names`
  string [N] (each row's class name) when the names are known;
* `serving_bytes`: `image_bytes` string [N] of encoded JPEG/PNG/GIF/BMP files
  of any size, grayscale, RGB or RGBA -> the same outputs plus `valid` bool
  [N]. An element that cannot be classified (empty, not a JPEG/PNG/GIF/BMP,
  cut short, corrupt, or stating more than MAX_SERVING_PIXELS in its
  header) gets `valid` False, `classes` -1, zero probabilities and logits
  and the name '', and the others are classified. An empty batch gives
  empty outputs.
The class names are the training data's (`model_config.json`), else
ImageNet's wnids for a 1000-class head (`export_class_names`); known names
are also the asset `assets/class_names.txt` (line i: class i).
Both files are written from `portable_model(model)`: an EfficientNet is
rebuilt from built-in Keras layers (`efficientnet.to_portable`), so the
`.keras` file loads with `keras.saving.load_model` alone, like the
SavedModel needs no project code.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import keras

from data import label_maps
from data import layout
from data import writers
import efficientnet
from efficientnet import saved_model as serving
from noisy_student.augment import preprocessing
from noisy_student.runtime import errors
from noisy_student.core import factory
from noisy_student.models import checkpoints
from noisy_student.models import loading

# The serving code is the model zoo's (efficientnet/saved_model.py), shared
# with the converter; these names stay here for callers of this module.
looks_whole = serving.looks_whole
header_pixels = serving.header_pixels
MAX_SERVING_PIXELS = serving.MAX_SERVING_PIXELS
CLASS_NAMES_FILE = serving.CLASS_NAMES_FILE
read_class_names = serving.read_class_names
IMAGENET_NUM_CLASSES = 1000


def export_class_names(num_classes: int,
                       known: Optional[Sequence[str]] = None
                       ) -> Optional[tuple[str, ...]]:
  """The class names an export carries: `known` (the training data's), else
  the ImageNet wnids for a 1000-class head, else None (unknown)."""
  if known:
    return tuple(known)
  if num_classes == IMAGENET_NUM_CLASSES:
    return label_maps.imagenet_wnids()
  return None


def _view(small_image: bool):
  """The serving view: this project's preprocessing (its evaluation view)."""
  def view(image, size):
    return preprocessing.preprocess_for_serving(image, size,
                                                small_image=small_image)
  return view


def build_archive(model: keras.Model, small_image: bool,
                  class_names_file: Optional[str] = None
                  ) -> keras.export.ExportArchive:
  """A Keras ExportArchive with `serving_default` and `serving_bytes`
  (`efficientnet.saved_model.build_archive` with this project's view)."""
  return serving.build_archive(model, view=_view(small_image),
                               class_names_file=class_names_file)


def export_saved_model(model: keras.Model, export_dir: str, *,
                       small_image: bool, protect: Sequence[str] = (),
                       class_names: Optional[Sequence[str]] = None) -> str:
  """Writes the SavedModel atomically to `export_dir`; returns the path.

  `export_dir` is replaced whole only when it is new, empty or an export of
  this project, and contains none of `protect` (writers.replace_dir).
  `class_names` (else ImageNet's for 1000 classes: `export_class_names`)
  become `assets/class_names.txt` and the `class_names` outputs.
  """
  names = export_class_names(int(model.output_shape[-1]), class_names)
  return serving.export_saved_model(
      model, export_dir, protect, view=_view(small_image), class_names=names,
      name=errors.field_name('export_dir'))


def check_keras_path(path: str) -> None:
  """Raises ConfigError unless `path` ends in .keras (what Keras 3 saves)."""
  if not layout.is_keras_file(path):
    raise errors.ConfigError(
        f'{errors.field_name("export_keras_path")} must end in .keras, received: {path}')


def portable_model(model: keras.Model) -> keras.Model:
  """`model` without this project's classes, for export.

  A model using `efficientnet`'s layers (and no other custom classes) is
  rebuilt from built-in Keras layers by `efficientnet.to_portable`: same
  names, weights and outputs, no stochastic depth. Others (`keras:`
  backbones, a user's own `.keras` classifier) are returned as they are.
  """
  used = efficientnet.custom_objects(model)
  if used and all(name.startswith('efficientnet.') for name in used):
    return efficientnet.to_portable(model)
  return model


def export_keras(model: keras.Model, path: str) -> str:
  """Saves `portable_model(model)` atomically (`path` must end in .keras)."""
  check_keras_path(path)
  model = portable_model(model)
  with writers.atomic_path(path, suffix=layout.KERAS_SUFFIX) as tmp:
    model.save(tmp)
  return path


def export(model_dir: str, export_dir: str, *,
           keras_path: Optional[str] = None,
           checkpoint_path: Optional[str] = None) -> dict:
  """Exports the EMA weights of the latest (or given) checkpoint of `model_dir`.

  The exported model runs at the inference size
  (`factory.inference_image_size`).

  Args:
    model_dir: a model_dir written by training (model_config.json + checkpoints).
    export_dir: the SavedModel folder (replaced whole when new, empty or an
      earlier export; never when it holds other files or the model_dir).
    keras_path: the `.keras` file; None: `layout.keras_file_beside(export_dir)`;
      '': none.
    checkpoint_path: a checkpoint other than the latest in `model_dir`.

  Returns:
    {'checkpoint': prefix, 'saved_model': export_dir, 'keras': path (when written)}.
  """
  if keras_path is None:
    keras_path = layout.keras_file_beside(export_dir)
  if keras_path:
    check_keras_path(keras_path)
  protect = [model_dir] + ([checkpoint_path] if checkpoint_path else [])
  writers.check_replaceable_dir(export_dir, protect)  # before any work
  config = checkpoints.read_model_config(model_dir)
  if config is None:
    raise errors.CheckpointError(
        f'{model_dir}: no {layout.MODEL_CONFIG_FILE}; is this a model_dir '
        'written by training (main --mode=train, ns.train)?')
  config = dataclasses.replace(config, sync_batch_norm=False,
                               image_size=factory.inference_image_size(config))
  model = loading.build(config, name='exported')
  prefix = loading.restore(model, checkpoint_path or model_dir, use_ema=True)
  model = portable_model(model)  # one network for both files
  outputs = {'checkpoint': prefix,
             'saved_model': export_saved_model(model, export_dir,
                                               small_image=config.small_image,
                                               protect=protect,
                                               class_names=config.class_names)}
  if keras_path:
    outputs['keras'] = export_keras(model, keras_path)
  return outputs
