r"""The paper's small-scale claims, in one command: ablations over seeds.

  python -m noisy_student.ablate --dataset=digits --seeds=0,1,2
  python -m noisy_student.ablate --preset=cifar10_subset \
      --data_dir=data/cifar10_1k/proc \
      --unlabel_data_dir=data/cifar10_1k/unlabeled --seeds=0,1,2

Per seed, one teacher is trained and its filtered pseudo-labels are shared by
every arm, so the arms differ only in how the student learns:

  full            the noised student (RandAugment, dropout, stochastic depth),
                  soft pseudo-labels, one round;
  no_noise        the same student without RandAugment, dropout or stochastic
                  depth (paper: the gain shrinks, Table 6);
  data_noise      RandAugment kept, no dropout or stochastic depth (Table 6);
  model_noise     dropout and stochastic depth kept, no RandAugment (Table 6);
  hard_labels     one-hot pseudo-labels instead of soft ones (paper: soft are
                  at least as good);
  two_rounds      the full student becomes the teacher of a second full
                  student (paper: iterating helps, Table 5);
  larger_student  the full student at --larger_scale x width and depth,
                  trained --larger_student_train_steps (default: the
                  student's; the paper trains it as long as it needs)
                  (paper: an equal-or-larger student).

Writes `<work_dir>/ablation.md`, `ablation.json` and `ablation.png`: test top-1
per arm as mean +- std over the seeds, and the paired difference over the
seeds against the teacher and against the full student (mean, 95%
t-interval, p-value: `noisy_student.analysis.stats`), with each arm's
training steps. Every stage is resumable (a rerun skips finished stages;
`state.json` per seed).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Optional, Sequence

from absl import flags
from absl import logging
import keras

from data import layout
from noisy_student.runtime import entry
from data import prepare_digits
from data import writers
from noisy_student.analysis import stats
from noisy_student.cli import config_flags
from noisy_student.core import config as config_lib
from noisy_student.core import datasets
from noisy_student.core import defaults
from noisy_student.runtime import dir_lock
from noisy_student.runtime import errors
from noisy_student.drivers import rounds as rounds_lib

FLAGS = flags.FLAGS
ARMS = ('full', 'no_noise', 'data_noise', 'model_noise', 'hard_labels',
        'two_rounds', 'larger_student')
# Arms that need RandAugment in the student to differ from another arm.
_NEEDS_DATA_NOISE = {'data_noise': 'no_noise', 'model_noise': 'full'}
# What the paper reports for each arm, relative to the full noised student.
PAPER_DIRECTION = {
    'teacher': 'the baseline',
    'full': 'beats the teacher',
    'no_noise': 'smaller gain than full (Table 6)',
    'data_noise': 'between no_noise and full (Table 6)',
    'model_noise': 'between no_noise and full (Table 6)',
    'hard_labels': 'at most full (soft >= hard)',
    'two_rounds': 'above full (Table 5)',
    'larger_student': 'at least full (equal-or-larger student)',
}


@dataclasses.dataclass(frozen=True)
class AblationConfig:
  """The whole ablation (built from flags by `config_from_flags`).

  Attributes:
    work_dir: every artifact; `seed_<N>/` per seed.
    label_data_dir / unlabel_data_dir: labeled shards and unlabeled shards.
    dataset: classes, sizes, statistics (dataset_info.json or built-in).
    seeds: one full set of arms per seed.
    teacher / student: the recipes (the --preset's, the demo's by default).
    width_coefficient / depth_coefficient: the model's scaling (teacher and
      every student but the larger one).
    larger_scale: the larger student's width and depth, x the above.
    larger_student_steps: its training steps (None: the student's).
    min_threshold: the filter's confidence threshold.
    arms: the arms to run (default: all).
    deterministic: fixed record order and deterministic ops in every stage.
  """
  work_dir: str
  label_data_dir: str
  unlabel_data_dir: str
  dataset: datasets.DatasetInfo
  seeds: tuple[int, ...]
  teacher: config_lib.Recipe
  student: config_lib.Recipe
  model_name: str = 'efficientnet-b0'
  width_coefficient: float = defaults.DEMO_WIDTH_COEFFICIENT
  depth_coefficient: float = defaults.DEMO_DEPTH_COEFFICIENT
  larger_scale: float = 1.5
  larger_student_steps: Optional[int] = None
  min_threshold: float = defaults.ITERATE_MIN_THRESHOLD
  arms: tuple[str, ...] = ARMS
  deterministic: bool = True


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
  """`student_recipe` with the arm's own step budget (the larger student's)."""
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
  state = rounds_lib.StageState(rounds.work_dir)
  dirs = layout.RoundDirs(rounds.work_dir)
  for arm in cfg.arms:
    if arm in results:
      continue
    arm_rounds = rounds
    if arm == 'larger_student':
      arm_rounds = dataclasses.replace(
          rounds, width_coefficient=cfg.width_coefficient * cfg.larger_scale,
          depth_coefficient=cfg.depth_coefficient * cfg.larger_scale)
    stage = rounds_lib.stage_config(
        arm_rounds, dirs.arm(arm), cfg.model_name, arm_recipe(cfg, arm),
        unlabel_data_dir=dirs.filter(1).data)
    results[arm] = state.run(
        dirs.arm_stage(arm), lambda s=stage: _train_arm(s, seed),
        dataclasses.asdict(stage), outputs=[dirs.arm(arm)])
  return {name: float(row['test']) for name, row in results.items()}


# Arms that are stages of the seed's rounds (the others are ablation/<arm>).
_STAGE_OF = {'teacher': layout.RoundDirs.model_stage(0),
             'full': layout.RoundDirs.model_stage(1),
             'two_rounds': layout.RoundDirs.model_stage(2)}


def finished_results(cfg: AblationConfig, seed: int) -> dict:
  """{arm or 'teacher': test top-1} of the seed's finished stages; trains nothing."""
  state = rounds_lib.StageState(layout.seed_dir(cfg.work_dir, seed))
  results = {}
  for name in ('teacher',) + ARMS:
    stage = state.finished(_STAGE_OF.get(name,
                                         layout.RoundDirs.arm_stage(name)))
    if stage is not None:
      results[name] = float(stage['result']['test'])
  return results


def _train_arm(stage: config_lib.ExperimentConfig, seed: int) -> dict:
  """Trains an arm's student from the seed's initialisation, whatever ran before."""
  keras.utils.set_random_seed(seed)
  return rounds_lib.train_and_evaluate(stage)


def _comparison(per_seed: dict[int, dict], name: str, other: str
                ) -> Optional[dict]:
  """The paired difference name - other over the seeds having both (points)."""
  both = sorted(s for s, r in per_seed.items() if name in r and other in r)
  if not both or name == other:
    return None
  result = stats.paired([100 * per_seed[s][name] for s in both],
                        [100 * per_seed[s][other] for s in both])
  return {'against': other, 'seeds': both, 'mean': result.mean,
          'sd': result.sd, 'low': result.low, 'high': result.high,
          'p_value': result.p_value, 'excludes_zero': result.excludes_zero,
          'text': result.interval_text()}


def summarize(per_seed: dict[int, dict], steps: Optional[dict] = None,
              test_images: Optional[int] = None) -> list[dict]:
  """One row per arm: test top-1 (%) and its paired differences.

  An arm enters with the seeds that finished it and their teacher; `seeds`
  and `seed_ids` say which (a partial ablation is summarised as it stands).
  Each row compares the arm with the teacher (`vs_teacher`) and, for the
  students, with the full student (`vs_full`): mean, sd, 95% t-interval and
  p-value over the shared seeds (`noisy_student.analysis.stats`);
  `test_se` is one accuracy's binomial standard error on `test_images`.
  """
  names = ['teacher'] + [a for a in ARMS
                         if any(a in r for r in per_seed.values())]
  rows = []
  for name in names:
    done = {seed: r for seed, r in per_seed.items()
            if name in r and 'teacher' in r}
    if not done:
      continue
    accuracy = [100 * r[name] for r in done.values()]
    mean, sd = stats.mean_sd(accuracy)
    row = {
        'arm': name, 'seeds': len(accuracy), 'seed_ids': sorted(done),
        'steps': (steps or {}).get(name),
        'test_top1_mean': mean, 'test_top1_std': sd or 0.0,
        'per_seed': [round(float(a), 2) for a in accuracy],
        'vs_teacher': _comparison(done, name, 'teacher'),
        'vs_full': (None if name in ('teacher', 'full')
                    else _comparison(done, name, 'full')),
        'paper': PAPER_DIRECTION[name],
    }
    if row['vs_teacher']:
      row['gain_mean'] = row['vs_teacher']['mean']
      row['gain_std'] = row['vs_teacher']['sd'] or 0.0
    if test_images:
      row['test_se'] = 100 * stats.binomial_se(mean / 100, test_images)
    rows.append(row)
  return rows


def _spread(mean: float, std: float, seeds: int) -> str:
  """'mean +- std' (std over seeds), just the mean for one seed."""
  return f'{mean:.2f} +- {std:.2f}' if seeds > 1 else f'{mean:.2f}'


def _difference(comparison: Optional[dict]) -> str:
  if comparison is None:
    return '-'
  text = comparison['text']
  if comparison['p_value'] is not None:
    text += f', p={comparison["p_value"]:.2g}'
  return text


def markdown(rows: Sequence[dict], title: str) -> str:
  """The table: accuracies, paired differences with their 95% intervals."""
  lines = [f'# {title}', '',
           'Differences are paired over the seeds: mean [95% t-interval], '
           'p-value (two-sided paired t-test); an interval that contains 0 '
           'is no measurable difference at that many seeds.', '',
           '| arm | steps | test top-1 (mean +- sd) | vs teacher | vs full | '
           'seeds | per seed | paper (direction) |',
           '|---|---|---|---|---|---|---|---|']
  for row in rows:
    accuracy = _spread(row['test_top1_mean'], row['test_top1_std'],
                       row['seeds'])
    lines.append(
        f'| {row["arm"]} | {row.get("steps") or "-"} | {accuracy} | '
        f'{_difference(row.get("vs_teacher"))} | '
        f'{_difference(row.get("vs_full"))} | '
        f'{",".join(str(i) for i in row["seed_ids"])} | '
        f'{", ".join(f"{a:.2f}" for a in row["per_seed"])} | {row["paper"]} |')
  if rows and rows[0].get('test_se') is not None:
    lines += ['', f'One run\'s test accuracy has a binomial standard error of '
              f'about {rows[0]["test_se"]:.2f} points at the teacher\'s '
              'accuracy.']
  return '\n'.join(lines) + '\n'


def plot(rows: Sequence[dict], path: str, dataset: str) -> None:
  from matplotlib import figure as figure_lib  # pylint: disable=g-import-not-at-top
  fig = figure_lib.Figure(figsize=(6, 3.5))
  ax = fig.subplots()
  names = [r['arm'] for r in rows]
  ax.bar(names, [r['test_top1_mean'] for r in rows],
         yerr=[r['test_top1_std'] for r in rows], capsize=4,
         color=['grey'] + ['tab:blue'] * (len(rows) - 1))
  low = min(r['test_top1_mean'] - r['test_top1_std'] for r in rows)
  ax.set_ylim(max(0.0, low - 5), 100)
  ax.set_ylabel('test top-1 (%), mean +- std')
  seeds = rows[0]['seeds']
  ax.set_title(f'Noisy Student ablations on {dataset} '
               f'({seeds} seed{"s" if seeds != 1 else ""})')
  ax.tick_params(axis='x', rotation=30)
  fig.tight_layout()
  with writers.atomic_output(path) as f:
    fig.savefig(f, format='png', dpi=120)


def run_ablation(cfg: AblationConfig, summarize_only: bool = False) -> list[dict]:
  """Runs every seed and writes ablation.{md,json,png}; returns the rows.

  With `summarize_only`, trains nothing: the table holds the stages that
  finished (e.g. while another process is still running the ablation).
  """
  start = time.time()
  per_seed = {}
  for seed in cfg.seeds:
    if summarize_only:
      per_seed[seed] = finished_results(cfg, seed)
      continue
    logging.info('[ablate] seed %d', seed)
    per_seed[seed] = run_seed(cfg, seed)
  if not any(per_seed.values()):
    raise errors.InputError(f'{cfg.work_dir}: no finished stage for seeds '
                            f'{list(cfg.seeds)}; nothing to summarize')
  record = settings_record(cfg)
  rows = summarize(per_seed, record['steps'], record['test_images'])
  _write_tables(cfg.work_dir, rows, per_seed, record,
                seconds=round(time.time() - start, 1))
  return rows


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


def _write_tables(work_dir: str, rows: list[dict], per_seed: dict,
                  record: dict, **more) -> None:
  seeds = sorted(per_seed)
  writers.write_text(layout.ablation_table(work_dir, 'md'), markdown(
      rows, f'Ablations on {record["dataset"]}, seeds {seeds}'))
  writers.write_json(layout.ablation_table(work_dir, 'json'), {
      'rows': rows, 'per_seed': {str(k): v for k, v in per_seed.items()},
      'settings': record, **more})
  plot(rows, layout.ablation_table(work_dir, 'png'), record['dataset'])


def merge(paths: Sequence[str], work_dir: str) -> list[dict]:
  """One table from the ablation.json files of runs with the same settings.

  Seeds run on other days or machines (each run's `--seeds`) are summarised
  together; runs with other settings, or one seed with two results, are
  refused. Writes ablation.{md,json,png} into `work_dir`; returns the rows.

  Raises:
    InputError naming the file and what differs.
  """
  per_seed, record, sources = {}, None, {}
  for path in paths:
    try:
      with open(path) as f:
        table = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
      raise errors.InputError(f'{path}: cannot read an ablation table '
                              f'({err})') from None
    if 'settings' not in table or 'per_seed' not in table:
      raise errors.InputError(
          f'{path}: no "settings" (written before ablate recorded them): '
          'rerun `ablate --summarize_only` with that run\'s flags first')
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
      per_seed[seed], sources[seed] = results, path
  if not per_seed:
    raise errors.InputError('--merge: no seeds in ' + ', '.join(paths))
  rows = summarize(per_seed, record['steps'], record['test_images'])
  _write_tables(work_dir, rows, per_seed, record, merged_from=list(paths))
  return rows


# ---------------------------------------------------------------------------
# The binary.
# ---------------------------------------------------------------------------
def define_flags(fv: flags.FlagValues = FLAGS) -> None:
  flags.DEFINE_string('dataset', 'digits', "'digits' (bundled, prepared into "
                      "--work_dir) or unset with --data_dir.", flag_values=fv)
  flags.DEFINE_string('data_dir', None, 'A data folder with dataset_info.json '
                      '(labeled shards) and unlabeled/ (extra-* shards); '
                      'overrides --dataset.', flag_values=fv)
  flags.DEFINE_string('unlabel_data_dir', None, 'The unlabeled (extra-*) '
                      'shards; default: <data_dir>/unlabeled.',
                      flag_values=fv)
  flags.DEFINE_string('work_dir', 'ablation_output', 'Where every artifact '
                      'goes.', flag_values=fv)
  flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds (comma-separated).',
                    flag_values=fv)
  flags.DEFINE_list('arms', list(ARMS), f'Arms to run, of {", ".join(ARMS)}.',
                    flag_values=fv)
  flags.DEFINE_enum('preset', 'demo', list(defaults.PRESETS),
                    'Recipes, model scaling and filter threshold of the job '
                    '(noisy_student/core/defaults.py): demo (digits) or '
                    'cifar10_subset (local_scripts/cifar10_subset).',
                    flag_values=fv)
  for role in ('teacher', 'student', 'larger_student'):
    config_flags.define(config_lib.TrainConfig, fv, fields=('train_steps',),
                        prefix=f'{role}_', defaults={'train_steps': None},
                        help_prefix=f'{role.replace("_", " ").capitalize()}; '
                        'default: the preset\'s (demo 800 / 700, '
                        'cifar10_subset 2000; the larger student: the '
                        'student\'s): ')
    flags.DEFINE_alias(f'{role}_steps', f'{role}_train_steps', flag_values=fv)
  flags.DEFINE_float('width_coefficient', None, 'EfficientNet-B0 width '
                     'scaling; default: the preset\'s (0.5).', flag_values=fv)
  flags.DEFINE_float('depth_coefficient', None, 'EfficientNet-B0 depth '
                     'scaling; default: the preset\'s (0.5).', flag_values=fv)
  flags.DEFINE_bool('deterministic', True, 'Fixed record order and '
                    'deterministic TF ops (a rerun repeats every number); '
                    '--nodeterministic reuses the stages of an iterate run '
                    'made without --deterministic_input.', flag_values=fv)
  flags.DEFINE_bool('summarize_only', False, 'Train nothing: write the table '
                    'from the stages that finished (arms of unfinished '
                    'seeds have fewer seeds).', flag_values=fv)
  flags.DEFINE_float('larger_scale', 1.5, 'The larger student\'s width and '
                     'depth, x the others\'.', flag_values=fv)
  flags.DEFINE_list('merge', [], 'Train nothing: one table (in --work_dir) '
                    'from these ablation.json files of runs with the same '
                    'settings and other seeds.', flag_values=fv)
  flags.DEFINE_float('min_threshold', None, 'The filter\'s confidence '
                     'threshold; default: the preset\'s (demo 0.3, '
                     'cifar10_subset 0.5).', flag_values=fv)


def _or_default(value, default):
  return default if value is None else value


def config_from_flags(fv: flags.FlagValues = FLAGS) -> AblationConfig:
  """Checks the flags (before anything is written) and builds the config."""
  unknown = sorted(set(fv.arms) - set(ARMS))
  if unknown or not fv.arms:
    raise errors.ConfigError(f'--arms={",".join(fv.arms)}: expected some of '
                             f'{", ".join(ARMS)}')
  try:
    seeds = tuple(int(s) for s in fv.seeds)
  except ValueError:
    raise errors.ConfigError(f'--seeds={",".join(fv.seeds)}: expected '
                             'comma-separated integers') from None
  if not seeds:
    raise errors.ConfigError('--seeds: give at least one seed')
  work_dir = os.path.abspath(fv.work_dir)
  if fv.data_dir:
    data_dir = fv.data_dir
    dataset = datasets.resolve(None, data_dir)
  elif fv.dataset == 'digits':
    data_dir = os.path.join(work_dir, 'data')
    dataset = datasets.get_builtin('digits')
  else:
    raise errors.ConfigError(f'--dataset={fv.dataset}: only digits is '
                             'bundled; pass --data_dir for another dataset')
  preset = defaults.PRESETS[fv.preset]
  with config_flags.flag_names('teacher_', prefixed=('train_steps',)):
    teacher = preset.teacher.with_steps(
        _or_default(fv.teacher_train_steps, preset.teacher.train.train_steps))
  with config_flags.flag_names('student_', prefixed=('train_steps',)):
    student = preset.student.with_steps(
        _or_default(fv.student_train_steps, preset.student.train.train_steps))
  if fv.larger_student_train_steps is not None:
    with config_flags.flag_names('larger_student_', prefixed=('train_steps',)):
      student.with_steps(fv.larger_student_train_steps)
  arms = tuple(a for a in ARMS if a in fv.arms)
  for arm, same in _NEEDS_DATA_NOISE.items():
    if arm not in arms or student.noise.augments:
      continue
    # Without RandAugment, "data noise only" is the student without noise,
    # and "model noise only" the full student.
    if fv['arms'].present:
      raise errors.ConfigError(
          f'--arms={arm}: the {fv.preset} preset has no RandAugment, so '
          f'{arm} would train the {same} student again; drop it')
    logging.warning('[ablate] the %s preset has no RandAugment: %s equals %s '
                    'and is left out', fv.preset, arm, same)
    arms = tuple(a for a in arms if a != arm)
  return AblationConfig(
      work_dir=work_dir, label_data_dir=data_dir,
      unlabel_data_dir=(fv.unlabel_data_dir
                        or layout.unlabeled_dir(data_dir)),
      dataset=dataset,
      seeds=seeds, teacher=teacher, student=student,
      width_coefficient=_or_default(fv.width_coefficient,
                                    preset.width_coefficient),
      depth_coefficient=_or_default(fv.depth_coefficient,
                                    preset.depth_coefficient),
      larger_scale=fv.larger_scale,
      larger_student_steps=fv.larger_student_train_steps,
      min_threshold=_or_default(fv.min_threshold, preset.min_threshold),
      arms=arms, deterministic=fv.deterministic)


def main(argv):
  del argv
  if FLAGS.merge:
    rows = merge(FLAGS.merge, os.path.abspath(FLAGS.work_dir))
    print(markdown(rows, 'Ablations merged from ' + ', '.join(FLAGS.merge)),
          flush=True)
    return
  cfg = config_from_flags(FLAGS)
  if not FLAGS.summarize_only:  # training needs the data; a summary does not
    if FLAGS.data_dir:
      datasets.check_folder(cfg.label_data_dir)
      datasets.check_folder(cfg.unlabel_data_dir)
    else:
      prepare_digits.prepare_digits(cfg.label_data_dir)
  rows = run_ablation(cfg, summarize_only=FLAGS.summarize_only)
  print(markdown(rows, f'Ablations on {cfg.dataset.name}'), flush=True)


def run():
  entry.run('ablate', main, define_flags)


if __name__ == '__main__':
  run()
