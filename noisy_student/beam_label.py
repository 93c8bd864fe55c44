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
from noisy_student.cli import filter_flags
from noisy_student.runtime import errors
from noisy_student.drivers import beam_pipeline

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  """Defines the flags (the filter's selection flags keep their names)."""
  flags.DEFINE_string('input_pattern', '', 'Glob(s), comma-separated, of the '
                      'unlabeled TFRecord shards; sorted, the i-th file is '
                      'shard i.', flag_values=fv)
  flags.DEFINE_string('image_pattern', '', 'Glob(s) of image files instead '
                      '(local files); sorted, they are packed into shards of '
                      '--images_per_shard under <prediction_dir>/image_shards.',
                      flag_values=fv)
  flags.DEFINE_integer('images_per_shard', 1024, 'Image files per shard '
                       '(--image_pattern).', flag_values=fv)
  flags.DEFINE_string('teacher', '', 'The teacher: a training model_dir or '
                      'checkpoint with model_config.json (EMA weights), a '
                      '.keras file or an exported SavedModel.', flag_values=fv)
  flags.DEFINE_string('output_dir', '', 'Where data/, stats/, samples/, '
                      'prelim_stats/ and allocation_plan.json are written.',
                      flag_values=fv)
  flags.DEFINE_string('prediction_dir', '', 'Teacher outputs (prediction and '
                      'info files); default <output_dir>/predictions. A run '
                      'with other filter settings reuses them.', flag_values=fv)
  flags.DEFINE_integer('batch_size', 64, 'Images per teacher batch.',
                       flag_values=fv)
  flags.DEFINE_integer('image_size', 0, 'Teacher input size in pixels; 0: '
                       'its inference size.', flag_values=fv)
  flags.DEFINE_bool('small_image', False, '.keras/SavedModel teacher: 32x32 '
                    'preprocessing (checkpoints record it themselves).',
                    flag_values=fv)
  filter_flags.define_flags(
      fv, num_label_classes=-1,
      num_label_classes_help='Classes of the teacher; -1: from its '
      'model_config.json (required for .keras and SavedModel teachers).')


def config_from_flags(fv: flags.FlagValues = FLAGS
                      ) -> beam_pipeline.BeamLabelConfig:
  """Checks the flags (and that the teacher exists) before any work."""
  for name in ('teacher', 'output_dir'):
    if not fv[name].value:
      raise errors.ConfigError(f'--{name} is required')
  beam_pipeline.check_teacher(fv.teacher)
  num_classes = fv.num_label_classes
  teacher_classes = beam_pipeline.teacher_num_classes(fv.teacher)
  if num_classes == -1:
    if teacher_classes is None:
      raise errors.ConfigError(
          f'--num_label_classes is required for --teacher={fv.teacher} '
          '(no model_config.json)')
    num_classes = teacher_classes
  elif teacher_classes not in (None, num_classes):
    raise errors.ConfigError(
        f'--num_label_classes={num_classes} but the teacher {fv.teacher} has '
        f'{teacher_classes} classes')
  settings = filter_flags.settings_from_flags(fv, num_classes)
  try:
    return beam_pipeline.BeamLabelConfig(
        teacher=fv.teacher, output_dir=fv.output_dir, settings=settings,
        input_pattern=fv.input_pattern, image_pattern=fv.image_pattern,
        prediction_dir=fv.prediction_dir, batch_size=fv.batch_size,
        image_size=fv.image_size or None, small_image=fv.small_image,
        images_per_shard=fv.images_per_shard,
        num_samples_per_class=fv.num_samples_per_class,
        shuffle_buffer_bytes=fv.shuffle_buffer_mb << 20)
  except ValueError as err:
    raise errors.ConfigError(str(err)) from None


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


def run():
  entry.run('beam_label', main, define_flags, pass_unknown_flags=True)


if __name__ == '__main__':
  run()
