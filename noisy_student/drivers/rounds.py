r"""The iterative Noisy Student job, resumable stage by stage.

Library behind `python -m noisy_student.iterate` (and the demo):

  python -m noisy_student.iterate --work_dir=runs/digits --task_name=digits \
      --label_data_dir=data/digits --unlabel_data_dir=data/digits/unlabeled \
      --teacher_model_name=efficientnet-b0 \
      --student_model_names=efficientnet-b0,efficientnet-b0 ...

Round 0 trains a supervised teacher. Each round r >= 1 then
  predict (teacher's EMA weights on every unlabeled shard)
  -> filter: statistics pass, then selection + class balancing
  -> train the noised student on labeled + pseudo-labeled data
  -> evaluate; the student becomes the teacher of round r + 1.
All artifacts live in `work_dir` (round_0/teacher, round_1/predict,
round_1/filter, round_1/student, ...). A finished stage is recorded in
`state.json` (written atomically; `drivers/stages.py`) with its result and
its settings, and skipped on rerun; a rerun whose settings for a finished stage changed stops
with an error naming the stage and the settings (`force=True` redoes it). An
interrupted training stage resumes from its last checkpoint and an interrupted
predict or filter stage redoes only its unfinished shards. At the end
`summary.json`, `summary.md` (round, model, dev and test top-1) and
`summary.png` are written.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import MISSING
from typing import Optional, Sequence

import keras
from matplotlib import figure as figure_lib
import tensorflow as tf

from data import layout
from data import writers
from noisy_student.core import config as config_lib
from noisy_student.core.config import doc
from noisy_student.core import datasets
from noisy_student.core import defaults
from noisy_student.runtime import dir_lock
from noisy_student.runtime import errors
from noisy_student.core import factory
from noisy_student.drivers import modes
from noisy_student.drivers import stages
from noisy_student.models import checkpoints
from noisy_student.models import export as export_lib
from noisy_student.pseudo import filter_files
from noisy_student.pseudo import filter_passes
from noisy_student.pseudo import selection
from noisy_student.training import distribute



@dataclasses.dataclass(frozen=True)
class RoundsConfig:
  """The whole iterative job (built from flags by `iterate`, or by the demo).

  `dataset` holds the labeled data's classes, sizes and normalisation;
  `teacher` / `student` how each model is trained (optimisation and noise).
  The other fields are `iterate`'s flags (`cli/config_flags.py`).
  """
  work_dir: str = doc(MISSING, 'Folder of every artifact of the job.')
  dataset: datasets.DatasetInfo = doc(MISSING, 'The labeled dataset.')
  label_data_dir: str = doc(MISSING, 'Labeled shards (train-, dev-, test-).')
  unlabel_data_dir: str = doc(MISSING, 'Unlabeled shards.')
  teacher_model_name: str = doc(
      'efficientnet-b0', 'Round-0 teacher: efficientnet-b0..l2, keras:<a '
      'keras.applications name> (e.g. keras:ResNet50) or a .keras '
      'classifier file.')
  student_model_names: tuple[str, ...] = doc(
      ('efficientnet-b0',), 'One student per round (equal or larger models; '
      'the same kinds as teacher_model_name).')
  teacher: config_lib.Recipe = doc(defaults.ITERATE_TEACHER, 'Teacher recipe.')
  student: config_lib.Recipe = doc(defaults.ITERATE_STUDENT, 'Student recipe.')
  unlabel_file_prefix: str = doc('extra', 'Prefix of the unlabeled shards.')
  width_coefficient: Optional[float] = doc(
      None, 'Width override for all models (EfficientNets).')
  depth_coefficient: Optional[float] = doc(
      None, 'Depth override for all models (EfficientNets).')
  image_size: Optional[int] = doc(None, 'Input size of every model; default: '
                                  'the dataset\'s, else the model\'s.')
  min_threshold: float = doc(defaults.ITERATE_MIN_THRESHOLD,
                             'Keep pseudo-labels with top-1 probability >= '
                             'this.')
  num_image_per_class: Optional[int] = doc(
      None, 'Balance every class to this many images; default: unlabeled '
      'images / classes.')
  upsample: bool = doc(True, 'Duplicate images of scarce classes.')
  predict_batch_size: int = doc(256, 'Images per teacher batch.')
  seed: int = doc(0, 'Seed of initialisation, data order, augmentation and '
                  'the filter\'s choices.')
  deterministic: bool = doc(
      False, 'Fixed record order and deterministic TF ops: a rerun with the '
      'same seed on the same machine repeats every number (docs/results.md; '
      'slightly slower input pipeline).')
  teacher_init_path: Optional[str] = doc(
      None, 'Pretrained weights the round-0 teacher starts from (a .keras '
      'file, our model_dir, a TF1 or timm checkpoint); another class count '
      'keeps all but the classifier (fine-tuning).')
  student_init_path: Optional[str] = doc(
      None, 'Pretrained weights every student starts from (as '
      'teacher_init_path); default: none, students start from scratch as in '
      'the paper.')
  export: bool = doc(True, 'Export the last round\'s model (SavedModel and '
                     '.keras) into <work_dir>/export at the end.')

  def __post_init__(self):
    if not self.student_model_names:
      raise errors.ConfigError(f'{errors.field_name("student_model_names")}: '
                               'give at least one student')
    config_lib.check_ranges(self, {
        'width_coefficient': (config_lib.POSITIVE, None),
        'depth_coefficient': (config_lib.POSITIVE, None),
        'image_size': (1, None), 'min_threshold': (0.0, 1.0),
        'num_image_per_class': (1, None), 'predict_batch_size': (1, None)})
    # Both schedules are checked here, before the teacher trains.
    for recipe in (self.teacher, self.student):
      if self.dataset.num_train_images is None:
        break
      dataclasses.replace(
          recipe.train,
          num_train_images=self.dataset.num_train_images).check_schedule()

  @property
  def iterations(self) -> int:
    return len(self.student_model_names)


def stage_config(rounds: RoundsConfig, model_dir: str, model_name: str,
                 recipe: config_lib.Recipe, unlabel_data_dir: str = ''
                 ) -> config_lib.ExperimentConfig:
  """ExperimentConfig of one training stage (offline pseudo-labels if any).

  A student stage (with `unlabel_data_dir`) starts from `student_init_path`,
  the teacher from `teacher_init_path`.
  """
  model = factory.model_config(
      rounds.dataset, model_name, noise=recipe.noise,
      image_size_override=rounds.image_size,
      width_coefficient=rounds.width_coefficient,
      depth_coefficient=rounds.depth_coefficient)
  data = factory.data_config(
      rounds.dataset, model, recipe.noise,
      label_data_dir=rounds.label_data_dir, unlabel_data_dir=unlabel_data_dir,
      unlabel_prefixes=('train',), pseudo_labels_stored=bool(unlabel_data_dir),
      deterministic=rounds.deterministic, seed=rounds.seed)
  train = dataclasses.replace(
      recipe.train,
      num_train_images=rounds.dataset.num_train_images,
      unlabel_ratio=recipe.train.unlabel_ratio if unlabel_data_dir else 0.0,
      seed=rounds.seed)
  return config_lib.ExperimentConfig(
      model_dir=model_dir, model=model, data=data, train=train,
      eval_splits=rounds.dataset.eval_splits,
      init_model_path=(rounds.student_init_path if unlabel_data_dir
                       else rounds.teacher_init_path))


def _top1(results: dict) -> dict:
  return {split: round(float(m['top_1_accuracy']), 4)
          for split, m in results.items()}


def train_and_evaluate(config: config_lib.ExperimentConfig,
                       strategy: Optional[tf.distribute.Strategy] = None
                       ) -> dict:
  """Trains one stage and returns {split: top-1} of its EMA weights; writes
  each split's per-image predictions into the model_dir."""
  strategy = strategy or tf.distribute.get_strategy()
  keras.backend.clear_session()
  modes.train(config, strategy)
  return _top1(modes.evaluate(config, strategy, save_predictions=True))


def _predict_config(rounds: RoundsConfig, teacher_dir: str, r: int,
                    num_shards: int) -> modes.PredictConfig:
  predicted = layout.RoundDirs(rounds.work_dir).predict(r)
  return modes.PredictConfig(
      predict_ckpt_path=teacher_dir, data_dir=rounds.unlabel_data_dir,
      output_dir=predicted.predictions, info_dir=predicted.info,
      file_prefix=rounds.unlabel_file_prefix, num_shards=num_shards,
      shard_ids=tuple(range(num_shards)),
      predict_batch_size=rounds.predict_batch_size)


def _predict(pcfg: modes.PredictConfig, strategy: tf.distribute.Strategy) -> dict:
  model = checkpoints.read_model_config(pcfg.predict_ckpt_path)
  counts = modes.predict(model, pcfg, strategy)
  return {'images': int(sum(counts.values()))}


def filter_config(rounds: RoundsConfig, r: int, num_shards: int,
                  num_images: int) -> filter_files.FilterConfig:
  """The filter of round `r`: every predicted shard, balanced per class."""
  num_classes = rounds.dataset.num_classes
  per_class = (rounds.num_image_per_class
               or selection.default_images_per_class(num_images, num_classes))
  dirs = layout.RoundDirs(rounds.work_dir)
  predicted, filtered = dirs.predict(r), dirs.filter(r)
  return filter_files.FilterConfig(
      input_dir=rounds.unlabel_data_dir,
      prediction_dir=predicted.predictions, info_dir=predicted.info,
      output_dir=filtered.root, prelim_stats_dir=filtered.prelim_stats,
      file_prefix=rounds.unlabel_file_prefix, num_shards=num_shards,
      settings=selection.Settings(
          num_label_classes=num_classes, num_image=per_class,
          min_threshold=rounds.min_threshold, upsample=rounds.upsample,
          seed=rounds.seed))


def _filter(fcfg: filter_files.FilterConfig, only_stats: bool) -> dict:
  filter_passes.run_pass(fcfg, fcfg.units, only_get_stats=only_stats)
  result = {'num_image_per_class': fcfg.settings.num_image}
  if not only_stats:
    result['num_written'] = filter_passes.check_filter_output(
        fcfg.output_dir, fcfg.settings.min_threshold)
  return result


def _settings(value) -> dict:
  return dataclasses.asdict(value)


def run(rounds: RoundsConfig, strategy: Optional[tf.distribute.Strategy] = None,
        *, force: bool = False, stop_after: Optional[str] = None) -> list[dict]:
  """Runs (or resumes) every stage; returns the summary rows.

  `stop_after` (e.g. 'round_1/filter'): return after it, no summary (ablate).

  Raises:
    ConfigError when a finished stage's settings changed (unless `force`).
  """
  strategy = strategy or tf.distribute.get_strategy()
  _check_model_files(rounds)
  stages.StageState(rounds.work_dir)  # an unreadable state.json is refused first
  # The chief writes state.json; other workers (MultiWorker) only train.
  lock = (dir_lock.exclusive(rounds.work_dir, 'iterate run', flag='--work_dir')
          if distribute.is_chief(strategy) else contextlib.nullcontext())
  with lock:
    return _run_locked(rounds, strategy, force, stop_after)


def _check_model_files(rounds: RoundsConfig) -> None:
  """Every `.keras` model the rounds train is checked before any write."""
  dirs = layout.RoundDirs(rounds.work_dir)
  checked = set()
  for r, name in enumerate((rounds.teacher_model_name,)
                           + tuple(rounds.student_model_names)):
    if name in checked:
      continue
    checked.add(name)
    modes.check_model_files(stage_config(
        rounds, dirs.model(r), name, rounds.teacher if r == 0
        else rounds.student, unlabel_data_dir=dirs.filter(r).data if r else ''))


def pseudo_label(rounds: RoundsConfig, state: stages.StageState,
                 teacher_dir: str, r: int,
                 strategy: Optional[tf.distribute.Strategy] = None) -> str:
  """Round `r`'s predict, filter-statistics and filter stages with the
  teacher in `teacher_dir` (resumable in `state`); returns the folder of
  the filtered pseudo-labeled shards."""
  strategy = strategy or tf.distribute.get_strategy()
  dirs = layout.RoundDirs(rounds.work_dir)
  num_shards = layout.count_shards(rounds.unlabel_data_dir,
                                   rounds.unlabel_file_prefix)
  pcfg = _predict_config(rounds, teacher_dir, r, num_shards)
  predicted = state.run(dirs.predict_stage(r),
                        lambda: _predict(pcfg, strategy), _settings(pcfg),
                        outputs=[dirs.predict(r).root])
  fcfg = filter_config(rounds, r, num_shards, predicted['images'])
  state.run(dirs.filter_stats_stage(r), lambda: _filter(fcfg, True),
            _settings(fcfg), outputs=[dirs.filter(r).root])
  state.run(dirs.filter_stage(r), lambda: _filter(fcfg, False),
            _settings(fcfg), outputs=[dirs.filter(r).data])
  return dirs.filter(r).data


def _run_locked(rounds: RoundsConfig, strategy: tf.distribute.Strategy,
                force: bool, stop_after: Optional[str] = None) -> list[dict]:
  if rounds.deterministic:
    tf.config.experimental.enable_op_determinism()
  state = stages.StageState(rounds.work_dir, force=force)
  # Missing or partial unlabeled shards are refused before the teacher trains.
  layout.count_shards(rounds.unlabel_data_dir, rounds.unlabel_file_prefix)
  dirs = layout.RoundDirs(rounds.work_dir)
  rows = []

  teacher_dir = dirs.model(0)
  teacher_cfg = stage_config(rounds, teacher_dir, rounds.teacher_model_name,
                             rounds.teacher)
  result = state.run(dirs.model_stage(0),
                     lambda: train_and_evaluate(teacher_cfg, strategy),
                     _settings(teacher_cfg), outputs=[teacher_dir])
  rows.append({'round': 0, 'role': 'teacher',
               'model': rounds.teacher_model_name, 'model_dir': teacher_dir,
               **result})
  if stop_after == dirs.model_stage(0):
    return rows

  for r, student_name in enumerate(rounds.student_model_names, start=1):
    pseudo_label(rounds, state, teacher_dir, r, strategy)
    if stop_after == dirs.filter_stage(r):
      return rows
    student_dir = dirs.model(r)
    student_cfg = stage_config(
        rounds, student_dir, student_name, rounds.student,
        unlabel_data_dir=dirs.filter(r).data)
    result = state.run(dirs.model_stage(r),
                       lambda: train_and_evaluate(student_cfg, strategy),
                       _settings(student_cfg), outputs=[student_dir])
    rows.append({'round': r, 'role': 'student', 'model': student_name,
                 'model_dir': student_dir, **result})
    teacher_dir = student_dir
  if rounds.export:
    exported = state.run(
        dirs.EXPORT_STAGE, lambda: export_lib.export(teacher_dir, dirs.export),
        {'model_dir': teacher_dir, 'export_dir': dirs.export},
        outputs=[dirs.export, layout.keras_file_beside(dirs.export)])
    rows[-1] = dict(rows[-1], exported=exported)
  write_summary(rounds.work_dir, rows)
  return rows


def _splits(rows: Sequence[dict]) -> list[str]:
  return [k for k in rows[0]
          if k not in ('round', 'role', 'model', 'model_dir', 'exported',
                       'model_dir_removed')]


def summary_markdown(rows: Sequence[dict]) -> str:
  splits = _splits(rows)
  header = '| round | role | model | ' + ' | '.join(f'{s} top-1' for s in splits) + ' |'
  lines = [header, '|' + '---|' * (3 + len(splits))]
  for row in rows:
    values = ' | '.join(f'{100 * row[s]:.2f}%' for s in splits)
    lines.append(f'| {row["round"]} | {row["role"]} | {row["model"]} | {values} |')
  for row in (r for r in rows if r.get('model_dir_removed')):
    lines += ['', f'Round {row["round"]}\'s model was deleted after the rounds '
              f'after it finished ({row["model_dir_removed"]}).']
  exported = rows[-1].get('exported')
  if exported:
    lines += ['', f'The last model, exported: {exported["saved_model"]} '
              f'(SavedModel) and {exported.get("keras", "no .keras")} '
              '(docs/serving.md).']
  return '\n'.join(lines) + '\n'


def _without_missing_models(rows: Sequence[dict]) -> list[dict]:
  """Rows whose model folder is gone say so instead of pointing to it."""
  return [dict(row, model_dir=None, model_dir_removed=row['model_dir'])
          if row.get('model_dir') and not tf.io.gfile.exists(row['model_dir'])
          else row for row in rows]


def write_summary(work_dir: str, rows: Sequence[dict]) -> None:
  """summary.json, summary.md and summary.png (top-1 per round)."""
  rows = _without_missing_models(rows)
  dirs = layout.RoundDirs(work_dir)
  writers.write_json(dirs.summary('json'), list(rows))
  writers.write_text(dirs.summary('md'), summary_markdown(rows))
  splits = _splits(rows)
  fig = figure_lib.Figure(figsize=(5, 3.5))
  ax = fig.subplots()
  rounds = [row['round'] for row in rows]
  for split in splits:
    ax.plot(rounds, [100 * row[split] for row in rows], marker='o', label=split)
  ax.set_xticks(rounds)
  ax.set_xticklabels([f'{r}\n{row["model"].replace("efficientnet-", "")}'
                      for r, row in zip(rounds, rows)])
  ax.set_xlabel('round (0 = supervised teacher)')
  ax.set_ylabel('top-1 accuracy (%)')
  ax.set_title('Noisy Student rounds')
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  with writers.atomic_output(dirs.summary('png')) as f:
    fig.savefig(f, format='png', dpi=120)
