r"""How often one seed's teacher labelled the unlabeled images right.

The unlabeled folder has no classes, but `prepare_split.py` recorded where
each of its images came from (`split.json`: `unlabeled/u00000.jpg` ->
`train/ship/4644.jpg`), and every converter and the filter copy the image
bytes unchanged; so each prediction and each kept pseudo-label can be traced
to its true class by its bytes.

  python local_scripts/cifar10_4k/pseudo_label_accuracy.py \
      --data_root=data/cifar10_4k --seed_dir=runs/cifar10_4k/seed_0

writes `<seed_dir>/pseudo_label_accuracy.json`: the teacher's top-1 accuracy
on all unlabeled images, and on the filtered, balanced set the student trains
on (per record, duplicates included, and per distinct image; per class).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', '..'))
# First: TensorFlow's start-up banner filtered, as in the binaries.
from noisy_student.runtime import quiet  # noqa: E402  pylint: disable=wrong-import-position
quiet.install()
from data import layout  # noqa: E402  pylint: disable=wrong-import-position
from data import records  # noqa: E402  pylint: disable=wrong-import-position
from data import writers  # noqa: E402  pylint: disable=wrong-import-position


def _digest(image: bytes) -> str:
  return hashlib.sha1(image).hexdigest()


def true_classes(images_dir: str, class_names: list[str]) -> dict[str, int]:
  """{sha1 of an unlabeled image's bytes: its true class index}."""
  with open(os.path.join(images_dir, 'split.json')) as f:
    sources = json.load(f)['sources']
  index = {name: i for i, name in enumerate(class_names)}
  truth = {}
  for name, source in sources.items():
    if name.startswith('unlabeled/'):
      with open(os.path.join(images_dir, name), 'rb') as f:
        truth[_digest(f.read())] = index[source.split('/')[1]]
  return truth


def _read(path: str):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  for serialized in tf.data.TFRecordDataset(path).as_numpy_iterator():
    yield records.read_example(serialized)


def _accuracy(pairs: list[tuple[int, int]], num_classes: int) -> dict:
  """pairs: (predicted, true) -> overall and per-class (by true class)."""
  predicted = np.array([p for p, _ in pairs], np.int64)
  true = np.array([t for _, t in pairs], np.int64)
  per_class = [float(np.mean(predicted[true == c] == c)) if np.any(true == c)
               else None for c in range(num_classes)]
  return {'count': len(pairs),
          'accuracy': float(np.mean(predicted == true)) if pairs else None,
          'per_true_class': per_class}


def measure(data_root: str, seed_dir: str) -> dict:
  with open(os.path.join(data_root, 'proc', 'dataset_info.json')) as f:
    class_names = json.load(f)['class_names']
  truth = true_classes(os.path.join(data_root, 'images'), class_names)
  unlabeled = os.path.join(data_root, 'unlabeled')
  shards = layout.find_shards(unlabeled, 'extra')
  rounds = layout.RoundDirs(seed_dir)
  predictions = rounds.predict(1).predictions
  everything = []
  for shard, path in enumerate(shards):
    predicted = _read(layout.prediction_path(predictions, shard, len(shards),
                                             0))
    for image, prediction in zip(_read(path), predicted, strict=True):
      everything.append((int(np.argmax(prediction[records.PROBABILITIES_KEY])),
                         truth[_digest(image[records.IMAGE_KEY])]))
  kept, distinct = [], {}
  filtered = rounds.filter(1).data
  for path in sorted(layout.find_shards(filtered, layout.FILTERED_PREFIX)):
    for record in _read(path):
      digest = _digest(record[records.IMAGE_KEY])
      pair = (int(record[records.PSEUDO_LABEL_KEY][0]), truth[digest])
      kept.append(pair)
      distinct[digest] = pair
  return {'unlabeled_images': _accuracy(everything, len(class_names)),
          'kept_records': _accuracy(kept, len(class_names)),
          'kept_distinct_images': _accuracy(list(distinct.values()),
                                            len(class_names)),
          'class_names': class_names}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--data_root', required=True,
                      help='run.sh\'s DATA_ROOT (images/, proc/, unlabeled/)')
  parser.add_argument('--seed_dir', required=True,
                      help='<WORK_DIR>/seed_<N> of a finished seed')
  args = parser.parse_args(argv)
  result = measure(args.data_root, args.seed_dir)
  path = os.path.join(args.seed_dir, 'pseudo_label_accuracy.json')
  writers.write_json(path, result)
  print(f'{path}: teacher top-1 on the {result["unlabeled_images"]["count"]} '
        f'unlabeled images {100 * result["unlabeled_images"]["accuracy"]:.2f}%; '
        f'on the {result["kept_records"]["count"]} kept records '
        f'{100 * result["kept_records"]["accuracy"]:.2f}% '
        f'({result["kept_distinct_images"]["count"]} distinct images: '
        f'{100 * result["kept_distinct_images"]["accuracy"]:.2f}%)')
  return 0


if __name__ == '__main__':
  sys.exit(main())
