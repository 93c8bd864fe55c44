r"""Chooses the CIFAR-10-4k recipe on the dev split (one tuning seed).

  python local_scripts/cifar10_4k/tune.py --data_dir=data/cifar10_4k/proc \
      --unlabel_data_dir=data/cifar10_4k/unlabeled \
      --work_dir=runs/cifar10_4k_tune --seed=100 \
      --teacher_steps=2000,4000 --student_steps=6000 \
      --candidates=r1_m5_t0.5,r3_m5_t0.5,r3_m9_t0.5,r3_m5_t0.8

Starts from `--base_preset` (default cifar10_4k). Phase 1 trains one teacher
per --teacher_steps entry, `<steps>` or `<steps>@<base rate>` (the final rate
scaled alike; the recipe otherwise the preset's), and keeps the best on dev. Phase 2 pseudo-labels the unlabeled images with that teacher (one
filter per threshold) and trains one student per candidate
`r<unlabeled ratio>_m<RandAugment magnitude>_t<threshold>[_s<steps>]
[_lr<base rate>]` for its steps (default --student_steps), the preset's
student otherwise. Writes `<work_dir>/tune.md`
and `tune.json`: dev top-1 of every run (test top-1 is not shown: the choice
is made on dev, and the seeds are run afterwards). Every run is a resumable
stage of `<work_dir>/state.json`: a rerun skips finished runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import time

# First: TensorFlow's start-up banner filtered, as in the binaries.
from noisy_student.runtime import quiet  # noqa: E402  pylint: disable=wrong-import-position
quiet.install()
import keras

from noisy_student.core import config as config_lib
from noisy_student.core import datasets
from noisy_student.core import defaults
from noisy_student.drivers import ablation
from noisy_student.drivers import rounds as rounds_lib
from noisy_student.drivers import stages


def parse_candidate(name: str) -> dict:
  """'r3_m5_t0.5_s1500' -> {'unlabel_ratio': 3.0, 'randaug_magnitude': 5,
  'min_threshold': 0.5, 'steps': 1500} (steps None: --student_steps)."""
  match = re.fullmatch(
      r'r([\d.]+)_m(\d+)_t([\d.]+)(?:_s(\d+))?(?:_lr([\d.]+))?', name)
  if not match:
    raise SystemExit(f'--candidates: {name!r} is not r<ratio>_m<magnitude>_'
                     't<threshold>[_s<steps>][_lr<rate>], e.g. r3_m5_t0.5')
  return {'unlabel_ratio': float(match.group(1)),
          'randaug_magnitude': int(match.group(2)),
          'min_threshold': float(match.group(3)),
          'steps': int(match.group(4)) if match.group(4) else None,
          'rate': float(match.group(5)) if match.group(5) else None}


def student_recipe(student: config_lib.Recipe, candidate: dict,
                   steps: int) -> config_lib.Recipe:
  """The preset's student with the candidate's ratio, magnitude and base
  rate (the final rate scaled alike)."""
  train = dataclasses.replace(student.train, train_steps=steps,
                              unlabel_ratio=candidate['unlabel_ratio'])
  if candidate.get('rate'):
    train = _with_rate(train, candidate['rate'])
  return config_lib.Recipe(
      train=train, noise=dataclasses.replace(
          student.noise, randaug_magnitude=candidate['randaug_magnitude']))


def _with_rate(train: config_lib.TrainConfig,
               rate: float) -> config_lib.TrainConfig:
  return dataclasses.replace(
      train, base_learning_rate=rate,
      final_base_lr=train.final_base_lr * rate / train.base_learning_rate)


def teacher_recipe(teacher: config_lib.Recipe,
                   spec: str) -> tuple[config_lib.Recipe, str]:
  """'4000' or '4000@0.096' (steps, base rate) -> (recipe, run name)."""
  match = re.fullmatch(r'(\d+)(?:@([\d.]+))?', spec)
  if not match:
    raise SystemExit(f'--teacher_steps: {spec!r} is not <steps>[@<rate>]')
  recipe = teacher.with_steps(int(match.group(1)))
  if not match.group(2):
    return recipe, f'teacher_{match.group(1)}'
  rate = float(match.group(2))
  recipe = dataclasses.replace(recipe, train=_with_rate(recipe.train, rate))
  return recipe, f'teacher_{match.group(1)}_lr{rate:g}'


def _timed(fn):
  start = time.time()
  result = fn()
  return dict(result, seconds=round(time.time() - start, 1))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--data_dir', required=True)
  parser.add_argument('--unlabel_data_dir', required=True)
  parser.add_argument('--work_dir', required=True)
  parser.add_argument('--seed', type=int, default=100)
  parser.add_argument('--base_preset', default='cifar10_4k',
                      choices=sorted(defaults.PRESETS))
  parser.add_argument('--teacher_steps', default='2000,4000')
  parser.add_argument('--student_steps', type=int, default=None)
  parser.add_argument('--candidates', default='r1_m5_t0.5,r3_m5_t0.5')
  args = parser.parse_args(argv)
  preset = defaults.PRESETS[args.base_preset]
  work_dir = os.path.abspath(args.work_dir)
  student_steps = args.student_steps or preset.student.train.train_steps
  candidates = {n: parse_candidate(n) for n in args.candidates.split(',')}
  dataset = datasets.resolve(None, args.data_dir)
  state = stages.StageState(work_dir)
  results = {}

  def rounds_for(threshold: float, teacher: config_lib.Recipe,
                 teacher_name: str = ''):
    cfg = ablation.AblationConfig(
        work_dir=work_dir, label_data_dir=args.data_dir,
        unlabel_data_dir=args.unlabel_data_dir, dataset=dataset,
        seeds=(args.seed,), teacher=teacher, student=preset.student,
        width_coefficient=preset.width_coefficient,
        depth_coefficient=preset.depth_coefficient, min_threshold=threshold,
        arms=('full',))
    return dataclasses.replace(
        ablation.rounds_config(cfg, args.seed),
        work_dir=os.path.join(work_dir,
                              f'pseudo_labels_{teacher_name}_t{threshold:g}'))

  # Phase 1: the teacher's steps.
  teachers = {}
  for spec in args.teacher_steps.split(','):
    teacher, name = teacher_recipe(preset.teacher, spec)
    rounds = rounds_for(preset.min_threshold, teacher)
    stage = rounds_lib.stage_config(
        rounds, os.path.join(work_dir, name), 'efficientnet-b0', teacher)
    results[name] = state.run(
        name, lambda s=stage: _timed(lambda: ablation.train_arm(s, args.seed)),
        dataclasses.asdict(stage), outputs=[stage.model_dir])
    teachers[name] = (teacher, stage.model_dir)
  best = max(teachers, key=lambda n: (results[n]['dev'],
                                      -teachers[n][0].train.train_steps))
  teacher, teacher_dir = teachers[best]
  print(f'teacher: {best} (best dev)', flush=True)

  # Phase 2: students from that teacher's pseudo-labels.
  for name, candidate in candidates.items():
    rounds = rounds_for(candidate['min_threshold'], teacher, best)
    keras.utils.set_random_seed(args.seed)
    pseudo_labels = rounds_lib.pseudo_label(
        rounds, stages.StageState(rounds.work_dir), teacher_dir, 1)
    steps = candidate['steps'] or student_steps
    run_name = f'student_{name}_{steps}_{best}'
    stage = rounds_lib.stage_config(
        rounds, os.path.join(work_dir, run_name), 'efficientnet-b0',
        student_recipe(preset.student, candidate, steps),
        unlabel_data_dir=pseudo_labels)
    results[run_name] = state.run(
        run_name,
        lambda s=stage: _timed(lambda: ablation.train_arm(s, args.seed)),
        dataclasses.asdict(stage), outputs=[stage.model_dir])

  lines = [f'Tuning on dev (seed {args.seed}, base preset '
           f'{args.base_preset}); choose on dev only.', '',
           '| run | dev top-1 | seconds |', '|---|---|---|']
  for name, row in results.items():
    lines.append(f'| {name} | {100 * row["dev"]:.2f} | '
                 f'{row.get("seconds", "-")} |')
  text = '\n'.join(lines) + '\n'
  os.makedirs(work_dir, exist_ok=True)
  with open(os.path.join(work_dir, 'tune.md'), 'w') as f:
    f.write(text)
  with open(os.path.join(work_dir, 'tune.json'), 'w') as f:
    json.dump({'teacher_steps': best,
               'runs': {n: {'dev': r['dev'], 'seconds': r.get('seconds')}
                        for n, r in results.items()}}, f, indent=2)
  print(text, flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
