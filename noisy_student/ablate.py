r"""The paper's small-scale claims, in one command: ablations over seeds.

  python -m noisy_student.ablate --dataset=digits --seeds=0,1,2
  python -m noisy_student.ablate --preset=cifar10_4k \
      --data_dir=data/cifar10_4k/proc \
      --unlabel_data_dir=data/cifar10_4k/unlabeled --seeds=0 \
      --arms=control,full,no_noise

Per seed, one teacher is trained and its filtered pseudo-labels are shared by
every arm, so the arms differ only in how the student learns:

  control         the teacher's supervised recipe trained for the student's
                  steps (so "full - control" is the method, not the budget);
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
per arm as mean +- std over the seeds, the paired difference over the seeds
against the teacher, the full student and the control (mean, 95% t-interval,
p-value: `noisy_student.analysis.stats`), each seed's exact McNemar p on the
test images, and the pre-declared claims (full - teacher, full - control,
full - no_noise) Holm-corrected; each arm's per-image test predictions go to
`<work_dir>/predictions/seed_<N>/`. Every stage is resumable (a rerun skips
finished stages; `state.json` per seed). `--merge` builds one table from
runs of other seeds. `--jobs=2` trains independent stages of a seed side by
side (twice as fast on a 2-core machine). The library:
`noisy_student/drivers/ablation.py` and `ablation_jobs.py`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys

from absl import flags
from absl import logging

# First: the binaries' entry filters TensorFlow's start-up banner.
from noisy_student.runtime import entry
from data import layout
from data import prepare_digits
from noisy_student.cli import config_flags
from noisy_student.core import config as config_lib
from noisy_student.core import datasets
from noisy_student.core import defaults
from noisy_student.drivers import ablation
from noisy_student.drivers import ablation_jobs
from noisy_student.drivers.ablation import ARMS
from noisy_student.runtime import errors

FLAGS = flags.FLAGS


# ---------------------------------------------------------------------------
# The binary.
# ---------------------------------------------------------------------------
# AblationConfig fields that are flags, and their defaults where the binary's
# differ (None: the --preset's value).
CONFIG_FIELDS = ('work_dir', 'unlabel_data_dir', 'seeds', 'arms',
                 'width_coefficient', 'depth_coefficient', 'larger_scale',
                 'min_threshold', 'deterministic', 'jobs')
CONFIG_DEFAULTS = {'work_dir': 'ablation_output', 'unlabel_data_dir': None,
                   'seeds': (0, 1, 2), 'width_coefficient': None,
                   'depth_coefficient': None, 'min_threshold': None}
_PRESET_DEFAULT = ' Default: the --preset\'s.'


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
  flags.DEFINE_string('dataset', 'digits', "'digits' (bundled, prepared into "
                      "--work_dir) or unset with --data_dir.", flag_values=fv)
  flags.DEFINE_string('data_dir', None, 'A data folder with dataset_info.json '
                      '(labeled shards) and unlabeled/ (extra-* shards); '
                      'overrides --dataset.', flag_values=fv)
  flags.DEFINE_enum('preset', 'demo', list(defaults.PRESETS),
                    'Recipes, model scaling and filter threshold of the job '
                    '(noisy_student/core/defaults.py): demo (digits), '
                    'cifar10_subset (local_scripts/cifar10_subset) or '
                    'cifar10_4k (local_scripts/cifar10_4k).',
                    flag_values=fv)
  config_flags.define(ablation.AblationConfig, fv, fields=CONFIG_FIELDS,
                      defaults=CONFIG_DEFAULTS)
  for name in ('width_coefficient', 'depth_coefficient', 'min_threshold'):
    fv[name].help += _PRESET_DEFAULT
  fv['unlabel_data_dir'].help += ' Default: <data_dir>/unlabeled.'
  for role in ('teacher', 'student', 'larger_student'):
    config_flags.define(config_lib.TrainConfig, fv, fields=('train_steps',),
                        prefix=f'{role}_', defaults={'train_steps': None},
                        help_prefix=f'{role.replace("_", " ").capitalize()}; '
                        'default: the preset\'s (demo 800 / 700, '
                        'cifar10_subset 2000; the larger student: the '
                        'student\'s): ')
    flags.DEFINE_alias(f'{role}_steps', f'{role}_train_steps', flag_values=fv)
  flags.DEFINE_bool('summarize_only', False, 'Train nothing: write the table '
                    'from the stages that finished (arms of unfinished '
                    'seeds have fewer seeds).', flag_values=fv)
  flags.DEFINE_list('merge', [], 'Train nothing: one table (in --work_dir) '
                    'from these ablation.json files of runs with the same '
                    'settings and other seeds.', flag_values=fv)
  flags.DEFINE_string('run_job', None, 'Internal (--jobs): run this one job '
                      'of the single seed in --seeds and exit.',
                      flag_values=fv)


def config_from_flags(fv: flags.FlagValues = FLAGS) -> ablation.AblationConfig:
  """Checks the flags (before anything is written) and builds the config."""
  given = config_flags.values(ablation.AblationConfig, fv,
                              fields=CONFIG_FIELDS)
  work_dir = os.path.abspath(given.pop('work_dir'))
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
  for field in ('width_coefficient', 'depth_coefficient', 'min_threshold'):
    if given[field] is None:
      given[field] = getattr(preset, field)
  with config_flags.flag_names('teacher_', prefixed=('train_steps',)):
    teacher = preset.teacher.with_steps(
        _or_default(fv.teacher_train_steps, preset.teacher.train.train_steps))
  with config_flags.flag_names('student_', prefixed=('train_steps',)):
    student = preset.student.with_steps(
        _or_default(fv.student_train_steps, preset.student.train.train_steps))
  if fv.larger_student_train_steps is not None:
    with config_flags.flag_names('larger_student_', prefixed=('train_steps',)):
      student.with_steps(fv.larger_student_train_steps)
  given['unlabel_data_dir'] = (given['unlabel_data_dir']
                               or layout.unlabeled_dir(data_dir))
  if set(given['arms']) <= set(ARMS):  # in ARMS' order (unknown: refused)
    given['arms'] = tuple(a for a in ARMS if a in given['arms'])
  with config_flags.flag_names():
    cfg = ablation.AblationConfig(
        work_dir=work_dir, label_data_dir=data_dir, dataset=dataset,
        teacher=teacher, student=student,
        larger_student_steps=fv.larger_student_train_steps, **given)
  for arm, same in ablation.NEEDS_DATA_NOISE.items():
    if arm not in cfg.arms or student.noise.augments:
      continue
    # Without RandAugment, "data noise only" is the student without noise,
    # and "model noise only" the full student.
    if fv['arms'].present:
      raise errors.ConfigError(
          f'--arms={arm}: the {fv.preset} preset has no RandAugment, so '
          f'{arm} would train the {same} student again; drop it')
    logging.warning('[ablate] the %s preset has no RandAugment: %s equals %s '
                    'and is left out', fv.preset, arm, same)
    cfg = dataclasses.replace(cfg, arms=tuple(a for a in cfg.arms if a != arm))
  return cfg


def _or_default(value, default):
  return default if value is None else value


def main(argv):
  del argv
  if FLAGS.merge:
    work_dir = os.path.abspath(FLAGS.work_dir)
    ablation.merge(FLAGS.merge, work_dir)
    _print_table(work_dir)
    return
  cfg = config_from_flags(FLAGS)
  if FLAGS.run_job:
    if len(cfg.seeds) != 1:
      raise errors.ConfigError(f'--run_job={FLAGS.run_job} runs one seed\'s '
                               f'job; --seeds={",".join(FLAGS.seeds)}')
    ablation_jobs.run_job(cfg, cfg.seeds[0], FLAGS.run_job)
    return
  if not FLAGS.summarize_only:  # training needs the data; a summary does not
    if FLAGS.data_dir:
      datasets.check_folder(cfg.label_data_dir)
      datasets.check_folder(cfg.unlabel_data_dir)
    else:
      prepare_digits.prepare_digits(cfg.label_data_dir)
  runner = (ablation_jobs.seed_runner(functools.partial(
      ablation_jobs.child_command, 'noisy_student.ablate', sys.argv[1:]))
            if cfg.jobs > 1 else None)
  ablation.run_ablation(cfg, summarize_only=FLAGS.summarize_only,
                        seed_runner=runner)
  _print_table(cfg.work_dir)


def _print_table(work_dir: str) -> None:
  with open(layout.ablation_table(work_dir, 'md')) as f:
    print(f.read(), flush=True)


def run():
  entry.run('ablate', main, define_flags,
            field_flag=config_flags.as_flag)


if __name__ == '__main__':
  run()
