r"""The offline demo: the whole Noisy Student pipeline on the bundled digits.

  bash demo.sh                     # = python -m noisy_student.demo
  bash demo.sh --seed=1 --work_dir=/tmp/demo

1. writes scikit-learn's 1,797 handwritten digits as TFRecords (300 labeled,
   897 unlabeled, 200 dev, 400 test; no network);
2. trains a supervised EfficientNet-B0 teacher (32x32 small-image variant,
   scaled to half width and depth so it runs in minutes on a laptop CPU);
3. predicts the unlabeled images with the teacher's EMA weights, keeps the
   confident pseudo-labels and balances the classes (filter_unlabel);
4. trains an equal-size student with noise (RandAugment, dropout, stochastic
   depth) on labeled + soft pseudo-labeled data;
5. scores teacher and student on digits-C (the 15 + 4 ImageNet-C corruptions
   of the test split, 5 severities), the student's mCE normalised by the
   teacher's errors;
6. exports the student as a SavedModel (and a .keras file beside it) and
   classifies one test image with the SavedModel.
Everything lands in --work_dir; rerunning resumes / skips finished stages.
"""

from __future__ import annotations

import os
import time

from absl import flags
# First: the binaries' entry filters TensorFlow's start-up banner.
from noisy_student.runtime import entry
import keras
import tensorflow as tf

from noisy_student.cli import config_flags
from noisy_student.core import config as config_lib
from data import layout
from data import make_corrupted
from data import prepare_digits
from data import records
from data import writers
from noisy_student.core import datasets
from noisy_student.core import defaults
from noisy_student.drivers import rounds as rounds_lib
from noisy_student.models import loading
from noisy_student.robust import benchmarks
from noisy_student.robust import report as report_lib

FLAGS = flags.FLAGS
_TEACHER = defaults.DEMO_TEACHER
_STUDENT = defaults.DEMO_STUDENT


# RoundsConfig fields that are the demo's flags, with the demo's defaults.
CONFIG_FIELDS = ('work_dir', 'seed', 'deterministic', 'width_coefficient',
                 'depth_coefficient', 'min_threshold')
CONFIG_DEFAULTS = {'work_dir': 'demo_output', 'deterministic': True,
                   'width_coefficient': defaults.DEMO_WIDTH_COEFFICIENT,
                   'depth_coefficient': defaults.DEMO_DEPTH_COEFFICIENT}


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
  """Defines the demo's flags on `fv` (defaults: core/defaults.py DEMO_*)."""
  config_flags.define(rounds_lib.RoundsConfig, fv, fields=CONFIG_FIELDS,
                      defaults=CONFIG_DEFAULTS)
  for role, recipe in (('teacher', _TEACHER), ('student', _STUDENT)):
    config_flags.define(config_lib.TrainConfig, fv, fields=('train_steps',),
                        prefix=f'{role}_', base=recipe.train,
                        help_prefix=f'{role.capitalize()} (batch 32'
                        f'{"" if role == "teacher" else " + 96"}): ')
    flags.DEFINE_alias(f'{role}_steps', f'{role}_train_steps', flag_values=fv)
  flags.DEFINE_integer('corrupted_images', 200,
                       'Test images in digits-C (0 skips the robustness step).',
                       flag_values=fv)


def config_from_flags(fv: flags.FlagValues = FLAGS
                      ) -> tuple[rounds_lib.RoundsConfig, int]:
  """The digits Noisy Student job (one round, equal-size student) in
  `<work_dir>/seed_<seed>`, its data in `<work_dir>/data`, and the number of
  digits-C images."""
  given = config_flags.values(rounds_lib.RoundsConfig, fv, fields=CONFIG_FIELDS)
  work_dir = os.path.abspath(given.pop('work_dir'))
  data_dir = os.path.join(work_dir, 'data')
  with config_flags.flag_names():
    return rounds_lib.RoundsConfig(
        work_dir=layout.seed_dir(work_dir, given['seed']),
        dataset=datasets.get_builtin('digits'), label_data_dir=data_dir,
        unlabel_data_dir=layout.unlabeled_dir(data_dir),
        teacher_model_name='efficientnet-b0',
        student_model_names=('efficientnet-b0',),
        teacher=_TEACHER.with_steps(fv.teacher_train_steps),
        student=_STUDENT.with_steps(fv.student_train_steps),
        **given), fv.corrupted_images


def robustness(rows, data_dir: str, work_dir: str, num_images: int) -> dict:
  """digits-C errors of every row's model; students normalised by the teacher."""
  corrupted_dir = os.path.join(work_dir, 'digits_c')
  make_corrupted.make_corrupted(
      layout.shard_pattern(data_dir, 'test'), corrupted_dir, split='test',
      max_images=num_images, seed=0)
  results, teacher_result = [], None
  for row in rows:
    classifier = loading.load_classifier(row['model_dir'])
    classifier.name = f'{row["role"]} (round {row["round"]})'
    result = benchmarks.evaluate_corrupted(
        classifier, corrupted_dir, 'test', batch_size=256,
        baseline=teacher_result)
    if teacher_result is None:
      teacher_result = result
    results.append(result)
  report_lib.write_report(results, os.path.join(work_dir, 'robustness'),
                          name='digits_c')
  return {r['model']: r for r in results}


def classify_one(saved_model_dir: str, data_dir: str, work_dir: str) -> dict:
  """Runs the exported SavedModel's `serving_bytes` on the first test image."""
  path = layout.find_shards(data_dir, 'test')[0]
  fields = records.read_example(next(iter(tf.data.TFRecordDataset(path))).numpy())
  image_bytes = fields[records.IMAGE_KEY]
  label = int(fields[records.LABEL_KEY][0]) - 1
  with open(os.path.join(work_dir, 'example_digit.png'), 'wb') as f:
    f.write(image_bytes)
  loaded = loading.load_saved_model(saved_model_dir)
  out = loaded.signatures['serving_bytes'](image_bytes=tf.constant([image_bytes]))
  predicted = int(out['classes'][0])
  return {'file': os.path.join(work_dir, 'example_digit.png'),
          'true_label': label, 'predicted': predicted,
          'probability': float(out['probabilities'][0][predicted])}


def summary_table(rows, robust: dict) -> str:
  lines = ['| model | test top-1 | dev top-1 | digits-C mean error | '
           'digits-C mCE (teacher = 100) |', '|---|---|---|---|---|']
  for row in rows:
    name = f'{row["role"]} (round {row["round"]})'
    r = robust.get(name, {})
    mean_error = r.get('mean_error')
    mce = r.get('mce')
    lines.append(
        f'| {name}: {row["model"]} | {100 * row["test"]:.2f}% | '
        f'{100 * row["dev"]:.2f}% | '
        f'{"-" if mean_error is None else f"{100 * mean_error:.2f}%"} | '
        f'{"-" if mce is None else f"{mce:.1f}"} |')
  return '\n'.join(lines) + '\n'


def main(argv):
  del argv
  start = time.time()
  config, corrupted_images = config_from_flags(FLAGS)
  data_dir, run_dir = config.label_data_dir, config.work_dir
  print(f'[demo] writing the bundled digits to {data_dir}', flush=True)
  prepare_digits.prepare_digits(data_dir)
  keras.utils.set_random_seed(config.seed)
  print('[demo] teacher -> pseudo-labels -> filter/balance -> noised student '
        f'(logs: {run_dir})', flush=True)
  rows = rounds_lib.run(config)
  robust = {}
  if corrupted_images:
    print('[demo] digits-C: corrupting the test split and scoring both models',
          flush=True)
    robust = robustness(rows, data_dir, run_dir, corrupted_images)
  exported = rows[-1]['exported']  # the rounds export the last student
  saved_model = exported['saved_model']
  print(f'[demo] the student, exported: {saved_model}', flush=True)
  example = classify_one(saved_model, data_dir, run_dir)
  table = summary_table(rows, robust)
  seconds = time.time() - start
  report = (f'# Noisy Student demo (digits, seed {config.seed})\n\n{table}\n'
            f'SavedModel: {saved_model} (the same model as a .keras file: '
            f'{exported["keras"]})\n'
            f'Example: {example["file"]} is a {example["true_label"]}; the '
            f'SavedModel says {example["predicted"]} (p={example["probability"]:.3f})\n'
            f'Plots: {run_dir}/summary.png, {run_dir}/robustness/digits_c.png\n'
            f'Run time: {seconds:.0f} s\n')
  writers.write_text(os.path.join(run_dir, 'demo_summary.md'), report)
  writers.write_json(os.path.join(run_dir, 'demo_summary.json'), {
      'rows': rows, 'example': example, 'seconds': round(seconds, 1),
      'robustness': {k: {'mean_error': v.get('mean_error'), 'mce': v.get('mce')}
                     for k, v in robust.items()}})
  print('\n' + report, flush=True)


def run():
  entry.run('demo', main, define_flags,
            field_flag=config_flags.as_flag)


if __name__ == '__main__':
  run()
