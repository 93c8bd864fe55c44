"""The outer loop's cadence around a `Trainer` (Orbit's "Controller").

`Controller.run(target, evaluate_every=K)` trains to step `target` in loops of
`iterations_per_loop` steps. Each loop runs in tf.function calls of a few
steps, sized so that a progress line (step, running loss, rate, ETA) appears
at least every `log_every_steps` steps and about every PROGRESS_SECONDS; after
each loop the controller writes TensorBoard scalars (the original's names),
prints the loop's line and lets the trainer save a checkpoint (every
`save_checkpoints_steps`); every K steps it evaluates the EMA weights. A NaN
loss stops the run (`NonFiniteLossError`, raised by the trainer's step).
Lines go through `noisy_student.runtime.progress.emit` (absl's log in a
binary, stderr in a notebook); a call that stays silent longer (the first:
the step is traced and compiled) gets `progress.heartbeat` lines. The clock
is injected, so the cadence tests never depend on the wall clock.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Callable, Optional, Sequence

import tensorflow as tf

from noisy_student.runtime import progress as progress_lib
from noisy_student.training import event_files
from noisy_student.training import trainer as trainer_lib

# A progress line about this often (seconds), and after the first few steps;
# a call that takes longer (the first: the step is traced and compiled; a
# slowed machine) gets a heartbeat line after progress.HEARTBEAT_SECONDS of
# silence, so lines are never 30 s apart.
PROGRESS_SECONDS = 15.0
FIRST_CHUNK_STEPS = 10


@dataclasses.dataclass
class LoopStats:
  """Averages over the last loop (keys: trainer.METRIC_NAMES + train/*)."""
  step: int
  metrics: dict


class Controller:
  """When to run steps, log, summarise, checkpoint and evaluate.

  Args:
    trainer: the steps, checkpoints and evaluation.
    clock: seconds (monotonic); `time.monotonic` unless a test injects one.
    emit: where progress lines go.
  """

  def __init__(self, trainer: trainer_lib.Trainer, *,
               clock: Callable[[], float] = time.monotonic,
               emit: Callable[[str], None] = progress_lib.emit):
    self.trainer = trainer
    self.config = trainer.config
    self._clock = clock
    self._emit = emit
    self._seconds_per_step = None
    if trainer.is_chief and self.config.model_dir:
      self._drop_summaries_after(trainer.step)
    self._summary_writer = (
        tf.summary.create_file_writer(self.config.model_dir)
        if trainer.is_chief else tf.summary.create_noop_writer())

  @property
  def step(self) -> int:
    return self.trainer.step

  def _drop_summaries_after(self, step: int) -> None:
    """A resumed job logs the steps after its checkpoint again: the events
    a killed run wrote for them go first (TensorBoard shows each step once)."""
    folders = [self.config.model_dir] + [
        os.path.join(self.config.model_dir, name)
        for name in (tf.io.gfile.listdir(self.config.model_dir)
                     if tf.io.gfile.isdir(self.config.model_dir) else [])
        if name.rstrip('/').startswith('eval_')]
    removed = sum(event_files.drop_events_after(f.rstrip('/'), step)
                  for f in folders)
    if removed:
      self._emit(f'resuming at step {step}: removed {removed} TensorBoard '
                 'events of later steps logged before the restart')

  def run(self, target: Optional[int] = None, *,
          evaluate_every: Optional[int] = None,
          splits: Sequence[str] = (),
          on_evaluate: Optional[Callable[[dict], None]] = None
          ) -> tuple[list[LoopStats], dict]:
    """Trains to `target` (default: the config's last step), evaluating every
    `evaluate_every` steps on `splits` when given; returns (loop stats, the
    last evaluation's results). `on_evaluate(results)` sees each evaluation.
    """
    target = self.config.train.last_step if target is None else target
    history, results = [], {}
    while self.step < target:
      until = target
      if evaluate_every:
        until = min(target, (self.step // evaluate_every + 1) * evaluate_every)
      history.extend(self.train(until))
      if evaluate_every:
        results = self.evaluate(splits)
        if on_evaluate is not None:
          on_evaluate(results)
    return history, results

  def train(self, until_step: Optional[int] = None) -> list[LoopStats]:
    """Trains until `until_step` (default: the config's last_step); returns
    the stats of each loop."""
    train = self.config.train
    target = until_step if until_step is not None else train.last_step
    history = []
    start_step, start_time = self.step, self._clock()
    if self.step < target and self.trainer.is_chief:
      self._emit(
          f'training {self.config.model.model_name} in '
          f'{self.config.model_dir or "."}: step {self.step} -> {target}, '
          f'{self.trainer.images_per_step} images a step'
          + (' (tracing the step first: the first progress line comes after '
             'it)' if self._seconds_per_step is None else ''))
    try:
      while self.step < target:
        num_steps = min(train.iterations_per_loop, target - self.step)
        loop_start = self._clock()
        self._run_loop(num_steps, target, start_step, start_time)
        elapsed = self._clock() - loop_start
        history.append(self._end_of_loop(num_steps, elapsed, start_step,
                                         start_time, target))
        self.trainer.save()
    except KeyboardInterrupt:
      self._save_interrupted()
      raise
    self.trainer.save(force=True)
    return history

  def _save_interrupted(self) -> None:
    """Ctrl-C between two calls of the step: the weights and the step
    counter agree, so this step's checkpoint is saved (one process only: the
    workers of a multi-worker job would have to save together)."""
    if isinstance(self.trainer.strategy,
                  tf.distribute.MultiWorkerMirroredStrategy):
      return
    self.trainer.save(force=True)
    self._emit(f'interrupted at step {self.step}: checkpoint saved in '
               f'{self.config.model_dir or "."}; the same command resumes '
               'from it')

  def _chunk_steps(self) -> int:
    """Steps per tf.function call: a progress line at least every
    `log_every_steps` steps and about every PROGRESS_SECONDS."""
    every = max(1, self.config.train.log_every_steps)
    if self._seconds_per_step is None:
      return min(every, FIRST_CHUNK_STEPS)
    return max(1, min(every, int(PROGRESS_SECONDS / self._seconds_per_step)))

  def _run_loop(self, num_steps: int, target: int, start_step: int,
                start_time: float) -> None:
    """Runs `num_steps` steps in chunks, with a progress line between them."""
    done = 0
    while done < num_steps:
      chunk = min(num_steps - done, self._chunk_steps())
      chunk_start = self._clock()
      label = (f'tracing and compiling the train step, then {chunk} steps'
               if self._seconds_per_step is None else
               f'running steps {self.step + 1}-{self.step + chunk}')
      with progress_lib.heartbeat(label, emit_line=self._emit):
        self.trainer.run_steps(chunk)
      self._seconds_per_step = max(self._clock() - chunk_start, 1e-9) / chunk
      done += chunk
      if done < num_steps:
        self._progress_line(done, target, start_step, start_time)

  def _rate_and_eta(self, target: int, start_step: int,
                    start_time: float) -> tuple[float, str]:
    rate = (self.step - start_step) / max(self._clock() - start_time, 1e-9)
    return rate, progress_lib.clock((target - self.step) / max(rate, 1e-9))

  def _progress_line(self, steps_in_loop: int, target: int, start_step: int,
                     start_time: float) -> None:
    step = self.step
    rate, eta = self._rate_and_eta(target, start_step, start_time)
    self._emit(
        f'step {step}/{target} ({100.0 * step / max(target, 1):.1f}%) | loss '
        f'{self.trainer.running_loss(steps_in_loop):.4f} | {rate:.2f} '
        f'steps/s | ETA {eta}')

  def _end_of_loop(self, num_steps: int, elapsed: float, start_step: int,
                   start_time: float, target: int) -> LoopStats:
    metrics = self.trainer.loop_metrics(num_steps)
    step = self.step
    metrics['train/steps_per_sec'] = num_steps / max(elapsed, 1e-9)
    metrics['train/examples_per_sec'] = (
        num_steps * self.trainer.images_per_step / max(elapsed, 1e-9))
    with self._summary_writer.as_default():
      for name, value in metrics.items():
        tf.summary.scalar(name, value, step=step)
    self._summary_writer.flush()
    _, eta = self._rate_and_eta(target, start_step, start_time)
    self._emit(
        f'step {step}/{target} ({100.0 * step / max(target, 1):.1f}%) | loss '
        f'{metrics["train/loss"]:.4f} | lab/acc {metrics["lab/acc"]:.3f} | lr '
        f'{metrics["train/lr"]:.3g} | {metrics["train/steps_per_sec"]:.2f} '
        f'steps/s, {metrics["train/examples_per_sec"]:.0f} img/s | ETA {eta}')
    return LoopStats(step=step, metrics=metrics)

  def evaluate(self, splits: Sequence[str]) -> dict:
    """The trainer's EMA evaluation, with TensorBoard scalars per split."""
    results = self.trainer.evaluate(splits)
    if self.trainer.is_chief:
      for split, metrics in results.items():
        writer = tf.summary.create_file_writer(
            os.path.join(self.config.model_dir, f'eval_{split}'))
        with writer.as_default():
          for key in ('top_1_accuracy', 'top_5_accuracy'):
            tf.summary.scalar(key, metrics[key], step=self.step)
        writer.flush()
    return results
