"""The ablation library: arms of the noised student over seeds.

Per seed, one teacher is trained (`drivers/rounds.py`) and its filtered
pseudo-labels are shared by every student arm, so the arms differ only in how
the student learns (the arms are listed in `noisy_student/ablate.py`'s help).
`control` is the teacher's supervised recipe trained for the student's steps:
"full - control" is the method, not the longer training. Every arm's stage
is resumable (`drivers/stages.py`) and writes its per-image test predictions
(`predictions/seed_<N>/`); `run_ablation` and `merge` write
`ablation.{md,json,png}` (tables: `analysis/ablation_table.py`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import MISSING
from typing import Callable, Optional, Sequence

from absl import logging
import keras
import numpy as np

from data import layout
from data import writers
from noisy_student.analysis import ablation_table as table_lib
from noisy_student.analysis import stats
from noisy_student.core import config as config_lib
from noisy_student.core.config import doc
from noisy_student.core import datasets
from noisy_student.core import defaults
from noisy_student.drivers import rounds as rounds_lib
from noisy_student.drivers import stages
from noisy_student.runtime import dir_lock
from noisy_student.runtime import errors
from noisy_student.runtime import machine

ARMS = ('control', 'full', 'no_noise', 'data_noise', 'model_noise',
        'hard_labels', 'two_rounds', 'larger_student')
# Arms that need RandAugment in the student to differ from another arm.
NEEDS_DATA_NOISE = {'data_noise': 'no_noise', 'model_noise': 'full'}
# The split whose per-image predictions are compared (McNemar).
PREDICTION_SPLIT = 'test'


@dataclasses.dataclass(frozen=True)
class AblationConfig:
  """The whole ablation (built from flags by `ablate.config_from_flags`).

  The fields with help texts are `ablate`'s flags (`cli/config_flags.py`).
  """
  work_dir: str = doc(MISSING, 'Where every artifact goes (seed_<N>/).')
  label_data_dir: str  # the labeled shards
  unlabel_data_dir: str = doc(MISSING, 'The unlabeled (extra-*) shards.')
  dataset: datasets.DatasetInfo  # dataset_info.json or a built-in one
  seeds: tuple[int, ...] = doc(MISSING, 'Seeds (comma-separated).')
  teacher: config_lib.Recipe  # the --preset's, with --teacher_train_steps
  student: config_lib.Recipe  # the --preset's, with --student_train_steps
  model_name: str = 'efficientnet-b0'
  width_coefficient: float = doc(defaults.DEMO_WIDTH_COEFFICIENT,
                                 'EfficientNet-B0 width scaling.')
  depth_coefficient: float = doc(defaults.DEMO_DEPTH_COEFFICIENT,
                                 'EfficientNet-B0 depth scaling.')
  larger_scale: float = doc(1.5, 'Larger student\'s width and depth, x others\'.')
  larger_student_steps: Optional[int] = doc(
      None, 'The larger student\'s training steps (None: the student\'s).')
  min_threshold: float = doc(defaults.ITERATE_MIN_THRESHOLD,
                             'The filter\'s confidence threshold.')
  arms: tuple[str, ...] = doc(ARMS, f'Arms to run, of {", ".join(ARMS)}.')
  deterministic: bool = doc(
      True, 'Fixed record order and deterministic TF ops (a rerun repeats '
      'every number); false reuses an iterate run made without it.')
  jobs: int = doc(
      1, 'Stages of a seed trained at once, each in a child process on its '
      'own cores (teacher beside control, students side by side; logs in '
      '<work_dir>/seed_<N>/logs/). On small CPU machines 2 is about twice as '
      'fast: TF trains these small models no faster on two cores than one.')

  def __post_init__(self):
    above_0 = (config_lib.POSITIVE, None)
    config_lib.check_ranges(self, {
        'width_coefficient': above_0, 'depth_coefficient': above_0,
        'larger_scale': above_0, 'larger_student_steps': (1, None),
        'min_threshold': (0.0, 1.0), 'jobs': (1, None)})
    if not self.seeds:
      raise errors.ConfigError(f'{errors.field_name("seeds")}: give at least '
                               'one seed')
    unknown = sorted(set(self.arms) - set(ARMS))
    if unknown or not self.arms:
      raise errors.ConfigError(
          f'{errors.field_name("arms")}={",".join(self.arms)}: expected some '
          f'of {", ".join(ARMS)}')


def student_recipe(arm: str, student: config_lib.Recipe) -> config_lib.Recipe:
  """The student recipe of `arm` (the full one for full / two_rounds / larger)."""
  noise, train = student.noise, student.train
  if arm == 'no_noise':
    noise = dataclasses.replace(noise, augment_name=None,
                                unl_augment_name='default', dropout_rate=0.0,
                                stochastic_depth_rate=0.0)
  elif arm == 'data_noise':
    noise = dataclasses.replace(noise, dropout_rate=0.0,
                                stochastic_depth_rate=0.0)
  elif arm == 'model_noise':
    noise = dataclasses.replace(noise, augment_name=None,
                                unl_augment_name='default')
  elif arm == 'hard_labels':
    train = dataclasses.replace(train, teacher_softmax_temp=-1.0)
  return config_lib.Recipe(train=train, noise=noise)


def arm_recipe(cfg: AblationConfig, arm: str) -> config_lib.Recipe:
  """The recipe `arm` trains with: the control is the teacher's recipe for the
  student's steps; the larger student has its own step budget."""
  if arm == 'control':
    return cfg.teacher.with_steps(cfg.student.train.train_steps)
  recipe = student_recipe(arm, cfg.student)
  if arm == 'larger_student' and cfg.larger_student_steps:
    recipe = recipe.with_steps(cfg.larger_student_steps)
  return recipe


def arm_steps(cfg: AblationConfig) -> dict:
  """{arm or 'teacher': training steps} (printed with the table)."""
  steps = {'teacher': cfg.teacher.train.train_steps}
  steps.update({arm: arm_recipe(cfg, arm).train.train_steps for arm in ARMS})
  return steps


def rounds_config(cfg: AblationConfig, seed: int) -> rounds_lib.RoundsConfig:
  """The shared part of one seed: teacher, full student(s)."""
  students = (cfg.model_name,) * (2 if 'two_rounds' in cfg.arms else 1)
  return rounds_lib.RoundsConfig(
      work_dir=layout.seed_dir(cfg.work_dir, seed),
      dataset=cfg.dataset, label_data_dir=cfg.label_data_dir,
      unlabel_data_dir=cfg.unlabel_data_dir,
      teacher_model_name=cfg.model_name, student_model_names=students,
      teacher=cfg.teacher, student=cfg.student,
      width_coefficient=cfg.width_coefficient,
      depth_coefficient=cfg.depth_coefficient,
      min_threshold=cfg.min_threshold, seed=seed,
      deterministic=cfg.deterministic, export=False)


def arm_stage(cfg: AblationConfig, rounds: rounds_lib.RoundsConfig,
              arm: str) -> config_lib.ExperimentConfig:
  """The training stage of an arm that is not a stage of the rounds."""
  dirs = layout.RoundDirs(rounds.work_dir)
  if arm == 'larger_student':
    rounds = dataclasses.replace(
        rounds, width_coefficient=cfg.width_coefficient * cfg.larger_scale,
        depth_coefficient=cfg.depth_coefficient * cfg.larger_scale)
  pseudo_labels = '' if arm == 'control' else dirs.filter(1).data
  return rounds_lib.stage_config(rounds, dirs.arm(arm), cfg.model_name,
                                 arm_recipe(cfg, arm),
                                 unlabel_data_dir=pseudo_labels)


def run_seed(cfg: AblationConfig, seed: int) -> dict:
  """{arm or 'teacher': test top-1} of one seed (resumable)."""
  rounds = rounds_config(cfg, seed)
  with dir_lock.exclusive(rounds.work_dir, 'ablation', flag='--work_dir'):
    return _run_seed_locked(cfg, seed, rounds)


def _run_seed_locked(cfg: AblationConfig, seed: int,
                     rounds: rounds_lib.RoundsConfig) -> dict:
  keras.utils.set_random_seed(seed)  # as iterate and the demo
  rows = rounds_lib.run(rounds)
  results = {'teacher': rows[0], 'full': rows[1]}
  if len(rows) > 2:
    results['two_rounds'] = rows[2]
  state = stages.StageState(rounds.work_dir)
  dirs = layout.RoundDirs(rounds.work_dir)
  for arm in cfg.arms:
    if arm in results:
      continue
    stage = arm_stage(cfg, rounds, arm)
    results[arm] = state.run(
        dirs.arm_stage(arm), lambda s=stage: train_arm(s, seed),
        dataclasses.asdict(stage), outputs=[dirs.arm(arm)],
        needs=arm_needs(arm))
  return {name: float(row['test']) for name, row in results.items()}


def arm_needs(arm: str) -> tuple[str, ...]:
  """The round stages an arm is built on: none, or round 1's pseudo-labels."""
  return () if arm == 'control' else (layout.RoundDirs.filter_stage(1),)


def train_arm(stage: config_lib.ExperimentConfig, seed: int) -> dict:
  """Trains an arm's model from the seed's initialisation, whatever ran before."""
  keras.utils.set_random_seed(seed)
  return rounds_lib.train_and_evaluate(stage)


# Arms that are stages of the seed's rounds (the others are ablation/<arm>).
_STAGE_OF = {'teacher': layout.RoundDirs.model_stage(0),
             'full': layout.RoundDirs.model_stage(1),
             'two_rounds': layout.RoundDirs.model_stage(2)}


def model_dir_of(seed_dir: str, arm: str) -> str:
  """Where arm `arm` (or 'teacher') of a seed trained."""
  dirs = layout.RoundDirs(seed_dir)
  rounds = {'teacher': 0, 'full': 1, 'two_rounds': 2}
  return dirs.model(rounds[arm]) if arm in rounds else dirs.arm(arm)


def finished_results(cfg: AblationConfig, seed: int) -> dict:
  """{arm or 'teacher': test top-1} of the seed's finished stages; trains nothing."""
  state = stages.StageState(layout.seed_dir(cfg.work_dir, seed))
  results = {}
  for name in ('teacher',) + ARMS:
    stage = state.finished(_STAGE_OF.get(name,
                                         layout.RoundDirs.arm_stage(name)))
    if stage is not None:
      results[name] = float(stage['result']['test'])
  return results


def seed_run_record(cfg: AblationConfig, seed: int) -> dict:
  """How long the seed's finished stages took (seconds, from state.json; stages
  finished before the store timed them are left out) and on what machine."""
  state = stages.StageState(layout.seed_dir(cfg.work_dir, seed))
  seconds = [e.get('seconds') for e in state.done.values()
             if e.get('finished', True)]
  return {'seconds': round(sum(s for s in seconds if s), 1),
          'untimed_stages': sum(1 for s in seconds if s is None),
          'machine': machine.name()}


def collect_predictions(cfg: AblationConfig, seed: int,
                        arms: Sequence[str]) -> dict:
  """Copies each arm's per-image test predictions to
  `<work_dir>/predictions/seed_<N>/<arm>-test.npz` and returns the McNemar
  tests {'<arm>-<other>': {...}} of every comparison of the table."""
  seed_dir = layout.seed_dir(cfg.work_dir, seed)
  target = os.path.join(cfg.work_dir, 'predictions', f'seed_{seed}')
  correct, labels = {}, {}
  for arm in arms:
    source = layout.eval_predictions(model_dir_of(seed_dir, arm),
                                     PREDICTION_SPLIT)
    if not os.path.exists(source):
      continue  # a stage finished before predictions were kept
    os.makedirs(target, exist_ok=True)
    copy = os.path.join(target, f'{arm}-{PREDICTION_SPLIT}.npz')
    with writers.atomic_path(copy) as temp:
      shutil.copyfile(source, temp)
    with np.load(source) as arrays:
      correct[arm] = arrays['predicted'] == arrays['label']
      labels[arm] = arrays['label']
  tests = {}
  rank = {name: i for i, name in enumerate(table_lib.ORDER)}
  for arm in correct:
    for other in ('teacher', 'control', 'full'):
      # Each pair once, the later arm of the table first ('full-teacher').
      if other not in correct or rank[other] >= rank[arm]:
        continue
      if not np.array_equal(labels[arm], labels[other]):
        raise errors.InputError(
            f'{target}: {arm} and {other} were evaluated on different test '
            f'sets or orders ({len(correct[arm])} and {len(correct[other])} '
            'images, labels not equal); McNemar pairs images by position')
      result = stats.mcnemar(correct[arm], correct[other])
      tests[table_lib.comparison_key(arm, other)] = {
          'only_a': result.only_a, 'only_b': result.only_b,
          'both': result.both, 'neither': result.neither,
          'p_value': result.p_value}
  return tests


def run_ablation(cfg: AblationConfig, summarize_only: bool = False,
                 seed_runner: Callable[[AblationConfig, int], dict] = None
                 ) -> list[dict]:
  """Runs every seed and writes ablation.{md,json,png}; returns the rows.

  With `summarize_only`, trains nothing: the table holds the stages that
  finished (e.g. while another process is still running the ablation).
  `seed_runner` trains one seed (default `run_seed`, one stage after the
  other in this process; `drivers/ablation_jobs.py` runs stages side by side).
  """
  start = time.time()
  per_seed, mcnemar, runs = {}, {}, {}
  for seed in cfg.seeds:
    seed_start = time.time()
    if summarize_only:
      per_seed[seed] = finished_results(cfg, seed)
    else:
      logging.info('[ablate] seed %d', seed)
      per_seed[seed] = (seed_runner or run_seed)(cfg, seed)
    if per_seed[seed]:
      mcnemar[seed] = collect_predictions(cfg, seed, list(per_seed[seed]))
      runs[seed] = seed_run_record(cfg, seed)
      if not summarize_only:
        runs[seed]['wall_seconds'] = round(time.time() - seed_start, 1)
        runs[seed]['jobs'] = cfg.jobs
  if not any(per_seed.values()):
    raise errors.InputError(f'{cfg.work_dir}: no finished stage for seeds '
                            f'{list(cfg.seeds)}; nothing to summarize')
  return write_tables(cfg.work_dir, per_seed, settings_record(cfg), mcnemar,
                      runs, seconds=round(time.time() - start, 1))


def settings_record(cfg: AblationConfig) -> dict:
  """What makes two ablations' seeds comparable (saved in ablation.json):
  dataset, model scaling, both recipes, filter, the arms' steps."""
  return json.loads(json.dumps({
      'dataset': cfg.dataset.name, 'model_name': cfg.model_name,
      'teacher': dataclasses.asdict(cfg.teacher),
      'student': dataclasses.asdict(cfg.student),
      'width_coefficient': cfg.width_coefficient,
      'depth_coefficient': cfg.depth_coefficient,
      'larger_scale': cfg.larger_scale, 'min_threshold': cfg.min_threshold,
      'deterministic': cfg.deterministic, 'steps': arm_steps(cfg),
      'test_images': dict(cfg.dataset.eval_split_sizes).get('test')},
      default=str))


def _keyed(mapping: dict) -> dict:
  return {str(k): v for k, v in sorted(mapping.items())}


def write_tables(work_dir: str, per_seed: dict, record: dict,
                 mcnemar: dict, runs: dict, **more) -> list[dict]:
  """ablation.{md,json,png} in `work_dir`; returns the rows."""
  rows = table_lib.summarize(per_seed, record['steps'],
                             record['test_images'], mcnemar)
  claim_rows = table_lib.claims(per_seed, mcnemar)
  seeds = sorted(per_seed)
  writers.write_text(layout.ablation_table(work_dir, 'md'), table_lib.markdown(
      rows, f'Ablations on {record["dataset"]}, seeds {seeds}', claim_rows))
  writers.write_json(layout.ablation_table(work_dir, 'json'), {
      'rows': rows, 'claims': claim_rows, 'per_seed': _keyed(per_seed),
      'mcnemar': _keyed(mcnemar), 'runs': _keyed(runs), 'settings': record,
      **more})
  table_lib.plot(rows, layout.ablation_table(work_dir, 'png'),
                 record['dataset'])
  return rows


def _read_table(path: str) -> dict:
  try:
    with open(path) as f:
      table = json.load(f)
  except (OSError, json.JSONDecodeError) as err:
    raise errors.InputError(f'{path}: cannot read an ablation table '
                            f'({err})') from None
  if not isinstance(table, dict) or 'settings' not in table or (
      'per_seed' not in table):
    raise errors.InputError(
        f'{path}: no "settings" (written before ablate recorded them): '
        'rerun `ablate --summarize_only` with that run\'s flags first')
  return table


def merge(paths: Sequence[str], work_dir: str) -> list[dict]:
  """One table from the ablation.json files of runs with the same settings.

  Seeds run on other days or machines (each run's `--seeds`) are summarised
  together; runs with other settings, or one seed with two results, are
  refused. Writes ablation.{md,json,png} into `work_dir`; returns the rows.

  Raises:
    InputError naming the file and what differs.
  """
  per_seed, record, sources, mcnemar, runs = {}, None, {}, {}, {}
  for path in paths:
    table = _read_table(path)
    if record is None:
      record = table['settings']
    elif table['settings'] != record:
      fields = sorted(k for k in set(record) | set(table['settings'])
                      if record.get(k) != table['settings'].get(k))
      raise errors.InputError(f'{path}: other settings than {paths[0]} '
                              f'({", ".join(fields)}); only runs of one '
                              'ablation can be merged')
    for seed, results in table['per_seed'].items():
      seed = int(seed)
      if seed in per_seed and per_seed[seed] != results:
        raise errors.InputError(f'{path}: seed {seed} has other results than '
                                f'in {sources[seed]}')
      bad = [k for k, v in results.items()
             if isinstance(v, bool) or not isinstance(v, (int, float))]
      if bad:
        raise errors.InputError(f'{path}: seed {seed}: {bad[0]} is '
                                f'{results[bad[0]]!r}, not an accuracy')
      per_seed[seed], sources[seed] = results, path
      if str(seed) in table.get('mcnemar', {}):
        mcnemar[seed] = table['mcnemar'][str(seed)]
      if str(seed) in table.get('runs', {}):
        runs[seed] = table['runs'][str(seed)]
  if not per_seed:
    raise errors.InputError(f'{errors.field_name("merge")}: no seeds in ' + ', '.join(paths))
  return write_tables(work_dir, per_seed, record, mcnemar, runs,
                      merged_from=list(paths))
