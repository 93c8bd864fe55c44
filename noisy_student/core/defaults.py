"""Named recipes: the settings each entry point starts from.

The field defaults of `TrainConfig` and `NoiseConfig` are the original
release's main.py flag defaults (ImageNet at batch 4096: LR 0.016 per 256
images, weight decay 1e-5, EMA 0.9999, RandAugment magnitude 27, ...); every
preset here is written as a change of that one table, so a value is defined in
one place:

* `ORIGINAL`: `python -m noisy_student.main` (its flags default to these);
* `ITERATE_TEACHER` / `ITERATE_STUDENT`: `python -m noisy_student.iterate`;
* `DEMO_TEACHER` / `DEMO_STUDENT`: the offline digits demo (`bash demo.sh`);
* `CIFAR10_SUBSET_TEACHER` / `CIFAR10_SUBSET_STUDENT`: 1,000 labeled CIFAR-10
  images (`local_scripts/cifar10_subset/run.sh`);
* `CIFAR10_4K_TEACHER` / `CIFAR10_4K_STUDENT`: 4,000 labeled CIFAR-10 images,
  the standard semi-supervised benchmark (`local_scripts/cifar10_4k/run.sh`).

`PRESETS` names the small-scale jobs (recipes + model scaling + filter
threshold) that `python -m noisy_student.ablate --preset=...` runs.
"""

from __future__ import annotations

import dataclasses

from noisy_student.core import config as config_lib

ORIGINAL = config_lib.Recipe()

# iterate: a mid-sized job (SVHN-scale); logs and checkpoints every 100 steps;
# the student is noised (RandAugment) and learns from soft pseudo-labels on
# 3 unlabeled images per labeled one.
_ITERATE_TRAIN = dataclasses.replace(
    ORIGINAL.train, train_steps=10000,
    train_batch_size=128, eval_batch_size=256, iterations_per_loop=100,
    save_checkpoints_steps=100)
ITERATE_TEACHER = config_lib.Recipe(train=_ITERATE_TRAIN)
ITERATE_STUDENT = config_lib.Recipe(
    train=dataclasses.replace(_ITERATE_TRAIN, unlabel_ratio=3.0,
                              teacher_softmax_temp=1.0),
    noise=config_lib.NoiseConfig(augment_name='v1'))
# Pseudo-labels below this top-1 probability are dropped (iterate, demo).
ITERATE_MIN_THRESHOLD = 0.3

# The demo: half-width/depth EfficientNet-B0 on 300 labeled digits, batch 32;
# final_base_lr decays the rate 64x over each stage (the original's rule), so
# both models end converged rather than mid-noise. Both are noised. The base
# rate (peak 0.004 at batch 32) was chosen on the dev split, 2026-12-03: the
# teacher reached 93.5-97.5% dev over 3 unordered-input runs; at 0.128 the
# same seed gave 61-96% dev depending on the record order alone.
_DEMO_TRAIN = dataclasses.replace(
    _ITERATE_TRAIN, train_steps=800,
    train_batch_size=32, base_learning_rate=0.032, final_base_lr=0.0005,
    weight_decay=1e-4, moving_average_decay=0.0)
_DEMO_NOISE = config_lib.NoiseConfig(
    augment_name='v1', randaug_magnitude=5, dropout_rate=0.2,
    stochastic_depth_rate=0.2)
DEMO_TEACHER = config_lib.Recipe(train=_DEMO_TRAIN, noise=_DEMO_NOISE)
DEMO_STUDENT = config_lib.Recipe(
    train=dataclasses.replace(_DEMO_TRAIN, train_steps=700, unlabel_ratio=3.0,
                              teacher_softmax_temp=1.0),
    noise=_DEMO_NOISE)
DEMO_WIDTH_COEFFICIENT = 0.5
DEMO_DEPTH_COEFFICIENT = 0.5

# The CIFAR-10 subset: 1,000 labeled 32x32 images, batch 32, chosen on the
# 200-image dev split (docs/results.md). The teacher (2026-12-02): 2,000
# steps, dropout and stochastic depth 0.2, no RandAugment (at this size it
# cost the teacher more than it gave). The student (2026-12-05, seed 0's
# teacher): the paper's noise, RandAugment M=5 (N=2) on its labeled and
# pseudo-labeled images plus dropout and stochastic depth 0.2, for 4,000
# steps: at 2,000 steps every RandAugment magnitude tried (2, 5, 9) was at or
# below the noise-free-data student on dev (51.0, 46.0, 39.5 vs 49.5); at
# 4,000 steps all reached 58.0-58.5 dev, M=5 highest by one image. The
# teacher labels clean images. local_scripts/cifar10_subset/run.sh passes
# these values to iterate as flags (a test checks they agree).
_CIFAR10_SUBSET_TRAIN = dataclasses.replace(
    _ITERATE_TRAIN, train_steps=2000, train_batch_size=32,
    base_learning_rate=0.048, final_base_lr=0.0015, weight_decay=1e-4,
    moving_average_decay=0.0, iterations_per_loop=200,
    save_checkpoints_steps=200)
_CIFAR10_SUBSET_NOISE = config_lib.NoiseConfig(
    augment_name=None, dropout_rate=0.2, stochastic_depth_rate=0.2)
CIFAR10_SUBSET_TEACHER = config_lib.Recipe(train=_CIFAR10_SUBSET_TRAIN,
                                           noise=_CIFAR10_SUBSET_NOISE)
CIFAR10_SUBSET_STUDENT = config_lib.Recipe(
    train=dataclasses.replace(_CIFAR10_SUBSET_TRAIN, train_steps=4000,
                              unlabel_ratio=1.0, teacher_softmax_temp=1.0),
    noise=dataclasses.replace(_CIFAR10_SUBSET_NOISE, augment_name='v1',
                              randaug_magnitude=5))


# CIFAR-10 with 4,000 labels (local_scripts/cifar10_4k): the subset's model
# and optimiser (half-width/depth B0 at 32x32, batch 32, weight decay 1e-4,
# no EMA, dropout and stochastic depth 0.2) at twice its base rate: 0.096
# decayed to 0.003. Chosen on the 500-image dev split, 2026-12-07, tuning
# seed 100 (docs/results.md, the tuning table; local_scripts/cifar10_4k/
# tune.py): teacher 2,000 / 4,000 / 4,000 at 0.096 / 8,000 at 0.096 steps
# gave 46.2 / 55.4 / 59.6 / 64.6% dev; from that teacher, students of 3,000
# steps at rate 0.048 / 0.096 gave 56.0 / 56.8% dev. The student's 6,000
# steps are what the budget allows (teacher, control, full and no_noise of
# one seed within an hour on 2 cores, two stages at a time: `ablate --jobs=2`
# as local_scripts/cifar10_4k/run.sh runs it); RandAugment M=5 and the 0.5
# threshold are the subset's, not retuned here; one pseudo-labeled image per
# labeled.
_CIFAR10_4K_TRAIN = dataclasses.replace(
    _CIFAR10_SUBSET_TRAIN, base_learning_rate=0.096, final_base_lr=0.003)
CIFAR10_4K_TEACHER = config_lib.Recipe(
    train=dataclasses.replace(_CIFAR10_4K_TRAIN, train_steps=8000),
    noise=_CIFAR10_SUBSET_NOISE)
CIFAR10_4K_STUDENT = config_lib.Recipe(
    train=dataclasses.replace(_CIFAR10_4K_TRAIN, train_steps=6000,
                              unlabel_ratio=1.0, teacher_softmax_temp=1.0,
                              iterations_per_loop=500,
                              save_checkpoints_steps=500),
    noise=dataclasses.replace(_CIFAR10_SUBSET_NOISE, augment_name='v1',
                              randaug_magnitude=5))
CIFAR10_4K_MIN_THRESHOLD = 0.5


@dataclasses.dataclass(frozen=True)
class Preset:
  """A whole small-scale job: both recipes, the model's scaling, the filter.

  Attributes:
    teacher / student: the recipes of round 0 and of every student.
    width_coefficient / depth_coefficient: EfficientNet-B0 scaling of both.
    min_threshold: pseudo-labels below this top-1 probability are dropped.
  """
  teacher: config_lib.Recipe
  student: config_lib.Recipe
  width_coefficient: float
  depth_coefficient: float
  min_threshold: float


PRESETS = {
    'demo': Preset(DEMO_TEACHER, DEMO_STUDENT, DEMO_WIDTH_COEFFICIENT,
                   DEMO_DEPTH_COEFFICIENT, ITERATE_MIN_THRESHOLD),
    'cifar10_subset': Preset(CIFAR10_SUBSET_TEACHER, CIFAR10_SUBSET_STUDENT,
                             0.5, 0.5, min_threshold=0.5),
    'cifar10_4k': Preset(CIFAR10_4K_TEACHER, CIFAR10_4K_STUDENT, 0.5, 0.5,
                         min_threshold=CIFAR10_4K_MIN_THRESHOLD),
}


# The original's ImageNet schedule: 109,474 steps of 4,096 images = 350 epochs.
ORIGINAL_EPOCHS = 350
# The smallest labeled batch sized_to_data picks, and how many batches the
# labeled split must hold at least.
MIN_SIZED_BATCH = 8
MIN_BATCHES_PER_EPOCH = 8


def sized_to_data(num_train_images: int,
                  base: config_lib.TrainConfig = ORIGINAL.train,
                  train_batch_size: int | None = None,
                  train_steps: int | None = None,
                  iterations_per_loop: int | None = None) -> dict:
  """`base`'s loop settings scaled to a labeled split of `num_train_images`.

  The batch halves from `base.train_batch_size` until the split holds at
  least MIN_BATCHES_PER_EPOCH batches (not below MIN_SIZED_BATCH); the steps
  give ORIGINAL_EPOCHS epochs; a loop (summary, checkpoint) is at most a
  twentieth of the job, an evaluation at most a tenth, and the EMA averages
  over about a tenth of the steps. On ImageNet (1,281,167 images) every value
  is the original's. A given `train_batch_size`, `train_steps` or
  `iterations_per_loop` is kept and the rest sized to it. Returns TrainConfig
  field values (`main` and `iterate` apply those the user did not pass).
  """
  batch = base.train_batch_size
  while (batch // 2 >= MIN_SIZED_BATCH
         and batch * MIN_BATCHES_PER_EPOCH > num_train_images):
    batch //= 2
  batch = train_batch_size or batch
  steps = train_steps or max(1, int(ORIGINAL_EPOCHS * num_train_images / batch))
  loop = iterations_per_loop or min(base.iterations_per_loop,
                                    max(10, steps // 20))
  return {
      'train_batch_size': batch,
      'train_steps': steps,
      'iterations_per_loop': loop,
      'save_checkpoints_steps': loop,
      'log_every_steps': min(base.log_every_steps, loop),
      'steps_per_eval': min(base.steps_per_eval, max(loop, steps // 10)),
      'moving_average_decay': min(base.moving_average_decay,
                                  max(0.99, 1.0 - 10.0 / steps)),
  }
