"""Filter inputs as `main --mode=predict` writes them, for the filter tests.

`write_inputs(root)` writes NUM_SHARDS unlabeled shards of unique 4x4 PNGs,
their prediction files (uneven classes: class 3 is scarce) and info files.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
import tensorflow as tf

from data import layout
from data import records
from data import writers
from noisy_student.pseudo import filter_files
from noisy_student.pseudo import filter_passes
from noisy_student.pseudo import selection

NUM_CLASSES = 4
NUM_SHARDS = 3
PER_SHARD = 50


def png(index: int) -> bytes:
  """A unique 4x4 PNG per index, so every output image traces to its source."""
  pixels = np.zeros((4, 4, 3), np.uint8)
  pixels[0, 0] = [index % 256, index // 256 % 256, 7]
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format='PNG')
  return buffer.getvalue()


def probabilities(rng: np.random.Generator, n: int) -> np.ndarray:
  """Softmax rows whose class frequencies are uneven (class 3 is scarce)."""
  labels = rng.choice(NUM_CLASSES, size=n, p=[0.4, 0.3, 0.25, 0.05])
  top = rng.uniform(0.26, 1.0, size=n).astype(np.float32)
  probs = np.zeros((n, NUM_CLASSES), np.float32)
  rest = (1.0 - top) / (NUM_CLASSES - 1)
  probs[:] = rest[:, None]
  probs[np.arange(n), labels] = top
  return probs


def write_inputs(root: str, total_replicas: int = 1, seed: int = 0):
  """Unlabeled shards + prediction files + info files as --mode=predict would.

  Returns {(shard, record index in shard): (png bytes, probabilities)}.
  """
  rng = np.random.default_rng(seed)
  truth = {}
  for shard in range(NUM_SHARDS):
    images = [png(shard * PER_SHARD + i) for i in range(PER_SHARD)]
    writers.write_records(
        layout.shard_path(f'{root}/unl', 'extra', shard, NUM_SHARDS),
        [records.serialize_unlabeled(img) for img in images])
    probs = probabilities(rng, PER_SHARD)
    for i in range(PER_SHARD):
      truth[(shard, i)] = (images[i], probs[i])
    for task in range(total_replicas):
      mine = list(range(task, PER_SHARD, total_replicas))
      writers.write_records(
          layout.prediction_path(f'{root}/pred', shard, NUM_SHARDS, task),
          [records.serialize_prediction(probs[i]) for i in mine])
      writers.write_json(layout.info_path(f'{root}/info', shard, NUM_SHARDS,
                                           task), {'image_num': len(mine)})
  return truth


def filter_config(root: str, **settings) -> filter_files.FilterConfig:
  total_replicas = settings.pop('total_replicas', 1)
  buffer = settings.pop('shuffle_buffer_bytes', 512 << 20)
  base = dict(num_label_classes=NUM_CLASSES, num_image=30, min_threshold=0.5)
  base.update(settings)
  return filter_files.FilterConfig(
      input_dir=f'{root}/unl', prediction_dir=f'{root}/pred',
      info_dir=f'{root}/info', output_dir=f'{root}/out',
      settings=selection.Settings(**base), file_prefix='extra',
      num_shards=NUM_SHARDS, total_replicas=total_replicas,
      num_samples_per_class=2, shuffle_buffer_bytes=buffer, batch_size=16)


def run_both(config: filter_files.FilterConfig) -> dict:
  filter_passes.run_pass(config, config.units, only_get_stats=True)
  return filter_passes.run_pass(config, config.units, only_get_stats=False)


def read_output(config: filter_files.FilterConfig) -> list[dict]:
  out = []
  for shard, task in config.units:
    path = filter_files.output_shard_path(config, shard, task)
    for serialized in tf.data.TFRecordDataset(path).as_numpy_iterator():
      out.append(records.read_example(serialized))
  return out


def source_of(truth):
  return {img: key for key, (img, _) in truth.items()}
