"""Pseudo-labeling and filtering as one Apache Beam pipeline (docs/beam.md).

The same work as `main --mode=predict` followed by both passes of
`filter_unlabel`, spread by a Beam runner (DirectRunner, Dataflow, Flink,
Spark) over as many workers as it has. A unit is one input shard: shard i is
the i-th file of the sorted `input_pattern` matches (or the i-th group of
`images_per_shard` sorted image files), with one prediction worker per shard,
so the units, and hence the selected records, are those of the offline path.

  shard ids -Reshuffle-> [PackImages] -> LabelShard ------------> stats
  stats -ToList-> Plan (one element: the AllocationPlan, a side input)
  stats -Reshuffle-> SelectShard(plan) -> unit stats -ToList-> FinalStats

Each step runs the offline path's per-unit function, so the two paths share
every decision (`noisy_student/pseudo/selection.py`) and every file format:
* PackImages: image files -> an unlabeled TFRecord shard (`data.image_shards`);
* LabelShard: the teacher, loaded once per worker process, writes the shard's
  softmax rows (`predict.predict_shard`) to `<prediction_dir>`, then its class
  x confidence histograms (`filter_passes.ensure_prelim_stats`);
* Plan: sums the histograms and builds the allocation plan
  (`filter_passes.load_or_build_plan` -> `selection.build_plan`);
* SelectShard: the shard's copy counts (`selection.unit_copies`) and its
  shuffled pseudo-labeled shard `<output_dir>/data/train-0-%05d-of-%05d`
  (`filter_passes.select_unit`);
* FinalStats: `<output_dir>/stats/final_stats.json`.

Only shard ids and small statistics travel through the runner; the records
stream from files inside one worker, so memory is flat in the number of
records (per worker: the teacher, one batch, one shard's labels and its
shuffle buffer). Every file is written atomically with deterministic content
and every step skips finished work, so a retried or duplicated bundle writes
the same bytes and a rerun of a finished pipeline writes nothing.
"""

from __future__ import annotations

import logging as py_logging
import os
from typing import Optional, Sequence

from absl import logging

# First: Beam's worker processes import this module to run its steps; filter
# TensorFlow's start-up banner there as in the binaries.
from noisy_student.runtime import quiet

quiet.install()
# Beam's BigQuery client logs "apitools not found ..." on the root logger when
# apache_beam is imported; nothing here uses BigQuery.
py_logging.getLogger().addFilter(
    lambda record: not record.getMessage().startswith('apitools not found'))
# Beam's local job service logs again, as one long line each, every record
# that a worker process sends it; the worker printed the record itself
# (to the same stderr). Errors are kept twice rather than risk losing one.
_FORWARDED_FROM_WORKERS = 'apache_beam.runners.portability.local_job_service'
py_logging.getLogger(_FORWARDED_FROM_WORKERS).addFilter(
    lambda record: (record.levelno >= py_logging.ERROR
                    or not str(record.msg).startswith('Worker: ')))
# Beam's worker processes log at this level (their start-up, every channel
# they open and close at INFO) unless the user passes the option or
# --verbose.
WORKER_LOG_LEVEL = 'WARNING'
import apache_beam as beam  # noqa: E402
from apache_beam.options import pipeline_options
from apache_beam.runners import runner as beam_runner
from apache_beam.portability.api import beam_provision_api_pb2
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.runners.portability import portable_runner
from apache_beam.utils import shared
import tensorflow as tf

from data import dataset_info
from data import image_shards
from noisy_student.drivers import beam_inputs
from noisy_student.runtime import errors
from noisy_student.models import loading
from noisy_student.pseudo import filter_files
from noisy_student.pseudo import filter_passes
from noisy_student.pseudo import predict
from noisy_student.pseudo import selection

class Teacher:
  """The loaded teacher of one worker process (shared by its threads).

  Attributes:
    model: called as `model(images, training=False)` -> logits [N, C].
    image_size: input size in pixels.
    small_image: the 32x32 preprocessing.
  """

  def __init__(self, path: str, image_size: Optional[int], small_image: bool):
    # A .keras file or SavedModel does not record small_image; checkpoints do.
    self.model, model_config = loading.load_for_inference(
        path, None, image_size=image_size, small_image=small_image,
        name='teacher')
    self.image_size = model_config.image_size
    self.small_image = model_config.small_image
    logging.info('teacher %s loaded (%dx%d)', path, self.image_size,
                 self.image_size)


# --------------------------------------------------------------------------
# The steps.
# --------------------------------------------------------------------------
# --------------------------------------------------------------------------
# Metrics: Beam counters in the METRICS namespace, summed by any runner
# (Dataflow's job page shows them) and printed by beam_label at the end.
# --------------------------------------------------------------------------
METRICS = 'noisy_student'
IMAGES_PACKED, IMAGES_SKIPPED = 'images_packed', 'images_skipped'
IMAGES_READ, IMAGES_LABELED = 'images_read', 'images_labeled'
IMAGES_ELIGIBLE, SHARDS_REUSED = 'images_eligible', 'shards_reused'
RECORDS_WRITTEN = 'records_written'
KEPT_CLASS = 'kept_class_'  # + the class index: records written per class


def _count(name: str, value: int) -> None:
  if value:
    beam.metrics.Metrics.counter(METRICS, name).inc(int(value))


def counters(result) -> dict[str, int]:
  """{counter: value} of a finished pipeline's METRICS counters."""
  found = {}
  query = result.metrics().query(
      beam.metrics.MetricsFilter().with_namespace(METRICS))
  for counter in query['counters']:
    value = counter.committed if counter.committed is not None else counter.attempted
    found[counter.key.metric.name] = found.get(counter.key.metric.name, 0) + int(value or 0)
  return found


class PackImages(beam.DoFn):
  """Image files of one shard -> its unlabeled TFRecord shard (skips if done)."""

  def __init__(self, inputs: beam_inputs.Inputs):
    self._inputs = inputs

  def process(self, shard: int):
    path = self._inputs.shards[shard]
    if not tf.io.gfile.exists(path):
      result = image_shards.write_image_shard(image_shards.ShardTask(
          path=path, items=[(f, None) for f in self._inputs.image_groups[shard]],
          labeled=False, reencode=False, image_format='jpeg', jpeg_quality=95))
      for skipped, reason in result['skipped']:
        logging.warning('%s: skipped (%s)', skipped, reason)
      _count(IMAGES_SKIPPED, len(result['skipped']))
      _count(IMAGES_PACKED, len(self._inputs.image_groups[shard])
             - len(result['skipped']))
    yield shard


class LabelShard(beam.DoFn):
  """Teacher soft labels of one shard, then its histograms (skips if done).

  Yields {'shard', 'num_records', 'num_eligible'}.
  """

  def __init__(self, config: beam_inputs.BeamLabelConfig, fc: filter_files.FilterConfig):
    self._config, self._fc = config, fc
    self._shared = shared.Shared()
    self._teacher = None
    self._identity = None

  def _load_teacher(self) -> Teacher:
    if self._teacher is None:
      c = self._config
      self._teacher = self._shared.acquire(
          lambda: Teacher(c.teacher, c.image_size, c.small_image))
    return self._teacher

  def process(self, shard: int):
    fc = self._fc
    pred = filter_files.prediction_path(fc, shard, 0)
    info = filter_files.info_path(fc, shard, 0)
    input_file = filter_files.input_shard_path(fc, shard)
    if self._identity is None:  # hashed once per worker, not per shard
      self._identity = loading.weights_identity(self._config.teacher)
    identity = self._identity
    check_predictions_made_from(info, identity, input_file,
                                self._config.image_size)
    if tf.io.gfile.exists(info) and predict.shard_is_done(
        pred, info, predict.made_from(identity, input_file,
                                      self._config.image_size)):
      _count(SHARDS_REUSED, 1)
    else:
      teacher = self._load_teacher()
      labeled = predict.predict_shard(
          teacher.model, tf.distribute.get_strategy(), data_dir='',
          file_prefix='', shard_id=shard, num_shards=fc.num_shards,
          output_dir=fc.prediction_dir, info_dir=fc.info_dir,
          image_size=teacher.image_size, small_image=teacher.small_image,
          batch_size=self._config.batch_size, input_file=input_file,
          teacher_identity=identity)
      _count(IMAGES_LABELED, labeled)
    stats = filter_passes.ensure_prelim_stats(fc, shard, 0)
    _count(IMAGES_READ, stats['num_records'])
    _count(IMAGES_ELIGIBLE, int(stats['eligible'].sum()))
    yield {'shard': shard, 'num_records': int(stats['num_records']),
           'num_eligible': int(stats['eligible'].sum())}


def build_plan(stats: Sequence[dict],
               fc: filter_files.FilterConfig) -> selection.AllocationPlan:
  """The allocation plan, once every shard has its statistics."""
  shards = sorted(s['shard'] for s in stats)
  if shards != list(range(fc.num_shards)):
    raise errors.FilterError(f'statistics of {len(shards)} shards for '
                             f'{fc.num_shards} input shards')
  return filter_passes.load_or_build_plan(fc)


class SelectShard(beam.DoFn):
  """One shard's pseudo-labeled output shard and stats (skips if done)."""

  def __init__(self, fc: filter_files.FilterConfig):
    self._fc = fc

  def process(self, stats: dict, plan: selection.AllocationPlan):
    unit = filter_passes.select_unit(self._fc, plan, stats['shard'], 0)
    _count(RECORDS_WRITTEN, unit['num_written'])
    for label, count in enumerate(unit['per_class']):
      _count(f'{KEPT_CLASS}{label}', count)
    yield unit


def final_stats(unit_stats: Sequence[dict], fc: filter_files.FilterConfig,
                plan: selection.AllocationPlan) -> dict:
  final = filter_passes.write_final_stats(fc, plan)
  if final is None or len(unit_stats) != fc.num_shards:
    raise errors.FilterError(
        f'{len(unit_stats)} of {fc.num_shards} shards were selected; '
        f'{filter_files.final_stats_path(fc)} not written')
  return final


def build(pipeline: beam.Pipeline, config: beam_inputs.BeamLabelConfig,
          inputs: beam_inputs.Inputs) -> beam.PCollection:
  """Adds the steps to `pipeline`; returns the final stats (one element)."""
  fc = beam_inputs.filter_config(config, inputs)
  shards = (pipeline
            | 'Shards' >> beam.Create(list(range(fc.num_shards)))
            | 'SpreadShards' >> beam.Reshuffle())
  if inputs.image_groups:
    shards = shards | 'PackImages' >> beam.ParDo(PackImages(inputs))
  stats = shards | 'Label' >> beam.ParDo(LabelShard(config, fc))
  plan = (stats
          | 'AllStats' >> beam.combiners.ToList()
          | 'Plan' >> beam.Map(build_plan, fc))
  plan_side = beam.pvalue.AsSingleton(plan)
  unit_stats = (stats
                | 'SpreadSelect' >> beam.Reshuffle()
                | 'Select' >> beam.ParDo(SelectShard(fc), plan=plan_side))
  return (unit_stats
          | 'AllUnits' >> beam.combiners.ToList()
          | 'FinalStats' >> beam.Map(final_stats, fc, plan=plan_side))


# --------------------------------------------------------------------------
# Running.
# --------------------------------------------------------------------------
def check_predictions_made_from(info_file: str, identity: str,
                                input_file: str,
                                image_size: Optional[int] = None) -> None:
  """Refuses a shard whose stored predictions were made by other teacher
  weights or from another input: the statistics, plan and pseudo-labels
  after them would mix two teachers.

  Raises:
    FilterError naming the info file and both origins.
  """
  if not tf.io.gfile.exists(info_file):
    return  # nothing predicted yet (packed image shards may not exist yet)
  other = predict.made_from_other(
      info_file, predict.made_from(identity, input_file, image_size))
  if other is not None:
    raise errors.FilterError(
        f'{info_file}: these predictions were made from other inputs '
        f'({other or "origin not recorded"}; now teacher {identity}, '
        f'{input_file}); give beam_label a new {errors.field_name("output_dir")} (or delete that '
        'one) to label with this teacher')


def finished_run(fc: filter_files.FilterConfig,
                 teacher: Optional[str] = None,
                 image_size: Optional[int] = None) -> Optional[dict]:
  """final_stats.json of a finished run with these settings, else None.

  Raises:
    FilterError naming allocation_plan.json when it was built with other
    settings or shards, or a shard's predictions when they were made by
    other weights than `teacher`'s (before any work starts).
  """
  if teacher is not None:
    identity = loading.weights_identity(teacher)
    for shard in range(fc.num_shards):
      check_predictions_made_from(filter_files.info_path(fc, shard, 0),
                                  identity,
                                  filter_files.input_shard_path(fc, shard),
                                  image_size)
  if not tf.io.gfile.exists(filter_files.plan_path(fc)):
    return None
  filter_passes.load_or_build_plan(fc)  # exists: only loads and checks it
  final = filter_files.final_stats_path(fc)
  if not tf.io.gfile.exists(final) or any(
      filter_passes.load_unit_stats(fc, s, t) is None for s, t in fc.units):
    return None
  return filter_files.load_json(final)


def beam_options(beam_args: Sequence[str]
                     ) -> pipeline_options.PipelineOptions:
  """Beam's options from the pass-through flags; unknown ones are refused.

  Raises:
    ConfigError naming the first flag that is no Beam option (a typo of one
    of ours would otherwise be dropped silently).
  """
  beam_args = list(beam_args)
  if not quiet.verbose() and not any(
      arg.startswith('--default_sdk_harness_log_level') for arg in beam_args):
    beam_args.append(f'--default_sdk_harness_log_level={WORKER_LOG_LEVEL}')
  options = pipeline_options.PipelineOptions(beam_args)
  unknown = (set(options.get_all_options(retain_unknown_options=True))
             - set(options.get_all_options()))
  if unknown:
    raise errors.ConfigError(
        f'--{sorted(unknown)[0]}: neither a flag of beam_label nor a Beam '
        'pipeline option (see --helpfull and docs/beam.md)')
  workers = options.view_as(pipeline_options.DirectOptions).direct_num_workers
  if workers is not None and workers < 0:
    raise errors.ConfigError(f'--direct_num_workers must be >= 0 (0: one per '
                             f'CPU), received: {workers}')
  runner = options.view_as(pipeline_options.StandardOptions).runner
  if runner is not None and not isinstance(runner, beam_runner.PipelineRunner):
    try:
      beam_runner.create_runner(runner)
    except (ValueError, ImportError) as err:
      raise errors.ConfigError(
          f'--runner={runner}: {str(err).splitlines()[0][:300]}') from None
  return options


def _local_runner(options: pipeline_options.PipelineOptions
                  ) -> fn_runner.FnApiRunner:
  """Beam's FnApiRunner that hands the pipeline options to its worker
  processes (as the DirectRunner does), so they log at their level."""
  encoded = portable_runner.JobServiceHandle.encode_pipeline_options(
      options.get_all_options(drop_default=True))
  return fn_runner.FnApiRunner(
      provision_info=fn_runner.ExtendedProvisionInfo(
          beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)))


def run(config: beam_inputs.BeamLabelConfig, beam_args: Sequence[str] = ()) -> dict:
  """Runs the pipeline (or nothing, when it already finished); final stats.

  Without `--runner` in `beam_args` the pipeline runs here on Beam's
  FnApiRunner (the DirectRunner's engine; `--direct_num_workers=N
  --direct_running_mode=multi_processing` for N worker processes).
  """
  options = beam_options(beam_args)
  inputs = beam_inputs.list_inputs(config)
  if config.input_pattern:  # shards that contradict dataset_info.json
    dataset_info.check_shard_files(inputs.shards)
  fc = beam_inputs.filter_config(config, inputs)
  done = finished_run(fc, config.teacher, config.image_size)
  if done is not None:
    logging.info('%s: already finished with these settings (%d records); '
                 'nothing to do', filter_files.final_stats_path(fc),
                 done['num_written'])
    return done
  runner = None
  if options.view_as(pipeline_options.StandardOptions).runner is None:
    runner = _local_runner(options)
  pipeline = beam.Pipeline(runner=runner, options=options)
  build(pipeline, config, inputs)
  result = pipeline.run()
  result.wait_until_finish()
  final = filter_files.load_json(filter_files.final_stats_path(fc))
  try:
    final = dict(final, metrics=counters(result))
  except (NotImplementedError, AttributeError, KeyError) as err:
    logging.warning('this runner reports no metrics (%s)', err)
  logging.info('%d shards: %d pseudo-labeled records written to %s',
               fc.num_shards, final['num_written'],
               os.path.join(config.output_dir, 'data'))
  return final
