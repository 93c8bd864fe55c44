"""One seed of an ablation with its independent stages side by side.

The stages of a seed wait for each other only in part: the teacher and the
supervised control need nothing; the pseudo-labels need the teacher; every
student arm needs the pseudo-labels. With `jobs` > 1, each of these jobs is a
child process (`<binary> --run_job=<job>`, built by the caller) pinned to its
share of the cores (`runtime/job_pool.py`: on a 2-core machine two small
models train at once as fast as one alone). The parent holds the seed's
folder; the children write their stages into the same `state.json` (its
updates are locked), so a rerun, with or without jobs, resumes every stage.
The arms and recipes are `ablation.run_seed`'s; the numbers are those of
another draw (each job seeds itself, as a resumed run does, and sums on one
core), so the seeds of one table should all be run one way (`runs` in
ablation.json records the jobs).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from typing import Callable, Sequence

import keras
import tensorflow as tf

from data import layout
from noisy_student.drivers import ablation
from noisy_student.drivers import rounds as rounds_lib
from noisy_student.drivers import stages
from noisy_student.runtime import dir_lock
from noisy_student.runtime import errors
from noisy_student.runtime import job_pool

TEACHER, PSEUDO_LABELS, FULL = 'teacher', 'pseudo_labels', 'full'
# Arms trained inside the rounds (the full student's job), not on their own.
_IN_ROUNDS = (FULL, 'two_rounds')


def seed_jobs(arms: Sequence[str]) -> list[job_pool.Job]:
  """The jobs of one seed with what each waits for, longest first."""
  jobs = [job_pool.Job(TEACHER)]
  if 'control' in arms:
    jobs.append(job_pool.Job('control'))
  jobs += [job_pool.Job(PSEUDO_LABELS, (TEACHER,)),
           job_pool.Job(FULL, (PSEUDO_LABELS,))]
  jobs += [job_pool.Job(arm, (PSEUDO_LABELS,)) for arm in arms
           if arm not in _IN_ROUNDS and arm != 'control']
  return jobs


def job_names(arms: Sequence[str]) -> list[str]:
  return [job.name for job in seed_jobs(arms)]


def run_job(cfg: ablation.AblationConfig, seed: int, job: str) -> None:
  """Runs (or resumes) job `job` of seed `seed` in this process.

  Raises:
    ConfigError for a job that is not one of the seed's.
  """
  # The parent interrupts a job with SIGINT (it saves its step), even when
  # it was itself started with SIGINT ignored (a background job).
  signal.signal(signal.SIGINT, signal.default_int_handler)
  names = job_names(cfg.arms)
  if job not in names:
    raise errors.ConfigError(f'{errors.field_name("run_job")}={job}: the jobs '
                             f'of these arms are {", ".join(names)}')
  rounds = ablation.rounds_config(cfg, seed)
  dirs = layout.RoundDirs(rounds.work_dir)
  if cfg.deterministic:  # as rounds.run does for the stages it runs
    tf.config.experimental.enable_op_determinism()
  keras.utils.set_random_seed(seed)  # as ablation.run_seed
  if job == TEACHER:
    rounds_lib.run(rounds, stop_after=dirs.model_stage(0))
  elif job == PSEUDO_LABELS:
    rounds_lib.run(rounds, stop_after=dirs.filter_stage(1))
  elif job == FULL:
    rounds_lib.run(rounds)
  else:
    stage = ablation.arm_stage(cfg, rounds, job)
    stages.StageState(rounds.work_dir).run(
        dirs.arm_stage(job), lambda: ablation.train_arm(stage, seed),
        dataclasses.asdict(stage), outputs=[dirs.arm(job)],
        needs=ablation.arm_needs(job))


_PER_JOB_FLAGS = ('seeds', 'jobs', 'run_job')


def child_command(module: str, argv: Sequence[str], seed: int,
                  job: str) -> list[str]:
  """`python -m <module> <argv>` for one job of one seed: the flags given
  (`--x=v` or `--x v`), but --seeds, --jobs and --run_job."""
  args, skip_value = [], False
  for arg in argv:
    if skip_value:
      skip_value = False
      continue
    name = arg.lstrip('-').split('=', 1)[0]
    if arg.startswith('-') and name in _PER_JOB_FLAGS:
      skip_value = '=' not in arg
      continue
    args.append(arg)
  return [sys.executable, '-m', module, *args, f'--seeds={seed}',
          f'--run_job={job}', '--jobs=1']


def seed_runner(command: Callable[[int, str], Sequence[str]]
                ) -> Callable[[ablation.AblationConfig, int], dict]:
  """`ablation.run_ablation`'s seed_runner for cfg.jobs processes at once.

  Args:
    command: (seed, job) -> the argv of a child process that runs that job
      (`run_job` in the child).
  """
  def run_seed(cfg: ablation.AblationConfig, seed: int) -> dict:
    seed_dir = layout.seed_dir(cfg.work_dir, seed)
    with dir_lock.exclusive(seed_dir, 'ablation', flag='--work_dir'):
      job_pool.run_jobs(
          seed_jobs(cfg.arms), lambda job: command(seed, job.name),
          slots=cfg.jobs, log_dir=os.path.join(seed_dir, 'logs'),
          environment=dir_lock.for_children(dict(os.environ)))
    wanted = ('teacher', FULL) + tuple(cfg.arms)
    results = {arm: top1 for arm, top1
               in ablation.finished_results(cfg, seed).items() if arm in wanted}
    missing = [arm for arm in wanted if arm not in results]
    if missing:
      raise errors.InputError(f'{seed_dir}: every job ended, but '
                              f'{", ".join(missing)} did not finish')
    return results
  return run_seed
