"""tf.data pipelines: training (labeled + unlabeled), evaluation and prediction.

Stage order of a training stream (one per host, built by
`make_train_dataset(config, ..., input_context)`):

  list files (sorted) -> keep this host's files (InputContext)
  -> [cache: interleave -> cache -> shuffle -> repeat]
     [no cache: shuffle files -> repeat -> interleave -> shuffle]
  -> skip the records consumed before a resume (deterministic mode)
  -> enumerate (the element index seeds its augmentation)
  -> parse + decode + preprocess (parallel) -> batch(drop_remainder) -> ...

Shuffling comes before `repeat` in the cached branch so every epoch is a new
permutation; each element's augmentation is a stateless function of
(seed, stream, element index), so for a given seed the stream is reproducible
and, with `deterministic=True`, a resumed run sees exactly the same batches as
an uninterrupted one.

The labeled and unlabeled streams are zipped into one element per replica:
  image [B, S, S, 3] float32 0-255, label [B] int32,
  unl_image [U, S, S, 3], and either unl_probs [U, C] + unl_label [U] (stored
  pseudo-labels) or unl_teacher_image [U, T, T, 3] (teacher on the fly).
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

from absl import logging
import tensorflow as tf

from data import layout
from data import records
from noisy_student.augment import preprocessing
from noisy_student.core import config as config_lib
from noisy_student.runtime import errors

AUTOTUNE = tf.data.AUTOTUNE
_READ_BUFFER_BYTES = 8 * 1024 * 1024
_LABELED_STREAM = 0
_UNLABELED_STREAM = 1


# --------------------------------------------------------------------------
# Files.
# --------------------------------------------------------------------------
def list_files(data_dirs: str, prefixes: Sequence[str],
               max_files: Optional[int] = None) -> list[str]:
  """Sorted shards of `prefixes` over `;`-separated dirs (as the original).

  Only shard names are listed: `<prefix>-NNNNN-of-NNNNN` and the filter's
  `<prefix>-<task>-NNNNN-of-NNNNN`; a converter's reports
  (`train-summary.json`) and temporary files of interrupted writers never are.

  Raises:
    InputError naming the patterns when no shard matches.
  """
  files, patterns = [], []
  for data_dir in [d for d in data_dirs.split(';') if d]:
    for prefix in prefixes:
      pattern = layout.shard_pattern(data_dir, prefix)
      patterns.append(pattern)
      files.extend(f for f in tf.io.gfile.glob(pattern)
                   if layout.is_shard_name(f, prefix))
  files = sorted(set(files))
  if max_files:
    files = files[:max_files]
  if not files:
    raise errors.InputError(
        f'no TFRecord shards match {" or ".join(patterns) or "(no directory given)"}')
  return files


def host_files(files: Sequence[str],
               input_context: Optional[tf.distribute.InputContext]) -> list[str]:
  """This input pipeline's share of `files` (file-level sharding, like the original)."""
  if input_context is None or input_context.num_input_pipelines == 1:
    return list(files)
  num, index = input_context.num_input_pipelines, input_context.input_pipeline_id
  if len(files) < num:
    raise errors.InputError(
        f'{len(files)} files ({files[0]}, ...) for {num} hosts: every host '
        'reads whole files, so write at least as many shards as hosts')
  return list(files[index::num])


def _total_bytes(files: Sequence[str]) -> int:
  return sum(tf.io.gfile.stat(f).length for f in files)


def _memory_bytes() -> int:
  try:
    return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
  except (ValueError, OSError, AttributeError):
    return 0


def _should_cache(files: Sequence[str], use_cache: bool) -> bool:
  if not use_cache:
    return False
  size, memory = _total_bytes(files), _memory_bytes()
  if memory and size > memory // 2:
    logging.warning('Not caching %d files (%.1f GB): more than half of this '
                    f'machine\'s %.1f GB of memory; pass {errors.field_name("use_cache")}=false to '
                    'silence this.', len(files), size / 1e9, memory / 1e9)
    return False
  return True


# --------------------------------------------------------------------------
# Record streams.
# --------------------------------------------------------------------------
def read_with_origin(filename: tf.Tensor) -> tf.data.Dataset:
  """(filename, record index in the file, serialized record) of one file."""
  return tf.data.TFRecordDataset(
      filename, buffer_size=_READ_BUFFER_BYTES).enumerate().map(
          lambda index, record: (filename, index, record))


def record_stream(files: Sequence[str], *, seed: int, cache: bool,
                  shuffle_buffer: int, deterministic: bool) -> tf.data.Dataset:
  """Infinite, shuffled stream of (filename, record index, serialized record)."""
  files_ds = tf.data.Dataset.from_tensor_slices(list(files))
  cycle = min(len(files), 16)
  if cache:
    stream = files_ds.interleave(read_with_origin, cycle_length=cycle,
                                 num_parallel_calls=AUTOTUNE,
                                 deterministic=deterministic)
    stream = stream.cache()
    return stream.shuffle(shuffle_buffer, seed=seed,
                          reshuffle_each_iteration=True).repeat()
  files_ds = files_ds.shuffle(len(files), seed=seed,
                              reshuffle_each_iteration=True).repeat()
  stream = files_ds.interleave(read_with_origin, cycle_length=cycle,
                               num_parallel_calls=AUTOTUNE,
                               deterministic=deterministic)
  return stream.shuffle(min(shuffle_buffer, 1024), seed=seed)


def element_seed(base_seed: int, stream_id: int, index: tf.Tensor) -> tf.Tensor:
  """int64 [2] stateless seed of one element: (hash(seed, stream), index)."""
  return tf.stack([tf.constant(base_seed * 2 + stream_id, tf.int64),
                   tf.cast(index, tf.int64)])


# --------------------------------------------------------------------------
# Preprocessing adapters.
# --------------------------------------------------------------------------
def train_view(image: tf.Tensor, seed: tf.Tensor, cfg: config_lib.DataConfig,
               augment_name: Optional[str]) -> tf.Tensor:
  """The student's (noised) view of a decoded uint8 image, float32 0-255."""
  if cfg.remove_aug:
    return preprocessing.preprocess_for_eval(image, cfg.image_size,
                                    small_image=cfg.small_image)
  return preprocessing.preprocess_for_train(
      image, cfg.image_size, seed, small_image=cfg.small_image,
      augment_name=augment_name, randaug_magnitude=cfg.randaug_magnitude,
      randaug_num_layers=cfg.randaug_num_layers,
      use_cutout_op=cfg.use_cutout_op, flip=cfg.flip)


def eval_view(image: tf.Tensor, image_size: int, small_image: bool) -> tf.Tensor:
  return preprocessing.preprocess_for_eval(image, image_size,
                                           small_image=small_image)


def decode(image_bytes: tf.Tensor) -> tf.Tensor:
  return preprocessing.decode_image(image_bytes)


# --------------------------------------------------------------------------
# Training input.
# --------------------------------------------------------------------------
def _batched_stream(cfg: config_lib.DataConfig, files: Sequence[str],
                    batch: int, skip: int, stream_id: int,
                    parse) -> tf.data.Dataset:
  """Shuffled records -> skip `skip` -> parse(index, (filename, record)) -> batches."""
  stream = record_stream(files, seed=cfg.seed + stream_id, cache=_should_cache(
      files, cfg.use_cache), shuffle_buffer=cfg.shuffle_buffer,
                         deterministic=cfg.deterministic)
  if skip:
    stream = stream.skip(skip)
  return stream.enumerate(start=skip).map(
      parse, num_parallel_calls=AUTOTUNE,
      deterministic=cfg.deterministic).batch(batch, drop_remainder=True)


def _labeled_dataset(cfg: config_lib.DataConfig, files: Sequence[str],
                     batch: int, skip: int) -> tf.data.Dataset:
  def parse(index, item):
    filename, record_index, serialized = item
    parsed = records.parse_labeled(serialized, cfg.num_classes, filename,
                                   record_index)
    image = decode(parsed['image_bytes'])
    seed = element_seed(cfg.seed, _LABELED_STREAM, index)
    return {'image': train_view(image, seed, cfg, cfg.augment_name),
            'label': parsed['label']}

  return _batched_stream(cfg, files, batch, skip, _LABELED_STREAM, parse)


def _unlabeled_dataset(cfg: config_lib.DataConfig, files: Sequence[str],
                       batch: int, skip: int) -> tf.data.Dataset:
  def parse(index, item):
    filename, record_index, serialized = item
    if cfg.pseudo_labels_stored:
      parsed = records.parse_pseudo_labeled(serialized, cfg.num_classes,
                                            filename, record_index)
    else:
      parsed = records.parse_unlabeled(serialized)
    image = decode(parsed['image_bytes'])
    seed = element_seed(cfg.seed, _UNLABELED_STREAM, index)
    out = {'unl_image': train_view(image, seed, cfg, cfg.unl_augment_name)}
    if cfg.pseudo_labels_stored:
      out['unl_probs'] = parsed['probabilities']
      out['unl_label'] = parsed['label']
    if cfg.teacher_image_size:
      out['unl_teacher_image'] = eval_view(image, cfg.teacher_image_size,
                                           cfg.small_image)
    return out

  return _batched_stream(cfg, files, batch, skip, _UNLABELED_STREAM, parse)


def train_files(cfg: config_lib.DataConfig) -> tuple[list[str], list[str]]:
  """(labeled files, unlabeled files) of the whole job (all hosts)."""
  labeled = _with_records(list_files(cfg.label_data_dir, [cfg.train_prefix],
                                     cfg.num_train_shards))
  unlabeled = (_with_records(list_files(cfg.unlabel_data_dir,
                                        cfg.unlabel_prefixes))
               if cfg.unlabel_data_dir else [])
  return labeled, unlabeled


def check_pseudo_labeled(cfg: config_lib.DataConfig) -> None:
  """When the student reads stored pseudo-labels (no teacher on the fly),
  the first unlabeled record must hold them.

  Raises:
    InputError naming the shard when it holds raw unlabeled images, which
    need a teacher first.
  """
  if not (cfg.pseudo_labels_stored and cfg.unlabel_data_dir):
    return
  for path in list_files(cfg.unlabel_data_dir, cfg.unlabel_prefixes):
    for serialized in tf.data.TFRecordDataset(path).take(1):
      if records.PROBABILITIES_KEY not in records.read_example(
          serialized.numpy()):
        raise errors.InputError(
            f'{path}: record 0 holds an image without pseudo-labels '
            f'({records.PROBABILITIES_KEY}): these are raw unlabeled '
            'shards. Give the student a teacher that labels them on the fly '
            '(main: --teacher_model_name and --teacher_model_path), or '
            'pseudo-label them first (main --mode=predict, then '
            'filter_unlabel: docs/filtering.md)')
      return


def _with_records(files: Sequence[str]) -> list[str]:
  """`files`, unless all are empty (a repeated empty stream never ends)."""
  if all(tf.io.gfile.stat(f).length == 0 for f in files):
    raise errors.InputError(f'{files[0]} (and the other {len(files) - 1} '
                            'shards of its split) hold no records')
  return list(files)


def make_train_dataset(cfg: config_lib.DataConfig, *, labeled_batch: int,
                       unlabeled_batch: int, start_step: int = 0,
                       replicas_per_pipeline: int = 1,
                       input_context: Optional[tf.distribute.InputContext] = None
                       ) -> tf.data.Dataset:
  """Per-replica training batches for this host (see the module docstring).

  Args:
    cfg: the data config.
    labeled_batch / unlabeled_batch: images per replica and step.
    start_step: global steps already trained; in deterministic mode the
      records those steps consumed are skipped, so a resumed run continues the
      exact same stream.
    replicas_per_pipeline: replicas fed by this pipeline (each takes one batch
      per step).
    input_context: from distribute_datasets_from_function, or None.
  """
  labeled_files, unlabeled_files = train_files(cfg)
  labeled_files = host_files(labeled_files, input_context)
  per_step = replicas_per_pipeline if cfg.deterministic else 0
  dataset = _labeled_dataset(cfg, labeled_files, labeled_batch,
                             skip=start_step * per_step * labeled_batch)
  if unlabeled_batch:
    if not unlabeled_files:
      raise errors.InputError(f'{errors.field_name("unlabel_ratio")} > 0 needs {errors.field_name("unlabel_data_dir")}')
    unlabeled = _unlabeled_dataset(
        cfg, host_files(unlabeled_files, input_context), unlabeled_batch,
        skip=start_step * per_step * unlabeled_batch)
    dataset = tf.data.Dataset.zip((dataset, unlabeled)).map(
        lambda lab, unl: {**lab, **unl})
  options = tf.data.Options()
  options.deterministic = cfg.deterministic
  options.experimental_optimization.map_parallelization = True
  return dataset.with_options(options).prefetch(AUTOTUNE)


# --------------------------------------------------------------------------
# Evaluation and prediction input.
# --------------------------------------------------------------------------
def count_examples(files: Sequence[str]) -> int:
  """Total records in `files`; a truncated file raises RecordError naming it."""
  return sum(records.count_records(f) for f in files)


def make_eval_dataset(files: Sequence[str], *, image_size: int,
                      small_image: bool, global_batch: int,
                      labeled: bool = True,
                      num_examples: Optional[int] = None,
                      num_classes: Optional[int] = None) -> tf.data.Dataset:
  """Finite, ordered batches for evaluation/prediction, padded to full size.

  Every element is {'image', 'label' (labeled only), 'mask'}; the stream is
  padded with zero images of mask 0 up to a multiple of `global_batch`, so
  every replica of every strategy sees full batches and the metrics count each
  real image exactly once. With `num_classes`, a label outside the classes
  fails with an error naming the file and record.
  """
  if num_examples is None:
    num_examples = count_examples(files)

  def parse(filename, index, serialized):
    if labeled:
      parsed = records.parse_labeled(serialized, num_classes, filename, index)
    else:
      parsed = records.parse_unlabeled(serialized)
    out = {'image': eval_view(decode(parsed['image_bytes']), image_size,
                              small_image),
           'mask': tf.constant(1.0)}
    if labeled:
      out['label'] = parsed['label']
    return out

  dataset = tf.data.Dataset.from_tensor_slices(list(files)).interleave(
      read_with_origin, cycle_length=1)  # file order, record order
  dataset = dataset.map(parse, num_parallel_calls=AUTOTUNE, deterministic=True)
  padding = (-num_examples) % global_batch
  if padding:
    blank = {'image': tf.zeros([image_size, image_size, 3], tf.float32),
             'mask': tf.constant(0.0)}
    if labeled:
      blank['label'] = tf.constant(0, tf.int32)
    dataset = dataset.concatenate(
        tf.data.Dataset.from_tensors(blank).repeat(padding))
  dataset = dataset.batch(global_batch, drop_remainder=True)
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = (
      tf.data.experimental.AutoShardPolicy.DATA)
  return dataset.with_options(options).prefetch(AUTOTUNE)
