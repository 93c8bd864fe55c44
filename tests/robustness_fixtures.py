"""Builders for the robustness tests: real photos, TFRecords, tiny models."""

from __future__ import annotations

import io
import os
from typing import Sequence

import keras
import numpy as np
from PIL import Image
import skimage.data

from data import make_perturbed
from data import records
from data import writers
from noisy_student.models import classifier as classifier_lib


def photo(name: str = 'chelsea', size: tuple[int, int] | None = None
          ) -> np.ndarray:
  """A scikit-image photo (always available), uint8 [H, W, 3], resized."""
  image = getattr(skimage.data, name)()
  if size is not None:
    image = np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC))
  return image


def photos(size: tuple[int, int] = (48, 40)) -> list[np.ndarray]:
  return [photo(n, size) for n in ('chelsea', 'coffee', 'rocket',
                                   'astronaut')]


def save_image(path: str, image: np.ndarray) -> str:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(image).save(path)
  return path


def encode_png(image: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format='PNG')
  return buffer.getvalue()


def write_video(path, frames, codec='libx264'):
  """An .mp4 written with PyAV (data.make_perturbed's encoder), like the
  published ImageNet-P files (lossy yuv420p by default)."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(make_perturbed.encode_mp4(np.asarray(frames, np.uint8), codec))
  return str(path)


def write_labeled(directory: str, images: Sequence[np.ndarray],
                  labels: Sequence[int], split: str = 'test',
                  num_shards: int = 1) -> str:
  """Writes PNG images as labeled TFRecords; returns the file pattern."""
  serialized = [records.serialize_labeled(encode_png(i), int(l))
                for i, l in zip(images, labels)]
  writers.write_sharded(serialized, directory, split, num_shards,
                        overwrite=True)
  return os.path.join(directory, f'{split}-*')


def digits(n: int = 40, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """scikit-learn digits as uint8 [n, 32, 32, 3] (4x nearest), and labels."""
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  data = datasets.load_digits()
  small = np.clip(data.images[offset:offset + n] / 16.0 * 255, 0, 255)
  big = np.kron(small, np.ones((4, 4))).astype(np.uint8)
  return np.repeat(big[..., None], 3, -1), data.target[offset:offset + n]


def constant_classifier(logits: Sequence[float], image_size: int = 32,
                        name: str = 'constant') -> classifier_lib.Classifier:
  """A Keras model whose logits are `logits` for every image."""
  inputs = keras.Input((image_size, image_size, 3))
  pooled = keras.layers.GlobalAveragePooling2D()(inputs)
  outputs = keras.layers.Dense(
      len(logits), kernel_initializer='zeros',
      bias_initializer=keras.initializers.Constant(np.asarray(logits)))(pooled)
  return classifier_lib.Classifier.from_keras(
      keras.Model(inputs, outputs, name=name))


def brightness_classifier(num_classes: int = 10, image_size: int = 32,
                          name: str = 'brightness'
                          ) -> classifier_lib.Classifier:
  """logits_k = w_k * (mean pixel - 127.5), w = linspace(1, -1).

  Bright images rank the classes 0, 1, ..., dark ones the reverse order, so a
  white <-> black change flips the top-1 and reverses the whole ranking.
  """
  weights = np.linspace(1.0, -1.0, num_classes)
  inputs = keras.Input((image_size, image_size, 3))
  pooled = keras.layers.GlobalAveragePooling2D()(inputs)
  kernel = np.tile(weights / 3.0, (3, 1))
  outputs = keras.layers.Dense(
      num_classes, kernel_initializer=keras.initializers.Constant(kernel),
      bias_initializer=keras.initializers.Constant(-127.5 * weights))(pooled)
  return classifier_lib.Classifier.from_keras(
      keras.Model(inputs, outputs, name=name))
