r"""Image folders -> TFRecord shards (labeled class folders or unlabeled images).

Labeled, e.g. ImageNet (class folders `n01440764/*.JPEG`; class i is entry i
of the label map, stored as label i + 1):

    python -m data.images_to_tfrecord --input_dir=imagenet/train \
        --output_dir=data/imagenet/proc --split=train --num_shards=1024 \
        --label_map=imagenet --num_workers=16

Unlabeled (a flat folder, or any tree with --unlabeled):

    python -m data.images_to_tfrecord --input_dir=photos --unlabeled \
        --output_dir=data/imagenet/proc/unlabeled --split=extra

Writes `<output_dir>/<split>-00000-of-NNNNN ...`, `<split>-summary.json`,
`<split>-skipped.txt` and, for a labeled tree without --label_map,
`labels.txt` (the sorted folder names, usable as --label_map for the other
splits). See data/image_shards.py for the details.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app
from absl import flags

from data import image_codec
from data import image_folders
from data import image_shards


def define_flags() -> None:
  flags.DEFINE_string('input_dir', None, 'Folder of class folders (labeled) '
                      'or of images (unlabeled, any depth).')
  flags.DEFINE_string('output_dir', None, 'Where the shards and reports go.')
  flags.DEFINE_string('split', 'train', 'File prefix of the shards, e.g. '
                      'train, validation, extra.')
  flags.DEFINE_integer('num_shards', 128, 'Number of shard files.')
  flags.DEFINE_bool('unlabeled', False, 'Write unlabeled records from any '
                    'tree (a flat folder is always unlabeled).')
  flags.DEFINE_string('label_map', None,
                      'Folder name -> class: "imagenet" (the 1000 wnids in '
                      'class order), "numeric" (folder name = class), a .txt '
                      'file (one folder name per line) or a .json file '
                      '(imagenet_class_index.json: {"0": ["n01440764", '
                      '"tench"], ...}, or {"folder": class}). Unset: sorted '
                      'folder names, saved to <output_dir>/labels.txt.')
  flags.DEFINE_integer('num_workers', min(os.cpu_count() or 1, 8),
                       'Processes writing shards (each writes whole shards).')
  flags.DEFINE_integer('seed', 0, 'Seed of the file-order shuffle.')
  flags.DEFINE_bool('shuffle', True, 'Shuffle the file order (else sorted by '
                    'path).')
  flags.DEFINE_bool('reencode', False, 'Re-encode JPEG/PNG files too (others '
                    'are always re-encoded).')
  flags.DEFINE_enum('image_format', 'jpeg', list(image_codec.FORMATS),
                    'Format of re-encoded images.')
  flags.DEFINE_integer('jpeg_quality', image_codec.DEFAULT_JPEG_QUALITY,
                       'JPEG quality in [1, 100] of re-encoded images.')
  flags.DEFINE_bool('overwrite', False, 'Rewrite existing shards (else the '
                    'complete shards of the same inputs are kept).')


def config_from_flags(flag_values: flags.FlagValues
                      ) -> image_shards.ConvertConfig:
  return image_shards.ConvertConfig(
      input_dir=flag_values.input_dir,
      output_dir=flag_values.output_dir,
      split=flag_values.split,
      num_shards=flag_values.num_shards,
      unlabeled=flag_values.unlabeled,
      label_map=flag_values.label_map,
      num_workers=flag_values.num_workers,
      seed=flag_values.seed,
      shuffle=flag_values.shuffle,
      reencode=flag_values.reencode,
      image_format=flag_values.image_format,
      jpeg_quality=flag_values.jpeg_quality,
      overwrite=flag_values.overwrite)


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  try:
    summary = image_shards.convert(config_from_flags(flags.FLAGS))
  except (image_shards.ConversionError, image_folders.ImageTreeError) as err:
    sys.exit(f'images_to_tfrecord: error: {err}')
  keys = ('num_files', 'num_written', 'num_skipped', 'num_reencoded',
          'num_ignored_files', 'shards_written', 'shards_kept')
  report = {key: summary[key] for key in keys}
  if 'classes' in summary:
    report['num_classes'] = summary['classes']['num_classes']
  print(json.dumps(report, sort_keys=True))


if __name__ == '__main__':
  define_flags()
  app.run(main)
