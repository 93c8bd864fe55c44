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
`<split>-skipped.txt`, the folder's `dataset_info.json` (classes, image count
per split, image size, the train split's mean/std RGB; data/dataset_info.py)
and, for a labeled tree without --label_map, `labels.txt` (the sorted folder
names, used as the label map of the folder's other splits). Convert train,
dev/validation and test into one --output_dir, the unlabeled images into
its `unlabeled/` subfolder; then `python -m noisy_student.iterate
--label_data_dir=<output_dir> --unlabel_data_dir=<output_dir>/unlabeled ...`
needs no --task_name. See data/image_shards.py for the details.
"""

from __future__ import annotations

import json
import os

from absl import flags

from noisy_student.runtime import entry
from data import image_codec
from data import image_shards


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  flags.DEFINE_string('input_dir', None, 'Folder of class folders (labeled) '
                      'or of images (unlabeled, any depth).', flag_values=fv)
  flags.DEFINE_string('output_dir', None, 'Where the shards and reports go.', flag_values=fv)
  flags.DEFINE_string('split', 'train', 'File prefix of the shards, e.g. '
                      'train, validation, extra.', flag_values=fv)
  flags.DEFINE_integer('num_shards', 128, 'Number of shard files.', flag_values=fv)
  flags.DEFINE_bool('unlabeled', False, 'Write unlabeled records from any '
                    'tree (a flat folder is always unlabeled).', flag_values=fv)
  flags.DEFINE_string('label_map', None,
                      'Folder name -> class: "imagenet" (the 1000 wnids in '
                      'class order), "numeric" (folder name = class), a .txt '
                      'file (one folder name per line) or a .json file '
                      '(imagenet_class_index.json: {"0": ["n01440764", '
                      '"tench"], ...}, or {"folder": class}). Unset: sorted '
                      'folder names, saved to <output_dir>/labels.txt.', flag_values=fv)
  flags.DEFINE_integer('num_workers', min(os.cpu_count() or 1, 8),
                       'Processes writing shards at most (each writes whole '
                       'shards); one per 2,000 images to write, so a small '
                       'folder is written in this process.', flag_values=fv)
  flags.DEFINE_integer('seed', 0, 'Seed of the file-order shuffle.', flag_values=fv)
  flags.DEFINE_bool('shuffle', True, 'Shuffle the file order (else sorted by '
                    'path).', flag_values=fv)
  flags.DEFINE_bool('reencode', False, 'Re-encode JPEG/PNG files too (others '
                    'are always re-encoded).', flag_values=fv)
  flags.DEFINE_enum('image_format', 'jpeg', list(image_codec.FORMATS),
                    'Format of re-encoded images.', flag_values=fv)
  flags.DEFINE_integer('jpeg_quality', image_codec.DEFAULT_JPEG_QUALITY,
                       'JPEG quality in [1, 100] of re-encoded images.', flag_values=fv)
  flags.DEFINE_bool('overwrite', False, 'Rewrite existing shards (else the '
                    'complete shards of the same inputs are kept).', flag_values=fv)
  flags.DEFINE_string('name', None, 'Dataset name in dataset_info.json '
                      '(default: the --output_dir folder name).', flag_values=fv)
  flags.DEFINE_bool('flip', True, 'Horizontal flips keep the label (false for '
                    'digits, text); training reads it from dataset_info.json.',
                    flag_values=fv)


def config_from_flags(fv: flags.FlagValues) -> image_shards.ConvertConfig:
  return entry.dataclass_from_flags(image_shards.ConvertConfig, fv)


def main(argv: list[str]) -> None:
  del argv
  summary = image_shards.convert(config_from_flags(flags.FLAGS))
  keys = ('num_files', 'num_written', 'num_skipped', 'num_reencoded',
          'num_ignored_files', 'shards_written', 'shards_kept')
  report = {key: summary[key] for key in keys}
  if 'classes' in summary:
    report['num_classes'] = summary['classes']['num_classes']
  print(json.dumps(report, sort_keys=True))


def run():
  entry.run('images_to_tfrecord', main, define_flags)


if __name__ == '__main__':
  run()
