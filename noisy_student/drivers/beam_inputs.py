"""What a `beam_label` run reads, fixed before any Beam code runs.

Its settings (`BeamLabelConfig`, the binary's flags), its units (`list_inputs`:
the sorted unlabeled shards, or the sorted image files packed into groups of
`images_per_shard`), the offline filter's config for those units, and the
teacher check. The pipeline itself is `drivers/beam_pipeline.py`; this module
imports no Beam.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING
import math
import os
from typing import Optional, Sequence

import tensorflow as tf

from data import dataset_info
from data import layout
from data import writers
from noisy_student.core import config as config_lib
from noisy_student.core.config import doc
from noisy_student.models import checkpoints
from noisy_student.models import loading
from noisy_student.models import teacher as teacher_lib
from noisy_student.pseudo import filter_files
from noisy_student.pseudo import selection
from noisy_student.runtime import errors

IMAGE_SHARD_PREFIX = 'images'


@dataclasses.dataclass(frozen=True)
class BeamLabelConfig:
  """What the pipeline does (built from the flags by `beam_label`).

  The fields with help texts are `beam_label`'s flags (`cli/config_flags.py`);
  `settings` are the filter's selection flags. The outputs have the names of
  `filter_unlabel`'s.
  """
  teacher: str = doc(MISSING, 'The teacher: a training model_dir or '
                     'checkpoint with model_config.json (EMA weights), a '
                     '.keras file or an exported SavedModel.')
  output_dir: str = doc(MISSING, 'Where data/, stats/, samples/, '
                        'prelim_stats/ and allocation_plan.json are written.')
  settings: selection.Settings = doc(MISSING, 'The selection settings.')
  input_pattern: str = doc('', 'Glob(s), comma-separated, of the unlabeled '
                           'TFRecord shards; sorted, the i-th file is shard '
                           'i.')
  image_pattern: str = doc('', 'Glob(s) of image files instead (local '
                           'files); sorted, they are packed into shards of '
                           '--images_per_shard under '
                           '<prediction_dir>/image_shards.')
  prediction_dir: str = doc('', 'Teacher outputs (prediction and info files, '
                            'packed image shards); default '
                            '<output_dir>/predictions. A run with other '
                            'filter settings reuses them.')
  batch_size: int = doc(64, 'Images per teacher batch.')
  image_size: Optional[int] = doc(None, 'Teacher input size in pixels; '
                                  'default (or 0): its inference size.')
  small_image: bool = doc(False, '.keras/SavedModel teacher: 32x32 '
                          'preprocessing (checkpoints record it themselves).')
  images_per_shard: int = doc(1024, 'Image files per shard '
                              '(--image_pattern).')
  num_samples_per_class: int = doc(10, 'Sample images per class saved under '
                                   '<output_dir>/samples/<class>/.')
  # In-memory shuffle limit per output shard (the flag is --shuffle_buffer_mb).
  shuffle_buffer_bytes: int = 512 << 20

  def __post_init__(self):
    if bool(self.input_pattern) == bool(self.image_pattern):
      raise errors.ConfigError(
          f'pass exactly one of {errors.field_name("input_pattern")} and '
          f'{errors.field_name("image_pattern")}')
    config_lib.check_ranges(self, {
        'batch_size': (1, None), 'images_per_shard': (1, None),
        'image_size': (1, None), 'num_samples_per_class': (0, None),
        'shuffle_buffer_bytes': (1, None)})
    if not self.prediction_dir:
      object.__setattr__(self, 'prediction_dir',
                         os.path.join(self.output_dir, 'predictions'))


@dataclasses.dataclass(frozen=True)
class Inputs:
  """The units of a run, fixed before the pipeline starts.

  Attributes:
    shards: the unlabeled TFRecord shard of every unit, in unit order.
    image_groups: with image input, the image files packed into each shard.
  """
  shards: tuple[str, ...]
  image_groups: tuple[tuple[str, ...], ...] = ()


def _glob(patterns: str, flag: str, records: bool = False) -> list[str]:
  """The files of comma-separated globs, without temporaries; with
  `records`, also without a converter's reports (extra-summary.json ...)."""
  paths = set()
  for pattern in (p.strip() for p in patterns.split(',')):
    if pattern:
      found = (layout.glob_user_records(pattern) if records
               else tf.io.gfile.glob(pattern))
      paths.update(p for p in found if not writers.is_temp_name(p))
  if not paths:
    raise errors.InputError(f'--{flag}={patterns}: no file matches')
  return sorted(paths)


def list_inputs(config: BeamLabelConfig) -> Inputs:
  """Lists the input files (sorted: the unit order).

  Raises:
    InputError naming the flag when nothing matches; ConfigError when the
    shards' dataset_info.json names other classes than the teacher
    (`check_teacher_classes`).
  """
  if config.input_pattern:
    shards = tuple(_glob(config.input_pattern, 'input_pattern', records=True))
    check_teacher_classes(config.teacher, shards)
    return Inputs(shards)
  images = _glob(config.image_pattern, 'image_pattern')
  num_shards = math.ceil(len(images) / config.images_per_shard)
  groups = tuple(tuple(images[a:b])
                 for a, b in writers.shard_bounds(len(images), num_shards))
  shards = tuple(
      os.path.join(config.prediction_dir, 'image_shards',
                   layout.shard_name(IMAGE_SHARD_PREFIX, i, num_shards))
      for i in range(num_shards))
  return Inputs(shards, groups)


def filter_config(config: BeamLabelConfig,
                  inputs: Inputs) -> filter_files.FilterConfig:
  """The offline filter's config for these units (one task per shard)."""
  return filter_files.FilterConfig(
      input_dir=os.path.dirname(inputs.shards[0]),
      prediction_dir=config.prediction_dir, info_dir=config.prediction_dir,
      output_dir=config.output_dir, settings=config.settings,
      num_shards=len(inputs.shards), total_replicas=1,
      num_samples_per_class=config.num_samples_per_class,
      shuffle_buffer_bytes=config.shuffle_buffer_bytes,
      input_files=inputs.shards)


def teacher_num_classes(path: str) -> Optional[int]:
  """The classes of a checkpoint teacher (model_config.json), else None."""
  config = checkpoints.read_model_config(path)
  return config.num_classes if config else None


def teacher_class_names(path: str) -> Optional[tuple[str, ...]]:
  """The class names of a checkpoint teacher (model_config.json) or an
  exported SavedModel (its class_names.txt), else None."""
  return loading.reference_class_names(path)


def check_teacher_classes(teacher: str, shards: Sequence[str]) -> None:
  """Refuses shards described (dataset_info.json, theirs or their parent
  folder's) with other class names than the teacher was trained on: its
  probabilities would name other classes. Unknown names on either side are
  no check.

  Raises:
    ConfigError naming the teacher, the file and the first class that differs.
  """
  names = teacher_class_names(teacher)
  if not names:
    return
  for folder in sorted({os.path.dirname(shard) for shard in shards}):
    found = dataset_info.find(folder)
    if found is not None:
      teacher_lib.check_class_names(
          teacher, names, found[1].get('class_names'), teacher_field='teacher',
          student_field='input_pattern',
          student=dataset_info.path(found[0]))


def check_teacher(path: str) -> None:
  """Raises CheckpointError naming `path` unless it looks like a teacher."""
  if loading.labels_images(path):
    return
  raise errors.CheckpointError(
      f'{errors.field_name("teacher")}={path}: neither a model_dir/checkpoint with '
      f'{layout.MODEL_CONFIG_FILE}, a .keras file nor a SavedModel')
