"""Trains the same tiny job on one device and on 2 mirrored logical CPUs.

Run as `python -m tests.noisy_student.training.mirrored_equivalence DATA_DIR OUT_DIR`
(a fresh process: logical devices must be configured before TensorFlow
starts). Prints the largest absolute weight difference as `MAX_DIFF <value>`,
and `PER_IMAGE <labels equal> <predictions agreeing> <accuracies match>` from
per-image evaluation of the test split under both strategies.
Dropout and stochastic depth are off and BatchNorm is synchronized, so both
runs compute the same function of the same global batch.
"""

import sys

import numpy as np
import tensorflow as tf

from data import layout
from noisy_student.training import distribute
from noisy_student.training import evaluation
from noisy_student.training import controller as controller_lib
from noisy_student.training import trainer as trainer_lib
from tests import helpers


def main(data_dir: str, out_dir: str) -> None:
  devices = distribute.split_cpu(2)
  tf.config.experimental.enable_op_determinism()
  model = helpers.tiny_model(dropout_rate=0.0, stochastic_depth_rate=0.0,
                             sync_batch_norm=True)
  weights, per_image, accuracies_match = [], [], []
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
    # 7 images per global batch of 4: replica slices and masked padding.
    result = evaluation.evaluate_files(
        trainer.model, strategy, layout.find_shards(data_dir, 'test'),
        image_size=32, small_image=True, global_batch=4, per_image=True)
    per_image.append(result['per_image'])
    image = result['per_image']
    accuracies_match.append(
        len(image['label']) == result['num_images'] and
        abs(float((image['label'] == image['predicted']).mean()) -
            result['top_1_accuracy']) < 1e-9)
  diffs = [float(np.max(np.abs(a - b))) for a, b in zip(*weights)]
  moved = max(float(np.max(np.abs(a))) for a in weights[0])
  print(f'MAX_DIFF {max(diffs):.3e} NUM_WEIGHTS {len(diffs)} MAX_ABS {moved:.3e}')
  one, two = per_image
  print(f'PER_IMAGE {int(np.array_equal(one["label"], two["label"]))} '
        f'{float((one["predicted"] == two["predicted"]).mean()):.4f} '
        f'{int(all(accuracies_match))}')


if __name__ == '__main__':
  main(sys.argv[1], sys.argv[2])
