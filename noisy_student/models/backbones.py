"""Building the network a `ModelConfig` describes.

One function, `build_model(config)`, for every kind of model the project
trains; everything else (training, checkpoints, export, prediction) only sees
the `keras.Model` it returns: float32 images [N, S, S, 3] in 0-255 ->
float32 logits [N, num_classes].
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import keras

import efficientnet
from noisy_student.core import config as config_lib


def build_model(config: config_lib.ModelConfig,
                name: Optional[str] = None) -> keras.Model:
  """The keras.Model of `config` (freshly initialised).

  `ModelConfig`'s fields are `efficientnet.build_model`'s arguments.
  """
  return efficientnet.build_model(**dataclasses.asdict(config), name=name)
