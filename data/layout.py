"""Where everything lives on disk: the one owner of file and folder names.

Every module that writes, parses or globs one of these names asks this one
(`tests/test_ownership.py` fails on a second owner). The names are the
original release's where it had them:

* shard:             `<dir>/<prefix>-00003-of-00128` (5-digit, zero-padded)
* filtered shard:    `<dir>/<prefix>-<task>-00003-of-00128` (the filter's, and
                     the reassign input)
* predictions:       `<output_dir>/train-info-<shard>-of-<n>-<worker>`
* info file:         `<info_dir>/info-<shard>-of-<n>-<worker>.txt`
* a prediction run:  `<root>/predict_label/`, `<root>/info/` (`PredictionDirs`)
* a filter run:      `<root>/data/` (pseudo-labeled shards), `stats/`,
                     `prelim_stats/`, `samples/`, `allocation_plan.json`
                     (`FilterDirs`)
* a model_dir:       `model_config.json`, `eval_results.json`, `FLAGS.json`
* an iterate job:    `state.json`, `summary.{json,md,png}`, `round_0/teacher`,
                     `round_<r>/{predict,filter,student}`, `ablation/<arm>`
                     (`RoundDirs`)

Standard library only, except `find_shards` (TensorFlow's file system, so
that GCS paths work).
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Optional

from noisy_student.runtime import errors

# ---------------------------------------------------------------------------
# Shards.
# ---------------------------------------------------------------------------
# `<prefix>-00003-of-00128`, and the filter's `<prefix>-<task>-00003-of-00128`.
_SHARD_NAME = re.compile(r'^(?P<prefix>.+?)(?:-(?P<task>\d+))?-(?P<index>\d{5,})'
                         r'-of-(?P<total>\d{5,})$')


@dataclasses.dataclass(frozen=True)
class ShardName:
  """A parsed shard file name (`task` None for an unfiltered shard)."""
  prefix: str
  index: int
  total: int
  task: Optional[int] = None


def shard_name(prefix: str, index: int, total: int,
               task: Optional[int] = None) -> str:
  """`train-00003-of-00128` (or `train-0-00003-of-00128` with `task`)."""
  if not 0 <= index < total:
    raise ValueError(f'shard index {index} is outside [0, {total})')
  middle = '' if task is None else f'-{task}'
  return f'{prefix}{middle}-{index:05d}-of-{total:05d}'


def shard_path(directory: str, prefix: str, index: int, total: int,
               task: Optional[int] = None) -> str:
  return os.path.join(directory, shard_name(prefix, index, total, task))


def shard_paths(directory: str, prefix: str, total: int) -> list[str]:
  """Every shard path of `<prefix>` with `total` shards, in order."""
  return [shard_path(directory, prefix, i, total) for i in range(total)]


def parse_shard_name(path: str) -> Optional[ShardName]:
  """The parts of a shard file name, None for anything else (reports, temps)."""
  match = _SHARD_NAME.match(os.path.basename(path))
  if not match:
    return None
  return ShardName(prefix=match['prefix'], index=int(match['index']),
                   total=int(match['total']),
                   task=None if match['task'] is None else int(match['task']))


def is_shard_name(path: str, prefix: str) -> bool:
  """True when `path` names a shard of `prefix` (never a report or temp file)."""
  parsed = parse_shard_name(path)
  return parsed is not None and parsed.prefix == prefix


def shard_pattern(directory: str, prefix: str) -> str:
  """The glob of `<prefix>`'s shards (filter with `is_shard_name`)."""
  return os.path.join(directory, f'{prefix}-*-of-*')


def total_pattern(directory: str, prefix: str, total: int) -> str:
  """The glob of exactly the `total` shards of `<prefix>` (no filtered ones)."""
  return os.path.join(directory, f'{prefix}-*-of-{total:05d}')


def find_shards(directory: str, prefix: str) -> list[str]:
  """Sorted shards of `<prefix>` in `directory` (filtered ones included)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return sorted(f for f in tf.io.gfile.glob(shard_pattern(directory, prefix))
                if is_shard_name(f, prefix))


def count_shards(directory: str, prefix: str) -> int:
  """N of the complete `<prefix>-xxxxx-of-N` set in `directory`.

  Raises:
    InputError naming the folder when the set is missing, mixed or partial.
  """
  names = [parse_shard_name(p) for p in find_shards(directory, prefix)]
  names = [n for n in names if n.task is None]
  totals = {n.total for n in names}
  if len(totals) != 1:
    found = sorted(shard_name(n.prefix, n.index, n.total) for n in names)
    raise errors.InputError(
        f'{directory}: expected shards {prefix}-00000-of-N (one N), found '
        f'{found[:5] or "none"}')
  total = totals.pop()
  if len({n.index for n in names}) != total:
    raise errors.InputError(f'{directory}: {len(names)} of {total} {prefix} '
                            'shards present')
  return total


# Files a user's glob may catch beside the shards: a converter's reports.
_NOT_RECORDS = ('.json', '.txt', '.md', '.png', '.csv')


def glob_user_records(pattern: str) -> list[str]:
  """Sorted files of a user's glob, without reports, temporaries and folders."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return sorted(
      f for f in tf.io.gfile.glob(pattern)
      if not os.path.basename(f).startswith('.')
      and not f.endswith(_NOT_RECORDS) and not tf.io.gfile.isdir(f))


def split_summary_path(directory: str, split: str) -> str:
  """A converter's report of one split (never read as records)."""
  return os.path.join(directory, f'{split}-summary.json')


def split_skipped_path(directory: str, split: str) -> str:
  """A converter's list of skipped inputs of one split."""
  return os.path.join(directory, f'{split}-skipped.txt')


# ---------------------------------------------------------------------------
# Predictions (`--mode=predict`) and their info files.
# ---------------------------------------------------------------------------
def parse_shard_ids(spec: str, total: int) -> list[int]:
  """'3', '0,5,7', '2-4' or 'all' (also -1) -> shard ids in [0, total).

  Raises:
    ConfigError naming --shard_id.
  """
  if spec in ('all', '-1'):
    return list(range(total))
  ids, empty = [], []
  try:
    for part in spec.split(','):
      part = part.strip()
      if '-' in part:
        low, high = (int(v) for v in part.split('-', 1))
        if high < low:
          empty.append(part)
        ids.extend(range(low, high + 1))
      elif part:
        ids.append(int(part))
  except ValueError:
    raise errors.ConfigError(
        f"{errors.field_name('shard_id')}={spec}: expected 3, 0,5,7, 2-4 or all") from None
  if empty:
    low, high = empty[0].split('-', 1)
    raise errors.ConfigError(
        f'{errors.field_name("shard_id")}={spec}: the range {empty[0]} is empty (write it '
        f'low-high, e.g. {high}-{low})')
  bad = [i for i in ids if not 0 <= i < total]
  if bad:
    raise errors.ConfigError(
        f'{errors.field_name("shard_id")}={spec}: shards {bad} outside [0, {total})')
  return ids


def prediction_path(output_dir: str, shard: int, total: int,
                    worker: int) -> str:
  return os.path.join(output_dir,
                      f'train-info-{shard:05d}-of-{total:05d}-{worker:05d}')


def info_path(info_dir: str, shard: int, total: int, worker: int) -> str:
  return os.path.join(info_dir,
                      f'info-{shard:05d}-of-{total:05d}-{worker:05d}.txt')


@dataclasses.dataclass(frozen=True)
class PredictionDirs:
  """One prediction run's folders under `root` (iterate, the Python API)."""
  root: str

  @property
  def predictions(self) -> str:
    return os.path.join(self.root, 'predict_label')

  @property
  def info(self) -> str:
    return os.path.join(self.root, 'info')


# ---------------------------------------------------------------------------
# Filtered pseudo-labels.
# ---------------------------------------------------------------------------
FILTERED_PREFIX = 'train'


@dataclasses.dataclass(frozen=True)
class FilterDirs:
  """One filter run's files under `root` (filter_unlabel, beam_label, iterate).

  `prelim_stats_root` defaults to `<root>/prelim_stats` (the statistics pass
  may write elsewhere, as the original's --prelim_stats_dir).
  """
  root: str
  prelim_stats_root: Optional[str] = None

  @property
  def data(self) -> str:
    """The pseudo-labeled shards: the student's --unlabel_data_dir."""
    return os.path.join(self.root, 'data')

  @property
  def prelim_stats(self) -> str:
    return self.prelim_stats_root or os.path.join(self.root, 'prelim_stats')

  @property
  def samples(self) -> str:
    return os.path.join(self.root, 'samples')

  @property
  def plan(self) -> str:
    return os.path.join(self.root, 'allocation_plan.json')

  @property
  def final_stats(self) -> str:
    return os.path.join(self.root, 'stats', 'final_stats.json')

  @property
  def total_counts(self) -> str:
    return os.path.join(self.prelim_stats, 'total_counts.json')

  def shard(self, shard: int, total: int, task: int) -> str:
    return shard_path(self.data, FILTERED_PREFIX, shard, total, task)

  def unit_stats(self, shard: int, task: int) -> str:
    return os.path.join(self.root, 'stats', f'stats_{shard:05d}_{task}.json')

  def prelim_unit_stats(self, shard: int, task: int) -> str:
    return os.path.join(self.prelim_stats,
                        f'prelim_stats_{shard:05d}_{task}.json')


def bucket_path(bucket_dir: str, bucket: int) -> str:
  """One temporary shuffle bucket of the filter (removed once read)."""
  return os.path.join(bucket_dir, f'{bucket:05d}')


# ---------------------------------------------------------------------------
# A model_dir.
# ---------------------------------------------------------------------------
MODEL_CONFIG_FILE = 'model_config.json'
EVAL_RESULTS_FILE = 'eval_results.json'
FLAGS_FILE = 'FLAGS.json'


def eval_predictions(model_dir: str, split: str) -> str:
  """Per-image predictions of a model_dir's last evaluation on `split`
  (`.npz`: label, predicted, probability; record order)."""
  return os.path.join(model_dir, f'predictions-{split}.npz')


def model_dir_file(path: str, name: str) -> str:
  """`name` in the model_dir of `path` (a model_dir or a checkpoint prefix)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  directory = path if tf.io.gfile.isdir(path) else os.path.dirname(path)
  return os.path.join(directory, name)


KERAS_SUFFIX = '.keras'


def is_keras_file(path: str) -> bool:
  """True for a `.keras` file name (Keras 3's zip format; what Keras saves)."""
  return path.endswith(KERAS_SUFFIX)


def tf_checkpoint_files(prefix: str) -> tuple[str, str]:
  """The data and index files TensorFlow writes for checkpoint `prefix`."""
  return prefix + '.data-00000-of-00001', prefix + '.index'


def default_export_dir(model_dir: str) -> str:
  return os.path.join(model_dir, 'saved_model')


def keras_file_beside(export_dir: str) -> str:
  """`<export_dir>.keras`: the `.keras` file beside a SavedModel folder."""
  return export_dir.rstrip('/') + KERAS_SUFFIX


# ---------------------------------------------------------------------------
# An iterate job (and the demo's and the ablation's, which run one).
# ---------------------------------------------------------------------------
STATE_FILE = 'state.json'


def seed_dir(work_dir: str, seed: int) -> str:
  """One seed's job in a multi-seed `work_dir` (the demo, the ablation)."""
  return os.path.join(work_dir, f'seed_{seed}')


UNLABELED_SUBDIR = 'unlabeled'


def unlabeled_dir(data_dir: str) -> str:
  """The default unlabeled folder of a data folder (the converters write it)."""
  return os.path.join(data_dir, UNLABELED_SUBDIR)


def ablation_table(work_dir: str, extension: str) -> str:
  """ablation.md / .json / .png of an ablation's `work_dir`."""
  return os.path.join(work_dir, f'ablation.{extension}')


@dataclasses.dataclass(frozen=True)
class RoundDirs:
  """The folders of an iterative job in `work_dir`, and their stage names.

  A stage's name in `state.json` is its folder relative to `work_dir`
  (`round_0/teacher`, `round_1/predict`, ...), except the filter's statistics
  pass, `round_<r>/filter_stats`, which writes into the filter's folder.
  """
  work_dir: str

  def round(self, r: int) -> str:
    return os.path.join(self.work_dir, f'round_{r}')

  def model(self, r: int) -> str:
    """Round 0's teacher, or round r's student."""
    return os.path.join(self.work_dir, self.model_stage(r))

  @staticmethod
  def model_stage(r: int) -> str:
    return f'round_{r}/' + ('teacher' if r == 0 else 'student')

  @staticmethod
  def predict_stage(r: int) -> str:
    return f'round_{r}/predict'

  @staticmethod
  def filter_stage(r: int) -> str:
    return f'round_{r}/filter'

  @staticmethod
  def filter_stats_stage(r: int) -> str:
    return f'round_{r}/filter_stats'

  def predict(self, r: int) -> PredictionDirs:
    return PredictionDirs(os.path.join(self.work_dir, self.predict_stage(r)))

  def filter(self, r: int) -> FilterDirs:
    return FilterDirs(os.path.join(self.work_dir, self.filter_stage(r)))

  @staticmethod
  def arm_stage(arm: str) -> str:
    """An ablation arm trained from round 1's pseudo-labels."""
    return f'ablation/{arm}'

  def arm(self, arm: str) -> str:
    return os.path.join(self.work_dir, self.arm_stage(arm))

  EXPORT_STAGE = 'export'

  @property
  def export(self) -> str:
    """The last round's model as a SavedModel (and `export.keras` beside)."""
    return os.path.join(self.work_dir, self.EXPORT_STAGE)

  @property
  def state(self) -> str:
    return os.path.join(self.work_dir, STATE_FILE)

  def summary(self, extension: str) -> str:
    """summary.json / .md / .png."""
    return os.path.join(self.work_dir, f'summary.{extension}')
