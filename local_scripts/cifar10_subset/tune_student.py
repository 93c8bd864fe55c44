r"""Chooses the CIFAR-10 subset student's noise on the dev split (one seed).

  python local_scripts/cifar10_subset/tune_student.py \
      --data_dir=data/cifar10_1k/proc --unlabel_data_dir=data/cifar10_1k/unlabeled \
      --work_dir=runs/cifar10_1k_tune --seed=0 --candidates=none,m2,m5,m9

Trains the `cifar10_subset` preset's teacher, its predictions and filtered
pseudo-labels once (`<work_dir>/seed_<seed>`, the same stages as
`noisy_student.ablate`), then one student per candidate from those
pseudo-labels: `none` is the preset's student without RandAugment (dropout and
stochastic depth only; at the preset's steps it is the seed's round-1 student);
`mM` adds RandAugment of magnitude M (2 layers,
labeled and unlabeled images; the teacher is never augmented). `--steps`
trains every student that many steps (default: the preset's). Writes
`<work_dir>/tune.md` and `tune.json` (dev and test top-1 of each; choose on
dev). Resumable like the ablation: finished students are skipped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re

# First: TensorFlow's start-up banner filtered, as in the binaries.
from noisy_student.runtime import quiet  # noqa: E402  pylint: disable=wrong-import-position
quiet.install()
import keras

from data import layout
from noisy_student.core import config as config_lib
from noisy_student.core import datasets
from noisy_student.core import defaults
from noisy_student.drivers import ablation
from noisy_student.drivers import rounds as rounds_lib
from noisy_student.drivers import stages


def candidate_recipe(name: str, student: config_lib.Recipe,
                     steps: int) -> config_lib.Recipe:
  """The student recipe of candidate `name` ('none' or 'm<M>')."""
  noise = dataclasses.replace(student.noise, augment_name=None,
                              unl_augment_name='default')
  if name != 'none':
    match = re.fullmatch(r'm(\d+)', name)
    if not match:
      raise SystemExit(f'--candidates: {name!r} is not none or m<magnitude>')
    noise = dataclasses.replace(noise, augment_name='v1',
                                randaug_magnitude=int(match.group(1)))
  return config_lib.Recipe(train=student.train, noise=noise).with_steps(steps)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--data_dir', required=True)
  parser.add_argument('--unlabel_data_dir', required=True)
  parser.add_argument('--work_dir', required=True)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--candidates', default='none,m2,m5,m9')
  parser.add_argument('--steps', type=int, default=None)
  args = parser.parse_args()
  preset = defaults.PRESETS['cifar10_subset']
  steps = args.steps or preset.student.train.train_steps
  names = args.candidates.split(',')
  recipes = {n: candidate_recipe(n, preset.student, steps) for n in names}
  cfg = ablation.AblationConfig(
      work_dir=os.path.abspath(args.work_dir), label_data_dir=args.data_dir,
      unlabel_data_dir=args.unlabel_data_dir,
      dataset=datasets.resolve(None, args.data_dir), seeds=(args.seed,),
      teacher=preset.teacher,
      student=candidate_recipe('none', preset.student,
                               preset.student.train.train_steps),
      width_coefficient=preset.width_coefficient,
      depth_coefficient=preset.depth_coefficient,
      min_threshold=preset.min_threshold, arms=('full',), deterministic=True)
  rounds = ablation.rounds_config(cfg, args.seed)
  keras.utils.set_random_seed(args.seed)
  # Teacher, pseudo-labels, and the preset's student without RandAugment.
  rows = rounds_lib.run(rounds)
  results = {'teacher': rows[0]}
  state = stages.StageState(rounds.work_dir)
  pseudo_labels = layout.RoundDirs(rounds.work_dir).filter(1).data
  for name in names:
    if name == 'none' and steps == preset.student.train.train_steps:
      results[name] = rows[1]
      continue
    model_dir = os.path.join(rounds.work_dir, 'tune', f'{name}_{steps}')
    stage = rounds_lib.stage_config(
        rounds, model_dir, cfg.model_name, recipes[name],
        unlabel_data_dir=pseudo_labels)
    results[name] = state.run(
        f'tune/{name}_{steps}',
        lambda s=stage: ablation.train_arm(s, args.seed),
        dataclasses.asdict(stage), outputs=[model_dir])
  table = ['| student | steps | dev top-1 | test top-1 |', '|---|---|---|---|']
  for name, row in results.items():
    table.append(f'| {name} | {"teacher" if name == "teacher" else steps} | '
                 f'{100 * row["dev"]:.2f} | {100 * row["test"]:.2f} |')
  text = '\n'.join(table) + '\n'
  os.makedirs(args.work_dir, exist_ok=True)
  with open(os.path.join(args.work_dir, f'tune_seed{args.seed}_{steps}.md'), 'w') as f:
    f.write(text)
  with open(os.path.join(args.work_dir, f'tune_seed{args.seed}_{steps}.json'), 'w') as f:
    json.dump({n: {'dev': r['dev'], 'test': r['test']}
               for n, r in results.items()}, f, indent=2)
  print(text)


if __name__ == '__main__':
  main()
