"""Trains the same tiny job on one device and on 2 mirrored logical CPUs.

Run as `python -m tests.noisy_student.training.mirrored_equivalence DATA_DIR OUT_DIR`
(a fresh process: logical devices must be configured before TensorFlow
starts). Prints the largest absolute weight difference as `MAX_DIFF <value>`.
Dropout and stochastic depth are off and BatchNorm is synchronized, so both
runs compute the same function of the same global batch.
"""

import sys

import numpy as np
import tensorflow as tf

from noisy_student.training import distribute
from noisy_student.training import controller as controller_lib
from noisy_student.training import trainer as trainer_lib
from tests import helpers


def main(data_dir: str, out_dir: str) -> None:
  devices = distribute.split_cpu(2)
  tf.config.experimental.enable_op_determinism()
  model = helpers.tiny_model(dropout_rate=0.0, stochastic_depth_rate=0.0,
                             sync_batch_norm=True)
  weights = []
  for name, strategy in (
      ('single', tf.distribute.OneDeviceStrategy(devices[0])),
      ('mirrored', tf.distribute.MirroredStrategy(devices))):
    tf.keras.utils.set_random_seed(0)
    cfg = helpers.experiment(f'{out_dir}/{name}', data_dir, steps=6,
                             batch=16, model=model,
                             train_changes=dict(iterations_per_loop=3))
    trainer = trainer_lib.Trainer(cfg, strategy)
    assert trainer.num_replicas == (1 if name == 'single' else 2)
    controller_lib.Controller(trainer).train()
    weights.append([w.numpy() for w in trainer.model.weights] +
                   [s.numpy() for s in trainer.ema.shadows])
  diffs = [float(np.max(np.abs(a - b))) for a, b in zip(*weights)]
  moved = max(float(np.max(np.abs(a))) for a in weights[0])
  print(f'MAX_DIFF {max(diffs):.3e} NUM_WEIGHTS {len(diffs)} MAX_ABS {moved:.3e}')


if __name__ == '__main__':
  main(sys.argv[1], sys.argv[2])
