"""Steps/s of a small training on every core, against one per core side by side.

The measurement behind `ablate --jobs` (noisy_student/runtime/job_pool.py):
the CIFAR-10-4k teacher's model and batch (half-width/depth EfficientNet-B0
at 32x32, batch 32, `--preset=cifar10_4k`) on the bundled digits, trained
`--steps` steps (1) in one process that may use every core, then (2) in one
process per core at once, each pinned to its core by `job_pool.run_jobs`.
Prints a markdown table: seconds and steps/s of each process, and the total
steps/s of each way.

  python -m benchmarks.cores --steps=600
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from absl import app
from absl import flags

# Quiet TF's C++ logging; must be set before TensorFlow is imported.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

_STEPS = flags.DEFINE_integer('steps', 600, 'Training steps per process.',
                              lower_bound=1)
_CHILD = flags.DEFINE_string('child', None, 'Internal: train into this '
                             'model_dir and print the seconds.')
_DATA = flags.DEFINE_string('data_dir', None, 'Internal: the digits folder.')


def train_seconds(model_dir: str, data_dir: str, steps: int) -> float:
  """Wall seconds of `steps` training steps (model built, no evaluation)."""
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  import noisy_student as ns
  from noisy_student.core import defaults
  from noisy_student.drivers import modes
  # pylint: enable=g-import-not-at-top
  preset = defaults.PRESETS['cifar10_4k']
  config = ns.experiment(
      model_dir, data_dir, recipe=preset.teacher,
      width_coefficient=preset.width_coefficient,
      depth_coefficient=preset.depth_coefficient, train_steps=steps,
      final_base_lr=None, iterations_per_loop=min(steps, 100),
      save_checkpoints_steps=10 ** 6)
  start = time.time()
  modes.train(config, tf.distribute.get_strategy())
  return time.time() - start


def main(argv):
  del argv
  if _CHILD.value:
    print(f'SECONDS {train_seconds(_CHILD.value, _DATA.value, _STEPS.value):.2f}',
          flush=True)
    return
  # pylint: disable=g-import-not-at-top
  from data import prepare_digits
  from noisy_student.runtime import job_pool
  # pylint: enable=g-import-not-at-top
  steps = _STEPS.value
  work = tempfile.mkdtemp(prefix='cores_')
  data_dir = os.path.join(work, 'digits')
  prepare_digits.prepare_digits(data_dir)
  cores = sorted(os.sched_getaffinity(0))

  def child(name: str) -> list[str]:
    return [sys.executable, '-m', 'benchmarks.cores', f'--steps={steps}',
            f'--child={os.path.join(work, name)}', f'--data_dir={data_dir}']

  def seconds_of(log_dir: str, name: str) -> float:
    with open(os.path.join(log_dir, f'{name}.log')) as f:
      return float([line for line in f if line.startswith('SECONDS')][-1]
                   .split()[1])

  rows = []
  one = job_pool.Job('all_cores')
  job_pool.run_jobs([one], lambda job: child(job.name), slots=1,
                    log_dir=os.path.join(work, 'one'), echo=lambda _: None)
  seconds = seconds_of(os.path.join(work, 'one'), one.name)
  rows.append((f'one process, {len(cores)} cores', seconds,
               steps / seconds, steps / seconds))
  jobs = [job_pool.Job(f'core_{c}') for c in cores]
  job_pool.run_jobs(jobs, lambda job: child(job.name), slots=len(cores),
                    log_dir=os.path.join(work, 'side'), echo=lambda _: None)
  each = [seconds_of(os.path.join(work, 'side'), job.name) for job in jobs]
  rows.append((f'{len(cores)} processes, one core each',
               max(each), steps / max(each),
               sum(steps / s for s in each)))
  print(f'\n{steps} steps of the cifar10_4k teacher recipe on the digits\n')
  print('| way | seconds (slowest process) | steps/s per process | '
        'steps/s in all |')
  print('|---|---|---|---|')
  for way, secs, per_process, total in rows:
    print(f'| {way} | {secs:.1f} | {per_process:.2f} | {total:.2f} |')


if __name__ == '__main__':
  app.run(main)
