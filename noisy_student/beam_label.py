r"""Pseudo-labels and filters an unlabeled set on Apache Beam (docs/beam.md).

The teacher's soft labels (`main --mode=predict`) and both passes of
`filter_unlabel` in one pipeline, on any Beam runner:

  # here, in 2 worker processes (Beam's FnApiRunner)
  python -m noisy_student.beam_label \
      --input_pattern='data/svhn/proc/unlabeled/extra-*-of-00128' \
      --teacher=ckpt/teacher --output_dir=pred/filter_data \
      --num_image=53113 --min_threshold=0.3 \
      --direct_num_workers=2 --direct_running_mode=multi_processing
  # on Dataflow: the same plus the runner's options (docs/beam.md)
      --runner=DataflowRunner --project=P --region=R \
      --temp_location=gs://B/tmp --setup_file=./setup.py

Flags this binary does not define go to Beam's PipelineOptions. The output is
that of `filter_unlabel` (`<output_dir>/data/train-0-%05d-of-%05d`,
`<output_dir>/stats/final_stats.json`), so `main
--unlabel_data_dir=<output_dir>/data` trains on it.
"""

from __future__ import annotations

from typing import Sequence

from absl import flags

from noisy_student.runtime import entry
from noisy_student.cli import config_flags
from noisy_student.cli import filter_flags
from noisy_student.runtime import errors
from noisy_student.drivers import beam_inputs
from noisy_student.drivers import beam_pipeline
from noisy_student.pseudo import filter_passes

FLAGS = flags.FLAGS


# BeamLabelConfig fields that are flags ('' = required, refused by name).
CONFIG_FIELDS = ('input_pattern', 'image_pattern', 'images_per_shard',
                 'teacher', 'output_dir', 'prediction_dir', 'batch_size',
                 'image_size', 'small_image', 'num_samples_per_class')
REQUIRED = ('teacher', 'output_dir')


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  """Defines the flags (the filter's selection flags keep their names)."""
  config_flags.define(beam_inputs.BeamLabelConfig, fv, fields=CONFIG_FIELDS,
                      defaults={name: '' for name in REQUIRED})
  filter_flags.define_flags(
      fv, num_label_classes=-1,
      num_label_classes_help='Classes of the teacher; -1: from its '
      'model_config.json (required for .keras and SavedModel teachers).')


def config_from_flags(fv: flags.FlagValues = FLAGS
                      ) -> beam_inputs.BeamLabelConfig:
  """Checks the flags (and that the teacher exists) before any work."""
  given = config_flags.values(beam_inputs.BeamLabelConfig, fv,
                              fields=CONFIG_FIELDS)
  for name in REQUIRED:
    if not given[name]:
      raise errors.ConfigError(f'--{name} is required')
  teacher = given['teacher']
  with config_flags.flag_names():
    beam_inputs.check_teacher(teacher)
  num_classes = fv.num_label_classes
  teacher_classes = beam_inputs.teacher_num_classes(teacher)
  if num_classes == -1:
    if teacher_classes is None:
      raise errors.ConfigError(
          f'--num_label_classes is required for --teacher={teacher} '
          '(no model_config.json)')
    num_classes = teacher_classes
  elif teacher_classes not in (None, num_classes):
    raise errors.ConfigError(
        f'--num_label_classes={num_classes} but the teacher {teacher} has '
        f'{teacher_classes} classes')
  settings = filter_flags.settings_from_flags(fv, num_classes)
  given['image_size'] = given['image_size'] or None  # 0: the teacher's
  with config_flags.flag_names():
    return beam_inputs.BeamLabelConfig(
        settings=settings,
        shuffle_buffer_bytes=filter_flags.shuffle_buffer_bytes(fv), **given)


def main(argv: Sequence[str]) -> None:
  config = config_from_flags(FLAGS)
  final = beam_pipeline.run(config, argv[1:])
  print(f'beam_label: {final["num_written"]} pseudo-labeled records, per '
        f'class {final["per_class"]}')
  metrics = final.get('metrics')
  if metrics:  # this run's Beam counters (a finished run reruns nothing)
    per_class = {k: v for k, v in metrics.items()
                 if k.startswith(beam_pipeline.KEPT_CLASS)}
    others = ', '.join(f'{k} {v}' for k, v in sorted(metrics.items())
                       if k not in per_class)
    print(f'beam_label: Beam metrics: {others}; kept per class '
          f'{[per_class.get(f"{beam_pipeline.KEPT_CLASS}{c}", 0) for c in range(len(final["per_class"]))]}')
  filter_passes.check_filter_output(config.output_dir,  # 0 kept: an error
                                    config.settings.min_threshold)


def run():
  entry.run('beam_label', main, define_flags, pass_unknown_flags=True,
            field_flag=config_flags.as_flag)


if __name__ == '__main__':
  run()
