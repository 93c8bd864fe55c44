r"""CIFAR-10 arrays -> the 1,000-label subset as image folders.

  python local_scripts/cifar10_subset/prepare_subset.py --npz=cifar10.npz \
      --output_dir=data/cifar10_1k_images

--npz holds uint8 `x_train` [N, 32, 32, 3], `y_train` [N] (0-9), `x_test`,
`y_test` (e.g. `np.savez(path, *keras.datasets.cifar10.load_data())` keys
renamed, or any subset of CIFAR-10). Per class (numpy default_rng(--seed)):
100 images -> train/<class>/, the next 20 -> dev/<class>/, the rest ->
unlabeled/ (no class folder: their labels are dropped); x_test ->
test/<class>/. run.sh turns the folders into shards with
data.images_to_tfrecord, as a user's own photos would be.
"""

import argparse
import os

import numpy as np
from PIL import Image

CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog',
           'horse', 'ship', 'truck')


def split_indices(labels: np.ndarray, per_class_train: int,
                  per_class_dev: int, seed: int) -> dict:
  """{'train', 'dev', 'unlabeled'} -> indices into the training arrays."""
  rng = np.random.default_rng(seed)
  parts = {'train': [], 'dev': [], 'unlabeled': []}
  for c in range(len(CLASSES)):
    idx = np.flatnonzero(labels == c)
    idx = idx[rng.permutation(len(idx))]
    parts['train'].append(idx[:per_class_train])
    parts['dev'].append(idx[per_class_train:per_class_train + per_class_dev])
    parts['unlabeled'].append(idx[per_class_train + per_class_dev:])
  return {name: np.sort(np.concatenate(p)) for name, p in parts.items()}


def _save(image: np.ndarray, path: str) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  temp = path + '.tmp.png'
  Image.fromarray(image).save(temp)
  os.replace(temp, path)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--npz', required=True)
  parser.add_argument('--output_dir', required=True)
  parser.add_argument('--per_class_train', type=int, default=100)
  parser.add_argument('--per_class_dev', type=int, default=20)
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args()
  arrays = np.load(args.npz)
  x_train, y_train = arrays['x_train'], arrays['y_train'].reshape(-1)
  x_test, y_test = arrays['x_test'], arrays['y_test'].reshape(-1)
  split = split_indices(y_train, args.per_class_train, args.per_class_dev,
                        args.seed)
  for name in ('train', 'dev'):
    for i in split[name]:
      _save(x_train[i], os.path.join(args.output_dir, name,
                                     CLASSES[y_train[i]], f'{i:05d}.png'))
  for i in split['unlabeled']:
    _save(x_train[i], os.path.join(args.output_dir, 'unlabeled',
                                   f'{i:05d}.png'))
  for i, (image, label) in enumerate(zip(x_test, y_test)):
    _save(image, os.path.join(args.output_dir, 'test', CLASSES[label],
                              f'{i:05d}.png'))
  print({name: len(idx) for name, idx in split.items()} | {'test': len(y_test)})


if __name__ == '__main__':
  main()
