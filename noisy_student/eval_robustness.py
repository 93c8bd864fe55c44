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
import math
import os
from typing import Sequence

from absl import flags
from absl import logging

from noisy_student.runtime import entry
from noisy_student.runtime import errors
from noisy_student.models import loading
from noisy_student.robust import benchmarks
from noisy_student.robust import report

BENCHMARKS = ('imagenet_a', 'imagenet_c', 'imagenet_p', 'fgsm', 'corrupted')
FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class RobustnessConfig:
  """What one run of the binary does (built from the flags in one place).

  Attributes:
    benchmark: one of BENCHMARKS, or None in --compare mode.
    model_path: `.keras`, SavedModel or checkpoint for `load_classifier`.
    model_kwargs: extra `load_classifier` arguments (checkpoints).
    model_label: the model's name in reports (default: the file name).
    data_dir: the benchmark's data root (for fgsm: a folder of TFRecords).
    output_dir: where the results are written.
    split: TFRecord file prefix (corrupted, fgsm).
    baseline: 'alexnet', a results JSON path, or None.
    clean_error: the model's clean top-1 error (fraction) for relative mCE.
    clean_file_pattern: clean TFRecords of a corrupted copy (else its info).
    corruptions / severities / perturbations / difficulties: subsets
      (empty / None: all present; ImageNet-C severities: 1-5).
    fgsm_epsilons: attack strengths in 0-255 pixel units.
    batch_size: images per forward pass.
    max_images: per set (per corruption and severity; videos for -P).
    label_map: class folder names ('imagenet', 'numeric' or a file).
    compare: results JSON files to combine into one report.
  """
  benchmark: str | None
  model_path: str | None
  model_kwargs: dict
  data_dir: str | None
  output_dir: str
  split: str = 'test'
  baseline: str | None = None
  clean_error: float | None = None
  clean_file_pattern: str | None = None
  corruptions: tuple[str, ...] | None = None
  severities: tuple[int, ...] = ()
  perturbations: tuple[str, ...] | None = None
  difficulties: tuple[int, ...] = (1,)
  fgsm_epsilons: tuple[float, ...] = (0, 1, 2, 4, 8, 16)
  batch_size: int = 64
  max_images: int | None = None
  label_map: str | None = None
  compare: tuple[str, ...] = ()
  model_label: str | None = None

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


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  """Defines the binary's flags (called only when run as a binary)."""
  flags.DEFINE_enum('benchmark', None, list(BENCHMARKS),
                    'What to evaluate (not needed with --compare).', flag_values=fv)
  flags.DEFINE_string('model_path', None, '.keras file, SavedModel or '
                      'checkpoint (noisy_student.models.loading.load_classifier).', flag_values=fv)
  flags.DEFINE_string('model_label', None, 'Name of the model in reports, '
                      'e.g. "teacher" (default: the file or folder name).', flag_values=fv)
  flags.DEFINE_string('model_name', None, 'For checkpoints without a config: '
                      'architecture name, e.g. efficientnet-b0.', flag_values=fv)
  flags.DEFINE_integer('num_classes', None, 'For checkpoints: classes.', flag_values=fv)
  flags.DEFINE_integer('image_size', None, 'For checkpoints: input size.', flag_values=fv)
  flags.DEFINE_bool('small_image', None, 'For checkpoints: 32x32 model.', flag_values=fv)
  flags.DEFINE_string('data_dir', None, 'imagenet_a: <dir>/<wnid>/*.jpg; '
                      'imagenet_c: <dir>/<corruption>/<severity>/<wnid>/*; '
                      'imagenet_p: <dir>/<perturbation>[_<d>]/<wnid>/*.mp4; '
                      'corrupted: <dir>/<corruption>/<severity>/<split>-*; '
                      'fgsm: <dir>/<split>-* labeled TFRecords.', flag_values=fv)
  flags.DEFINE_string('output_dir', None, 'Where results are written.',
                      required=True, flag_values=fv)
  flags.DEFINE_string('split', 'test', 'TFRecord prefix (corrupted, fgsm).', flag_values=fv)
  flags.DEFINE_string('baseline_results', None, 'Normalise CE / FR by this '
                      'results JSON of another run (e.g. the teacher), or '
                      '"alexnet" (ImageNet-C constants; the imagenet_c '
                      'default), or "none". imagenet_p and corrupted '
                      'default to none.', flag_values=fv)
  flags.DEFINE_float('clean_error', None, 'Clean top-1 error (fraction) of '
                     'the model, for the relative mCE of imagenet_c.', flag_values=fv)
  flags.DEFINE_string('clean_pattern', None, 'corrupted: clean TFRecords '
                      '(default: the source recorded by make_corrupted).', flag_values=fv)
  flags.DEFINE_list('corruptions', None, 'Corruption subset (default: all '
                    'present).', flag_values=fv)
  flags.DEFINE_list('severities', ['1', '2', '3', '4', '5'], 'ImageNet-C '
                    'severities (corrupted: default all present).', flag_values=fv)
  flags.DEFINE_list('perturbations', None, 'ImageNet-P subset (default: all '
                    'present).', flag_values=fv)
  flags.DEFINE_list('difficulties', ['1'], 'ImageNet-P difficulties 1-3.', flag_values=fv)
  flags.DEFINE_list('fgsm_epsilons', ['0', '1', '2', '4', '8', '16'],
                    'FGSM strengths in 0-255 pixel units.', flag_values=fv)
  flags.DEFINE_integer('batch_size', 64, 'Images per forward pass.', flag_values=fv)
  flags.DEFINE_integer('max_images', None, 'Evaluate only the first N images '
                       'of each set (videos for imagenet_p).', flag_values=fv)
  flags.DEFINE_string('label_map', None, 'Class folder names: "imagenet" '
                      '(default), "numeric" or a .txt / .json file.', flag_values=fv)
  flags.DEFINE_list('compare', [], 'Results JSON files to combine into one '
                    'report (report mode: no model is loaded).', flag_values=fv)


def _numbers(name: str, values: Sequence[str], kind=int) -> tuple:
  try:
    return tuple(kind(v) for v in values)
  except ValueError:
    raise errors.ConfigError(f'--{name} must be a list of numbers, received: '
                             f'{values}') from None


def config_from_flags(fv: flags.FlagValues = FLAGS) -> RobustnessConfig:
  """Validates the flags; errors name the flag."""
  compare = tuple(fv.compare or ())
  if not compare:
    for name in ('benchmark', 'model_path', 'data_dir'):
      if not fv[name].value:
        raise errors.ConfigError(f'--{name} is required (or use --compare)')
  kwargs = {k: fv[k].value for k in ('model_name', 'num_classes',
                                         'image_size', 'small_image')
            if fv[k].value is not None}
  severities_given = fv['severities'].present
  baseline = fv.baseline_results
  if baseline is None and fv.benchmark == 'imagenet_c':
    baseline = 'alexnet'
  if baseline == 'none':
    baseline = None
  return RobustnessConfig(
      benchmark=fv.benchmark, model_path=fv.model_path,
      model_kwargs=kwargs, data_dir=fv.data_dir,
      output_dir=fv.output_dir, split=fv.split, baseline=baseline,
      clean_error=fv.clean_error, clean_file_pattern=fv.clean_pattern,
      corruptions=tuple(fv.corruptions) if fv.corruptions else None,
      severities=(_numbers('severities', fv.severities)
                  if severities_given else ()),
      perturbations=(tuple(fv.perturbations) if fv.perturbations
                     else None),
      difficulties=_numbers('difficulties', fv.difficulties),
      fgsm_epsilons=_numbers('fgsm_epsilons', fv.fgsm_epsilons, float),
      batch_size=fv.batch_size, max_images=fv.max_images,
      label_map=fv.label_map, compare=compare,
      model_label=fv.model_label)


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
  entry.run('eval_robustness', main, define_flags)


if __name__ == '__main__':
  run()
