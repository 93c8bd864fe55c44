"""The embedded demo dataset: scikit-learn's digits as SVHN-like TFRecords.

    python -m data.prepare_digits --output_dir=data/digits

`sklearn.datasets.load_digits()` ships 1,797 8x8 handwritten digits (values
0..16) inside the scikit-learn wheel, so no network is needed. Each image
becomes uint8 `round(v * 255 / 16)` (numpy rounding, half to even: only v = 8
-> 127.5 -> 128 is a tie), is resized to 32x32 with Pillow's
`Image.resize((32, 32), Image.BILINEAR)`, and the gray channel is copied to
RGB. A `RandomState(seed)` permutation of the 1,797 images is cut, in this
order, into

    test       400  <out>/test-0000i-of-00002
    dev        200  <out>/dev-0000i-of-00002
    train      300  <out>/train-0000i-of-00004      (labeled)
    unlabeled  897  <out>/unlabeled/extra-0000i-of-00008 (true label kept)

written as PNG (lossless) with `dataset_info.json`; the sizes match
`noisy_student.core.datasets.TASKS['digits']`.
"""

from __future__ import annotations

from absl import flags
from absl import logging
import numpy as np
from PIL import Image

# First: the binaries' entry filters TensorFlow's start-up banner.
from noisy_student.runtime import entry
from data import layout
from data import array_writer

NUM_IMAGES = 1797
NUM_CLASSES = 10
IMAGE_SIZE = 32
# (split, number of images, shards, labeled, subdir), in the order they are
# cut from the shuffled images.
SPLITS = (
    ('test', 400, 2, True, ''),
    ('dev', 200, 2, True, ''),
    ('train', 300, 4, True, ''),
    ('extra', 897, 8, False, layout.UNLABELED_SUBDIR),
)
SPLIT_SIZES = {name: size for name, size, _, _, _ in SPLITS}
FORMAT_VERSION = 1  # bump when the conversion changes, to invalidate outputs


def digit_images() -> tuple[np.ndarray, np.ndarray]:
  """All digits, converted.

  Returns:
    images: uint8 [1797, 32, 32, 3] RGB (gray copied to 3 channels).
    labels: int64 [1797] in 0..9, in scikit-learn's order.
  """
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  digits = datasets.load_digits()
  gray8 = np.round(digits.images * 255.0 / 16.0).astype(np.uint8)
  gray32 = np.stack([
      np.asarray(Image.fromarray(image).resize((IMAGE_SIZE, IMAGE_SIZE),
                                               Image.BILINEAR))
      for image in gray8])
  images = np.repeat(gray32[..., None], 3, axis=-1)
  return images, digits.target.astype(np.int64)


def split_indices(seed: int = 0) -> dict[str, np.ndarray]:
  """{split: int64 row indices into digit_images()} for SPLITS; disjoint."""
  order = np.random.RandomState(seed).permutation(NUM_IMAGES)
  out, start = {}, 0
  for name, size, _, _, _ in SPLITS:
    out[name] = order[start:start + size]
    start += size
  assert start == NUM_IMAGES
  return out


def output_config(seed: int) -> dict:
  return {
      'dataset': 'digits',
      'format_version': FORMAT_VERSION,
      'seed': seed,
      'image_format': 'png',
      'split_sizes': SPLIT_SIZES,
      'num_shards': {name: shards for name, _, shards, _, _ in SPLITS},
  }


def prepare_digits(output_dir: str, seed: int = 0,
                   overwrite: bool = False) -> dict:
  """Writes the digits shards and dataset_info.json; idempotent.

  Takes well under a second once TensorFlow is imported; a rerun on complete
  outputs only checks the shard headers.

  Returns:
    The dataset_info.json contents plus 'shards_written' and 'shards_kept'.
  """
  config = output_config(seed)
  if not overwrite:
    info = array_writer.complete_info(output_dir, config)
    if info is not None:
      total = sum(s['num_shards'] for s in info['splits'].values())
      return dict(info, shards_written=0, shards_kept=total)
  images, labels = digit_images()
  indices = split_indices(seed)
  splits = [array_writer.ArraySplit(name, images, labels, indices[name],
                                    labeled, shards, subdir)
            for name, _, shards, labeled, subdir in SPLITS]
  extra_info = {
      'dataset': 'digits',
      'num_classes': NUM_CLASSES,
      'source': 'sklearn.datasets.load_digits() (bundled with scikit-learn)',
      'conversion': ('uint8 round(v * 255 / 16); PIL resize (32, 32) '
                     'BILINEAR; gray copied to RGB'),
      'pixel_mean': round(float(images.mean()) / 255.0, 6),
      'pixel_stddev': round(float(images.std()) / 255.0, 6),
  }
  return array_writer.write_array_splits(
      output_dir, splits, config, image_format='png', num_classes=NUM_CLASSES,
      name='digits', class_names=[str(c) for c in range(NUM_CLASSES)],
      flip=False, extra_info=extra_info, overwrite=overwrite, log_fn=logging.debug)


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  flags.DEFINE_string('output_dir', 'data/digits', 'Where the shards go.', flag_values=fv)
  flags.DEFINE_integer('seed', 0, 'Seed of the shuffle that assigns splits.', flag_values=fv)
  flags.DEFINE_bool('overwrite', False, 'Rewrite existing shards.', flag_values=fv)


def main(argv: list[str]) -> None:
  del argv
  info = prepare_digits(flags.FLAGS.output_dir, flags.FLAGS.seed,
                        flags.FLAGS.overwrite)
  print(array_writer.summary_line(flags.FLAGS.output_dir, info))


def run():
  entry.run('prepare_digits', main, define_flags)


if __name__ == '__main__':
  run()
