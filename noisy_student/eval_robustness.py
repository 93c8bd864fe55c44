r"""Robustness evaluation binary: ImageNet-A/-C/-P, corrupted copies, FGSM.

    python -m noisy_student.eval_robustness --benchmark=imagenet_c \
        --model_path=/ckpts/student.keras --data_dir=/data/ImageNet-C \
        --output_dir=/tmp/robustness --clean_error=0.121
    python -m noisy_student.eval_robustness --benchmark=corrupted \
        --model_path=student.keras --data_dir=/data/digits-c --split=test \
        --baseline_results=/tmp/teacher/corrupted.json --output_dir=/tmp/student
    python -m noisy_student.eval_robustness \
        --compare=/tmp/teacher/corrupted.json,/tmp/student/corrupted.json \
        --output_dir=/tmp/compare

Writes `<output_dir>/<benchmark>.json` (every number), `<benchmark>.md`
and `<benchmark>.png`; `--compare` writes `report.*` from existing results
files without loading a model. See docs/robustness.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING
import math
import os
from typing import Sequence

from absl import flags
from absl import logging

# First: the binaries' entry filters TensorFlow's start-up banner.
from noisy_student.runtime import entry
from noisy_student.cli import config_flags
from noisy_student.core.config import doc
from noisy_student.runtime import errors
from noisy_student.models import loading
from noisy_student.robust import benchmarks
from noisy_student.robust import report

BENCHMARKS = ('imagenet_a', 'imagenet_c', 'imagenet_p', 'fgsm', 'corrupted')
FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class RobustnessConfig:
  """What one run of the binary does (built from the flags in one place).

  The fields with help texts are the binary's flags (`cli/config_flags.py`).
  `model_kwargs` are extra `load_classifier` arguments (checkpoints: the
  --model_name, --num_classes, --image_size, --small_image flags);
  `baseline` is 'alexnet', a results JSON path or None (--baseline_results).
  """
  benchmark: str | None = doc(
      MISSING, 'What to evaluate (not needed with --compare).',
      choices=BENCHMARKS)
  model_path: str | None = doc(
      MISSING, '.keras file, SavedModel or checkpoint '
      '(noisy_student.models.loading.load_classifier).')
  model_kwargs: dict
  data_dir: str | None = doc(
      MISSING, 'imagenet_a: <dir>/<wnid>/*.jpg; imagenet_c: '
      '<dir>/<corruption>/<severity>/<wnid>/*; imagenet_p: '
      '<dir>/<perturbation>[_<d>]/<wnid>/*.mp4; corrupted: '
      '<dir>/<corruption>/<severity>/<split>-*; fgsm: <dir>/<split>-* '
      'labeled TFRecords.')
  output_dir: str = doc(MISSING, 'Where results are written.')
  split: str = doc('test', 'TFRecord prefix (corrupted, fgsm).')
  baseline: str | None = None
  clean_error: float | None = doc(
      None, 'Clean top-1 error (fraction) of the model, for the relative mCE '
      'of imagenet_c.')
  clean_file_pattern: str | None = doc(
      None, 'corrupted: clean TFRecords (default: the source recorded by '
      'make_corrupted).')
  corruptions: tuple[str, ...] | None = doc(
      None, 'Corruption subset (default: all present).')
  severities: tuple[int, ...] = doc(
      (), 'ImageNet-C severities (default: 1-5; corrupted: all present).')
  perturbations: tuple[str, ...] | None = doc(
      None, 'ImageNet-P subset (default: all present).')
  difficulties: tuple[int, ...] = doc((1,), 'ImageNet-P difficulties 1-3.')
  fgsm_epsilons: tuple[float, ...] = doc(
      (0, 1, 2, 4, 8, 16), 'FGSM strengths in 0-255 pixel units.')
  batch_size: int = doc(64, 'Images per forward pass.')
  max_images: int | None = doc(
      None, 'Evaluate only the first N images of each set (videos for '
      'imagenet_p).')
  label_map: str | None = doc(
      None, 'Class folder names: "imagenet" (default), "numeric" or a .txt / '
      '.json file.')
  compare: tuple[str, ...] = doc(
      (), 'Results JSON files to combine into one report (report mode: no '
      'model is loaded).')
  model_label: str | None = doc(
      None, 'Name of the model in reports, e.g. "teacher" (default: the file '
      'or folder name).')

  def __post_init__(self):
    def check(name: str, values, lowest, highest) -> None:
      for value in values:
        if not (math.isfinite(value) and lowest <= value <= highest):
          raise errors.ConfigError(
              f'{errors.field_name(name)}={",".join(str(v) for v in values)}: '
              f'each must be in [{lowest}, {highest}], received: {value}')
    check('severities', self.severities, 1, 5)
    check('difficulties', self.difficulties, 1, 3)
    check('fgsm_epsilons', self.fgsm_epsilons, 0, 255)
    check('batch_size', (self.batch_size,), 1, math.inf)
    if self.max_images is not None:
      check('max_images', (self.max_images,), 1, math.inf)
    if self.clean_error is not None:
      check('clean_error', (self.clean_error,), 0, 1)


# RobustnessConfig fields that are flags (None defaults: not required; the
# binary checks what a benchmark needs), in --help order.
CONFIG_FIELDS = ('benchmark', 'model_path', 'model_label', 'data_dir',
                 'output_dir', 'split', 'clean_error', 'clean_file_pattern',
                 'corruptions', 'severities', 'perturbations', 'difficulties',
                 'fgsm_epsilons', 'batch_size', 'max_images', 'label_map',
                 'compare')
CONFIG_DEFAULTS = {'benchmark': None, 'model_path': None, 'data_dir': None,
                   'severities': None}
# load_classifier's arguments for checkpoints without a model_config.json.
_MODEL_KWARGS = ('model_name', 'num_classes', 'image_size', 'small_image')


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  """Defines the binary's flags (called only when run as a binary)."""
  config_flags.define(RobustnessConfig, fv, fields=CONFIG_FIELDS,
                      defaults=CONFIG_DEFAULTS)
  flags.DEFINE_string('model_name', None, 'For checkpoints without a config: '
                      'architecture name, e.g. efficientnet-b0.', flag_values=fv)
  flags.DEFINE_integer('num_classes', None, 'For checkpoints: classes.', flag_values=fv)
  flags.DEFINE_integer('image_size', None, 'For checkpoints: input size.', flag_values=fv)
  flags.DEFINE_bool('small_image', None, 'For checkpoints: 32x32 model.', flag_values=fv)
  flags.DEFINE_string('baseline_results', None, 'Normalise CE / FR by this '
                      'results JSON of another run (e.g. the teacher), or '
                      '"alexnet" (ImageNet-C constants; the imagenet_c '
                      'default), or "none". imagenet_p and corrupted '
                      'default to none.', flag_values=fv)


def config_from_flags(fv: flags.FlagValues = FLAGS) -> RobustnessConfig:
  """Validates the flags; errors name the flag."""
  given = config_flags.values(RobustnessConfig, fv, fields=CONFIG_FIELDS)
  if not given['compare']:
    for name in ('benchmark', 'model_path', 'data_dir'):
      if not given[name]:
        raise errors.ConfigError(f'--{name} is required (or use --compare)')
  kwargs = {k: fv[k].value for k in _MODEL_KWARGS if fv[k].value is not None}
  baseline = fv.baseline_results
  if baseline is None and given['benchmark'] == 'imagenet_c':
    baseline = 'alexnet'
  if baseline == 'none':
    baseline = None
  given['severities'] = given['severities'] or ()
  for name in ('corruptions', 'perturbations'):
    given[name] = given[name] or None  # empty: all present
  with config_flags.flag_names():
    return RobustnessConfig(model_kwargs=kwargs, baseline=baseline, **given)


def evaluate(config: RobustnessConfig) -> dict[str, str]:
  """Evaluates (or, with `compare`, only reports); returns the written paths."""
  if config.compare:
    return report.write_report(
        report.load_results(config.compare), config.output_dir)
  classifier = loading.load_classifier(config.model_path,
                                       **config.model_kwargs)
  if config.model_label:
    classifier.name = config.model_label
  logging.info('%s: %dx%d input, %d classes', classifier.name,
               classifier.image_size, classifier.image_size,
               classifier.num_classes)
  common = dict(batch_size=config.batch_size)
  if config.benchmark == 'imagenet_a':
    results = benchmarks.evaluate_imagenet_a(
        classifier, config.data_dir, max_images=config.max_images,
        label_map=config.label_map, **common)
  elif config.benchmark == 'imagenet_c':
    results = benchmarks.evaluate_imagenet_c(
        classifier, config.data_dir, corruptions=config.corruptions,
        severities=config.severities or (1, 2, 3, 4, 5),
        max_images=config.max_images, label_map=config.label_map,
        baseline=config.baseline, clean_error=config.clean_error, **common)
  elif config.benchmark == 'imagenet_p':
    results = benchmarks.evaluate_imagenet_p(
        classifier, config.data_dir, perturbations=config.perturbations,
        difficulties=config.difficulties, max_videos=config.max_images,
        label_map=config.label_map, baseline=config.baseline, **common)
  elif config.benchmark == 'corrupted':
    results = benchmarks.evaluate_corrupted(
        classifier, config.data_dir, config.split,
        corruptions=config.corruptions, severities=config.severities or None,
        max_images=config.max_images, baseline=config.baseline,
        clean_file_pattern=config.clean_file_pattern, **common)
  else:
    results = benchmarks.evaluate_fgsm(
        classifier, os.path.join(config.data_dir, f'{config.split}-*'),
        epsilons=config.fgsm_epsilons, max_images=config.max_images, **common)
  return report.write_report([results], config.output_dir,
                                        name=config.benchmark)


def main(argv: Sequence[str]) -> None:
  del argv
  paths = evaluate(config_from_flags(FLAGS))
  for path in paths.values():
    logging.info('wrote %s', path)


def run():
  entry.run('eval_robustness', main, define_flags,
            field_flag=config_flags.as_flag)


if __name__ == '__main__':
  run()
