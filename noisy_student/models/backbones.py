"""Building the network a `ModelConfig` describes, for every kind of model.

`build_model(config)` returns a `keras.Model` mapping float32 images
[N, S, S, 3] in 0-255 to float32 logits [N, num_classes]; training,
checkpoints, EMA, export and prediction only ever see that model. Kinds, by
`config.model_name`:

* `efficientnet-b0` ... `-l2`: this project's EfficientNet (the default; the
  only family with the original TF1 checkpoints). Noise: dropout before the
  classifier (`dropout_rate`) and stochastic depth (`stochastic_depth_rate`).
* `keras:<name>`: a `keras.applications` backbone, randomly initialised
  (e.g. `keras:ResNet50`, `keras:MobileNetV3Small`), without its top, after a
  (x - mean_rgb) / stddev_rgb normalisation and followed by global average
  pooling, dropout (`dropout_rate`, default 0.2) and a dense layer. Stochastic
  depth is the backbone's own where it has one (keras' EfficientNet B0-B7
  keep their built-in 0.2); `stochastic_depth_rate` cannot set it.
A `.keras` model_name (a classifier file: that model, its weights as the
start) is read by `noisy_student.models.loading.build`, the one loader.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Optional

from absl import logging
import keras

import efficientnet
from noisy_student.core import config as config_lib
from noisy_student.runtime import errors
from noisy_student.core import model_refs

# Head dropout of keras.applications backbones when the config leaves it None.
KERAS_DEFAULT_DROPOUT = 0.2


def build_model(config: config_lib.ModelConfig,
                name: Optional[str] = None) -> keras.Model:
  """The freshly initialised keras.Model of a named `config`.

  Raises:
    ConfigError for a `.keras` model_name (`loading.build` reads files).
  """
  kind = model_refs.name_kind(config.model_name)
  if kind == model_refs.KERAS_FILE:
    raise errors.ConfigError(
        f'{config.model_name}: a .keras file is read by loading.build, not '
        'built')
  if kind == model_refs.KERAS_APPLICATION:
    return _keras_application(config, name)
  # `ModelConfig`'s fields are `efficientnet.build_model`'s arguments, but
  # for the class names (they name the logits, they do not shape them).
  arguments = dataclasses.asdict(config)
  del arguments['class_names']
  return efficientnet.build_model(**arguments, name=name)


def _keras_application(config: config_lib.ModelConfig,
                       name: Optional[str]) -> keras.Model:
  app_name = config.model_name[len(model_refs.KERAS_PREFIX):]
  constructor = model_refs.keras_application(app_name)
  size = config.image_size
  options = dict(include_top=False, weights=None, input_shape=(size, size, 3),
                 pooling='avg')
  if 'include_preprocessing' in inspect.signature(constructor).parameters:
    options['include_preprocessing'] = False  # normalised below instead
  if config.stochastic_depth_rate:
    logging.warning('%s: stochastic_depth_rate=%s is not applied (keras.'
                    'applications backbones keep their own, if any)',
                    config.model_name, config.stochastic_depth_rate)
  if config.width_coefficient or config.depth_coefficient:
    raise errors.ConfigError(
        f'{errors.field_name("width_coefficient")} / {errors.field_name("depth_coefficient")} only scale EfficientNets, '
        f'not {config.model_name}')
  images = keras.Input((size, size, 3), name='images')
  mean = config.mean_rgb or efficientnet.IMAGENET_MEAN_RGB
  std = config.stddev_rgb or efficientnet.IMAGENET_STDDEV_RGB
  x = keras.layers.Normalization(mean=list(mean),
                                 variance=[s * s for s in std],
                                 name='normalize')(images)
  try:
    features = constructor(**options)(x)
  except ValueError as err:
    raise errors.ConfigError(
        f'{config.model_name} cannot take {size}x{size} images '
        f'({errors.field_name("image_size")}): {str(err).splitlines()[0]}') from None
  rate = (KERAS_DEFAULT_DROPOUT if config.dropout_rate is None
          else config.dropout_rate)
  x = keras.layers.Dropout(rate, name='head_dropout')(features)
  logits = keras.layers.Dense(config.num_classes, dtype='float32',
                              name='logits')(x)
  return keras.Model(images, logits, name=name or app_name)
