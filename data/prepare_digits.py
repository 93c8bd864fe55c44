r"""The embedded demo dataset: scikit-learn's bundled handwritten digits.

  python -m data.prepare_digits --output_dir=data/digits

`sklearn.datasets.load_digits()` ships 1,797 8x8 grayscale digits (values
0..16) inside the scikit-learn wheel, so no network is needed. Each image is
converted exactly as: uint8 = round(v * 255 / 16), PIL bilinear resize to
32x32, gray replicated to RGB. After a seeded shuffle the splits are
  test 400 / dev 200 / train (labeled) 300 / unlabeled 897
(the sizes of the `digits` task in noisy_student/tasks.py), written as PNG
TFRecords in the layout of the other datasets:
  <out>/train-0000i-of-00004, dev-…-of-00002, test-…-of-00002,
  <out>/unlabeled/extra-…-of-00008 (true labels kept for diagnostics),
  <out>/dataset_info.json.
"""

from __future__ import annotations

import os

from absl import app
from absl import flags
import numpy as np
from PIL import Image

from data import image_codec
from data import records
from data import writers

SPLITS = (('test', 400, 2), ('dev', 200, 2), ('train', 300, 4),
          ('extra', 897, 8))  # (name, images, shards), in shuffled order
IMAGE_SIZE = 32
NUM_CLASSES = 10


def digit_images() -> tuple[np.ndarray, np.ndarray]:
  """All 1,797 digits as uint8 [N, 32, 32, 3] and labels int64 [N]."""
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  digits = load_digits()
  images = []
  for image in digits.images:
    small = np.round(image * 255.0 / 16.0).astype(np.uint8)
    big = Image.fromarray(small).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
    images.append(np.repeat(np.asarray(big)[..., None], 3, axis=-1))
  return np.stack(images), digits.target.astype(np.int64)


def prepare_digits(output_dir: str, seed: int = 0, overwrite: bool = False) -> dict:
  """Writes the digits TFRecords (idempotent); returns the split sizes."""
  info_path = os.path.join(output_dir, 'dataset_info.json')
  expected = {name: count for name, count, _ in SPLITS}
  if not overwrite and os.path.exists(info_path):
    import json  # pylint: disable=g-import-not-at-top
    with open(info_path) as f:
      info = json.load(f)
    if info.get('seed') == seed and info.get('counts') == expected:
      return expected
  images, labels = digit_images()
  order = np.random.default_rng(seed).permutation(len(images))
  images, labels = images[order], labels[order]
  start = 0
  for name, count, shards in SPLITS:
    part = slice(start, start + count)
    start += count
    encoded = [image_codec.encode(im) for im in images[part]]
    if name == 'extra':
      recs = [records.serialize_unlabeled(e, int(l))
              for e, l in zip(encoded, labels[part])]
      directory = os.path.join(output_dir, 'unlabeled')
    else:
      recs = [records.serialize_labeled(e, int(l))
              for e, l in zip(encoded, labels[part])]
      directory = output_dir
    writers.write_sharded(recs, directory, name, shards, overwrite=True)
  writers.write_json(info_path, {
      'source': 'sklearn.datasets.load_digits', 'seed': seed,
      'counts': expected, 'image_size': IMAGE_SIZE, 'image_format': 'png',
      'num_classes': NUM_CLASSES,
      'conversion': 'round(v*255/16) -> PIL bilinear 32x32 -> gray to RGB'})
  return expected


FLAGS = flags.FLAGS


def define_flags() -> None:
  """Binary flags (not defined on import: the demo imports this module)."""
  flags.DEFINE_string('output_dir', 'data/digits', 'Where to write the shards.')
  flags.DEFINE_integer('seed', 0, 'Shuffle seed of the split assignment.')
  flags.DEFINE_bool('overwrite', False, 'Rewrite existing shards.')


def main(argv):
  del argv
  counts = prepare_digits(FLAGS.output_dir, FLAGS.seed, FLAGS.overwrite)
  print(f'digits written to {FLAGS.output_dir}: {counts}')


if __name__ == '__main__':
  define_flags()
  app.run(main)
