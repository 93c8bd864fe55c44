r"""The iterative Noisy Student pipeline, resumable stage by stage.

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
All artifacts live in `--work_dir` (round_0/teacher, round_1/predict,
round_1/filter, round_1/student, ...). A finished stage is recorded in
`state.json` (written atomically) and skipped on rerun; an interrupted
training stage resumes from its last checkpoint and an interrupted predict or
filter stage redoes only its unfinished shards. At the end `summary.json`,
`summary.md` (round, model, dev and test top-1) and `summary.png` are written.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from typing import Callable, Optional, Sequence

from absl import logging
import tensorflow as tf

from data import writers
from noisy_student import config as config_lib
from noisy_student import filtering
from noisy_student import tasks

STATE_FILE = 'state.json'


@dataclasses.dataclass(frozen=True)
class StageSettings:
  """Training settings of one kind of stage (teacher or student)."""
  train_steps: int
  train_batch_size: int
  base_learning_rate: float = 0.016
  final_base_lr: Optional[float] = None
  weight_decay: float = 1e-5
  label_smoothing: float = 0.1
  moving_average_decay: float = 0.9999
  dropout_rate: Optional[float] = None
  stochastic_depth_rate: Optional[float] = None
  augment_name: Optional[str] = None
  randaug_magnitude: int = 27
  randaug_num_layers: int = 2
  unlabel_ratio: float = 0.0
  teacher_softmax_temp: float = -1.0
  iterations_per_loop: int = 100


@dataclasses.dataclass(frozen=True)
class Plan:
  """The whole iterative job (built from flags by `main`, or by the demo)."""
  work_dir: str
  task_name: str
  label_data_dir: str
  unlabel_data_dir: str
  teacher_model_name: str
  student_model_names: tuple[str, ...]
  teacher: StageSettings
  student: StageSettings
  unlabel_file_prefix: str = 'extra'
  width_coefficient: Optional[float] = None
  depth_coefficient: Optional[float] = None
  image_size: Optional[int] = None
  min_threshold: float = 0.0
  num_image_per_class: Optional[int] = None
  upsample: bool = True
  eval_batch_size: int = 256
  predict_batch_size: int = 256
  mixed_precision: str = 'float32'
  seed: int = 0

  @property
  def iterations(self) -> int:
    return len(self.student_model_names)


class StageState:
  """state.json: {stage: result} of finished stages (atomic rewrites)."""

  def __init__(self, work_dir: str):
    self.path = os.path.join(work_dir, STATE_FILE)
    self.done = {}
    if tf.io.gfile.exists(self.path):
      with tf.io.gfile.GFile(self.path) as f:
        self.done = json.load(f)

  def run(self, name: str, fn: Callable[[], object]):
    if name in self.done:
      logging.info('[%s] finished earlier; skipping', name)
      return self.done[name]
    logging.info('[%s] starting', name)
    start = time.time()
    result = fn()
    self.done[name] = result
    writers.write_json(self.path, self.done)
    logging.info('[%s] done in %.1fs', name, time.time() - start)
    return result


def unlabeled_shards(data_dir: str, prefix: str) -> int:
  """Number of shards N of `<prefix>-xxxxx-of-N` files (all must be there)."""
  names = [os.path.basename(p) for p in
           tf.io.gfile.glob(os.path.join(data_dir, f'{prefix}-*-of-*'))]
  totals = {int(m.group(1)) for m in
            (re.match(rf'{re.escape(prefix)}-\d+-of-(\d+)$', n) for n in names) if m}
  if len(totals) != 1:
    raise FileNotFoundError(
        f'{data_dir}: expected shards {prefix}-00000-of-N (one N), found '
        f'{sorted(names)[:5]}')
  total = totals.pop()
  if len(names) != total:
    raise FileNotFoundError(f'{data_dir}: {len(names)} of {total} '
                            f'{prefix} shards present')
  return total


def _model_config(plan: Plan, model_name: str, settings: StageSettings
                  ) -> config_lib.ModelConfig:
  task = tasks.get_task(plan.task_name)
  image_size = plan.image_size or task.image_size
  if image_size is None:
    import efficientnet  # pylint: disable=g-import-not-at-top
    image_size = efficientnet.get_spec(model_name).train_resolution
  return config_lib.ModelConfig(
      model_name=model_name, num_classes=task.num_classes,
      image_size=image_size, small_image=task.small_image,
      mean_rgb=tuple(task.mean_rgb), stddev_rgb=tuple(task.stddev_rgb),
      dropout_rate=settings.dropout_rate,
      stochastic_depth_rate=settings.stochastic_depth_rate,
      width_coefficient=plan.width_coefficient,
      depth_coefficient=plan.depth_coefficient)


def stage_config(plan: Plan, model_dir: str, model_name: str,
                 settings: StageSettings, unlabel_data_dir: str = ''
                 ) -> config_lib.ExperimentConfig:
  """ExperimentConfig of one training stage (offline pseudo-labels if any)."""
  task = tasks.get_task(plan.task_name)
  model = _model_config(plan, model_name, settings)
  data = config_lib.DataConfig(
      label_data_dir=plan.label_data_dir, unlabel_data_dir=unlabel_data_dir,
      unlabel_prefixes=('train',), image_size=model.image_size,
      small_image=model.small_image, flip=task.flip,
      pseudo_labels_stored=bool(unlabel_data_dir), num_classes=task.num_classes,
      augment_name=settings.augment_name,
      unl_augment_name=settings.augment_name,
      randaug_magnitude=settings.randaug_magnitude,
      randaug_num_layers=settings.randaug_num_layers, seed=plan.seed)
  train = config_lib.TrainConfig(
      train_steps=settings.train_steps,
      train_last_step_num=settings.train_steps,
      train_batch_size=settings.train_batch_size,
      eval_batch_size=plan.eval_batch_size,
      num_train_images=task.num_train_images,
      iterations_per_loop=settings.iterations_per_loop,
      save_checkpoints_steps=settings.iterations_per_loop,
      base_learning_rate=settings.base_learning_rate,
      final_base_lr=settings.final_base_lr,
      moving_average_decay=settings.moving_average_decay,
      weight_decay=settings.weight_decay,
      label_smoothing=settings.label_smoothing,
      unlabel_ratio=settings.unlabel_ratio if unlabel_data_dir else 0.0,
      teacher_softmax_temp=settings.teacher_softmax_temp,
      mixed_precision=plan.mixed_precision, seed=plan.seed)
  return config_lib.ExperimentConfig(
      model_dir=model_dir, model=model, data=data, train=train,
      eval_splits=task.eval_splits)


def _top1(results: dict) -> dict:
  return {split: round(float(m['top_1_accuracy']), 4)
          for split, m in results.items()}


def _train_and_evaluate(config: config_lib.ExperimentConfig,
                        strategy: tf.distribute.Strategy) -> dict:
  from noisy_student import runner  # pylint: disable=g-import-not-at-top
  import keras  # pylint: disable=g-import-not-at-top
  keras.backend.clear_session()
  runner.train(config, strategy)
  return _top1(runner.evaluate(config, strategy))


def _predict(plan: Plan, teacher_dir: str, round_dir: str, num_shards: int,
             strategy: tf.distribute.Strategy) -> dict:
  from noisy_student import checkpoints, runner  # pylint: disable=g-import-not-at-top,g-multiple-import
  config = checkpoints.read_model_config(teacher_dir)
  experiment = config_lib.ExperimentConfig(
      model_dir=teacher_dir, model=config,
      data=config_lib.DataConfig(label_data_dir=plan.unlabel_data_dir),
      train=config_lib.TrainConfig())
  pcfg = runner.PredictConfig(
      predict_ckpt_path=teacher_dir, data_dir=plan.unlabel_data_dir,
      output_dir=os.path.join(round_dir, 'predict', 'predict_label'),
      info_dir=os.path.join(round_dir, 'predict', 'info'),
      file_prefix=plan.unlabel_file_prefix, num_shards=num_shards,
      shard_ids=tuple(range(num_shards)),
      batch_size=plan.predict_batch_size)
  counts = runner.predict(experiment, pcfg, strategy)
  return {'images': int(sum(counts.values()))}


def _filter(plan: Plan, round_dir: str, num_shards: int, num_images: int,
            only_stats: bool) -> dict:
  task = tasks.get_task(plan.task_name)
  per_class = plan.num_image_per_class or max(1, num_images // task.num_classes)
  filter_dir = os.path.join(round_dir, 'filter')
  cmd = [
      sys.executable, '-m', 'noisy_student.filter_unlabel',
      f'--input_dir={plan.unlabel_data_dir}',
      f'--prediction_dir={os.path.join(round_dir, "predict", "predict_label")}',
      f'--info_dir={os.path.join(round_dir, "predict", "info")}',
      f'--prelim_stats_dir={os.path.join(filter_dir, "prelim_stats")}',
      f'--output_dir={filter_dir}', f'--num_shards={num_shards}',
      '--shard_id=all', f'--num_image={per_class}',
      f'--min_threshold={plan.min_threshold}',
      f'--num_label_classes={task.num_classes}',
      f'--upsample={int(plan.upsample)}', f'--file_prefix={plan.unlabel_file_prefix}',
      '--task=0', f'--only_get_stats={int(only_stats)}', f'--seed={plan.seed}']
  result = subprocess.run(cmd, capture_output=True, text=True)
  if result.returncode:
    raise RuntimeError(f'filter_unlabel failed:\n{result.stderr[-4000:]}')
  if only_stats:
    return {'num_image_per_class': per_class}
  return {'num_image_per_class': per_class,
          'num_written': check_filter_output(filter_dir, plan.min_threshold)}


def check_filter_output(filter_dir: str, min_threshold: float) -> int:
  """The number of pseudo-labeled images the selection wrote (from
  `<filter_dir>/stats/final_stats.json`); raises ValueError when it is 0, since
  a student cannot train on an empty unlabeled set."""
  path = filtering.final_stats_file(filter_dir)
  with tf.io.gfile.GFile(path) as f:
    stats = json.load(f)
  written = int(stats['num_written'])
  if written == 0:
    raise ValueError(
        f'{path}: the filter kept no pseudo-labels: none of the '
        f'{stats.get("num_prediction_records", "?")} teacher predictions has '
        f'a top-1 probability >= --min_threshold={min_threshold}. Lower '
        '--min_threshold or train the teacher longer, then rerun (finished '
        'stages are kept).')
  return written


def run(plan: Plan, strategy: Optional[tf.distribute.Strategy] = None) -> list[dict]:
  """Runs (or resumes) every stage; returns the summary rows."""
  strategy = strategy or tf.distribute.get_strategy()
  tf.io.gfile.makedirs(plan.work_dir)
  state = StageState(plan.work_dir)
  num_shards = unlabeled_shards(plan.unlabel_data_dir, plan.unlabel_file_prefix)
  rows = []

  teacher_dir = os.path.join(plan.work_dir, 'round_0', 'teacher')
  teacher_cfg = stage_config(plan, teacher_dir, plan.teacher_model_name,
                             plan.teacher)
  result = state.run('round_0/teacher',
                     lambda: _train_and_evaluate(teacher_cfg, strategy))
  rows.append({'round': 0, 'role': 'teacher', 'model': plan.teacher_model_name,
               'model_dir': teacher_dir, **result})

  for r, student_name in enumerate(plan.student_model_names, start=1):
    round_dir = os.path.join(plan.work_dir, f'round_{r}')
    predicted = state.run(
        f'round_{r}/predict',
        lambda: _predict(plan, teacher_dir, round_dir, num_shards, strategy))
    state.run(f'round_{r}/filter_stats',
              lambda: _filter(plan, round_dir, num_shards, predicted['images'],
                              only_stats=True))
    state.run(f'round_{r}/filter',
              lambda: _filter(plan, round_dir, num_shards, predicted['images'],
                              only_stats=False))
    student_dir = os.path.join(round_dir, 'student')
    student_cfg = stage_config(plan, student_dir, student_name, plan.student,
                               unlabel_data_dir=os.path.join(round_dir, 'filter',
                                                             'data'))
    result = state.run(f'round_{r}/student',
                       lambda: _train_and_evaluate(student_cfg, strategy))
    rows.append({'round': r, 'role': 'student', 'model': student_name,
                 'model_dir': student_dir, **result})
    teacher_dir = student_dir
  write_summary(plan.work_dir, rows)
  return rows


def summary_markdown(rows: Sequence[dict]) -> str:
  splits = [k for k in rows[0] if k not in ('round', 'role', 'model', 'model_dir')]
  header = '| round | role | model | ' + ' | '.join(f'{s} top-1' for s in splits) + ' |'
  lines = [header, '|' + '---|' * (3 + len(splits))]
  for row in rows:
    values = ' | '.join(f'{100 * row[s]:.2f}%' for s in splits)
    lines.append(f'| {row["round"]} | {row["role"]} | {row["model"]} | {values} |')
  return '\n'.join(lines) + '\n'


def write_summary(work_dir: str, rows: Sequence[dict]) -> None:
  """summary.json, summary.md and summary.png (top-1 per round)."""
  writers.write_json(os.path.join(work_dir, 'summary.json'), list(rows))
  writers.write_text(os.path.join(work_dir, 'summary.md'), summary_markdown(rows))
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  splits = [k for k in rows[0] if k not in ('round', 'role', 'model', 'model_dir')]
  fig, ax = plt.subplots(figsize=(5, 3.5))
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
  path = os.path.join(work_dir, 'summary.png')
  with writers.atomic_output(path) as f:
    fig.savefig(f, format='png', dpi=120)
  plt.close(fig)
