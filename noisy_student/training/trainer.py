"""The Noisy Student training step and what it needs (Orbit's "Trainer").

`Trainer` owns, inside one tf.distribute strategy scope, the student model, the
original's RMSProp, the EMA of the weights, the global step, an optional
teacher (inference mode) and a `tf.train.CheckpointManager`. Precedence at
start-up: the latest checkpoint in `model_dir` (an exact resume: step,
weights, optimizer slots, EMA, and in deterministic-input mode the data
stream); only when there is none, `init_model_path` initialises the student
(its EMA weights), and the EMA shadows start from the initial weights.

It runs steps (`run_steps(n)`: n steps in one tf.function call), keeps the
per-step metrics, saves checkpoints and evaluates the EMA weights when asked.
*When* to do each (loops of `iterations_per_loop` steps, progress lines,
TensorBoard summaries, checkpoint cadence, the NaN stop, evaluation every K
steps) is `noisy_student.training.controller.Controller`'s job.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Optional

from absl import logging
import keras
import tensorflow as tf

from data import records
from noisy_student.core import config as config_lib
from noisy_student.runtime import errors
from noisy_student.core import factory
from noisy_student.models import checkpoints
from noisy_student.models import ema as ema_lib
from noisy_student.models import loading
from noisy_student.training import evaluation
from noisy_student.training import input_pipeline
from noisy_student.training import losses
from noisy_student.training import optimizers
from noisy_student.core import schedules

METRIC_NAMES = (
    'lab/acc', 'lab/pred_prob', 'lab/loss', 'unl/loss', 'unl/pred_prob',
    'unl/target_prob', 'unl/acc_to_dump', 'train/data_loss', 'train/loss')


@contextlib.contextmanager
def precision_policy(name: str):
  """Builds models under 'mixed_bfloat16' / 'mixed_float16' / 'float32'."""
  policy = {'float32': 'float32', 'bfloat16': 'mixed_bfloat16',
            'float16': 'mixed_float16'}[name]
  previous = keras.config.dtype_policy()
  keras.config.set_dtype_policy(policy)
  try:
    yield
  finally:
    keras.config.set_dtype_policy(previous)


class _ScheduleFromStep(keras.optimizers.schedules.LearningRateSchedule):
  """The LR schedule read from our global step (not optimizer.iterations).

  The loop increments the global step before the train step, so step k
  (1-based) reads global_step = k; it uses the rate of step k - 1, as the
  original, whose graph read the global step before `apply_gradients`
  incremented it (the first step runs at lr(0), 0 during warm-up).
  """

  def __init__(self, schedule, global_step: tf.Variable):
    self._schedule = schedule
    self._global_step = global_step

  def __call__(self, step):
    del step
    return self._schedule(self._global_step - 1)

  def get_config(self):
    return {}


def _is_batch_norm(layer) -> bool:
  return isinstance(layer, keras.layers.BatchNormalization)


def decayed_weights(model: keras.Model) -> list:
  """Trainable weights that get L2 weight decay: all but BatchNorm's."""
  bn_weights = set()
  for layer in model._flatten_layers(include_self=False):  # pylint: disable=protected-access
    if _is_batch_norm(layer):
      bn_weights.update(id(w) for w in layer.trainable_weights)
  return [w for w in model.trainable_weights if id(w) not in bn_weights]


class Trainer:
  """The training step, checkpoints and EMA evaluation of one student.

  Args:
    config: the experiment.
    strategy: a tf.distribute strategy (its scope is used for all variables).
    is_chief: saves real checkpoints (the controller: summaries).
    checkpoint_dir: where this worker saves (model_dir for the chief, a
      temporary folder for other multi-worker workers).
  """

  def __init__(self, config: config_lib.ExperimentConfig,
               strategy: tf.distribute.Strategy, *, is_chief: bool = True,
               checkpoint_dir: Optional[str] = None):
    self.config = config
    self.strategy = strategy
    self.is_chief = is_chief
    train = config.train
    self.num_replicas = strategy.num_replicas_in_sync
    self.labeled_batch, self.unlabeled_batch = train.per_replica_batches(
        self.num_replicas)
    self.global_labeled_batch = self.labeled_batch * self.num_replicas
    self.global_unlabeled_batch = self.unlabeled_batch * self.num_replicas
    self.schedule = schedules.from_train_config(train)
    self.num_classes = config.model.num_classes

    with strategy.scope(), precision_policy(train.mixed_precision):
      self.global_step = tf.Variable(
          0, dtype=tf.int64, trainable=False, name='global_step',
          aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
      self.model = loading.build(config.model, name='student')
      self.optimizer = optimizers.build_optimizer(
          _ScheduleFromStep(self.schedule, self.global_step),
          loss_scale=train.mixed_precision == 'float16')
      # Build slots inside the scope, before any tf.function (Keras 3 trap).
      self.optimizer.build(self.model.trainable_variables)
      self.ema = (ema_lib.ExponentialMovingAverage(
          ema_lib.model_ema_weights(self.model), train.moving_average_decay)
                  if train.moving_average_decay > 0 else None)
      self.teacher = self._load_teacher()
    self._decayed = decayed_weights(self.model)
    self._eval_model = None

    trackables = dict(model=self.model, optimizer=self.optimizer,
                      global_step=self.global_step)
    if self.ema is not None:
      trackables['ema'] = self.ema
    # Keras keeps dropout / stochastic-depth RNG state in SeedGenerator
    # variables that tf.train.Checkpoint(model=...) does not save; saving them
    # makes a resumed run draw the same masks as an uninterrupted one.
    rng_states = [v.value for v in self.model.variables
                  if v.path.endswith('seed_generator_state')]
    if rng_states:
      trackables['rng_states'] = rng_states
    self.checkpoint = tf.train.Checkpoint(**trackables)
    self.manager = tf.train.CheckpointManager(
        self.checkpoint, checkpoint_dir or config.model_dir,
        max_to_keep=train.keep_checkpoint_max, step_counter=self.global_step,
        checkpoint_interval=max(train.save_checkpoints_steps, 1))
    self._restore_or_initialize()
    self._train_loop_fn = None
    self._iterator = None

  # ------------------------------------------------------------------------
  # Set-up.
  # ------------------------------------------------------------------------
  def _load_teacher(self) -> Optional[keras.Model]:
    teacher = self.config.teacher
    if teacher is None:
      return None
    model = loading.load_model(teacher.path, teacher.model, use_ema=True,
                               image_size=teacher.model.image_size,
                               name='teacher')
    model.trainable = False
    logging.info('Teacher %s loaded from %s', model.name, teacher.path)
    return model

  def _restore_or_initialize(self) -> None:
    if self.manager.latest_checkpoint:
      prefix = checkpoints.with_fallback(
          self.manager.directory,
          lambda p: self.checkpoint.restore(p).assert_existing_objects_matched())
      logging.info('Resumed from %s at step %d', prefix, self.step)
      return
    if self.config.init_model_path:
      prefix = loading.restore(self.model, self.config.init_model_path,
                               use_ema=True, config=self.config.model,
                               new_classifier_ok=True)
      logging.info('Initialised the student from %s', prefix)
      if self.ema is not None:
        self.ema.reset()

  @property
  def step(self) -> int:
    return int(self.global_step.numpy())

  # ------------------------------------------------------------------------
  # The train step (replica context).
  # ------------------------------------------------------------------------
  def _unlabeled_targets(self, inputs):
    train = self.config.train
    if self.teacher is not None:
      teacher_logits = self.teacher(inputs['unl_teacher_image'], training=False)
      return losses.teacher_targets_from_logits(
          teacher_logits, self.num_classes, train.teacher_softmax_temp,
          train.label_smoothing)
    return losses.teacher_targets_from_probs(
        inputs['unl_probs'], inputs['unl_label'], self.num_classes,
        train.teacher_softmax_temp, train.label_smoothing)

  def _labeled_mask(self):
    prob = self.config.train.label_data_sample_prob
    if prob == 1:
      return None
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    seed = tf.stack([tf.constant(self.config.train.seed, tf.int64),
                     self.global_step * 1024 + tf.cast(replica, tf.int64)])
    noise = tf.random.stateless_uniform([self.labeled_batch], seed=seed)
    return tf.floor(prob + noise)

  def _train_step(self, inputs):
    train = self.config.train
    has_unlabeled = self.unlabeled_batch > 0
    images = inputs['image']
    targets = None
    if has_unlabeled:
      images = tf.concat([images, tf.cast(inputs['unl_image'], images.dtype)], 0)
      targets = self._unlabeled_targets(inputs)

    with tf.GradientTape() as tape:
      logits = tf.cast(self.model(images, training=True), tf.float32)
      lab_logits = logits[:self.labeled_batch]
      lab_losses = losses.labeled_loss(inputs['label'], lab_logits,
                                       self.num_classes, train.label_smoothing)
      mask = self._labeled_mask()
      if mask is not None:
        lab_losses *= mask
      lab_sum = tf.reduce_sum(lab_losses)
      unl_sum = None
      if has_unlabeled:
        unl_logits = logits[self.labeled_batch:]
        unl_losses = losses.cross_entropy(targets, unl_logits)
        unl_sum = tf.reduce_sum(unl_losses)
      data_loss = losses.combine_losses(
          lab_sum, unl_sum, global_labeled_batch=self.global_labeled_batch,
          global_unlabeled_batch=self.global_unlabeled_batch,
          unlabel_ratio=train.unlabel_ratio)
      decay = (train.weight_decay * losses.l2_weight_decay(self._decayed)
               / self.num_replicas)
      loss = data_loss + decay
      scaled = (self.optimizer.scale_loss(loss)
                if train.mixed_precision == 'float16' else loss)
    variables = self.model.trainable_variables
    grads = tape.gradient(scaled, variables)
    self.optimizer.apply_gradients(zip(grads, variables))
    if self.ema is not None:
      self.ema.update(self.global_step)

    self._accumulate(lab_logits, inputs['label'], lab_sum, data_loss, loss,
                     unl_logits if has_unlabeled else None, unl_sum, targets)
    return loss

  # ------------------------------------------------------------------------
  # Metrics: ON_READ sums, each value already divided by the global batch so
  # that the cross-replica sum is the global per-step value.
  # ------------------------------------------------------------------------
  def _metric_variables(self):
    if not hasattr(self, '_metric_sums'):
      with self.strategy.scope():
        self._metric_sums = {
            name: tf.Variable(0.0, trainable=False,
                              synchronization=tf.VariableSynchronization.ON_READ,
                              aggregation=tf.VariableAggregation.SUM,
                              name=name.replace('/', '_'))
            for name in METRIC_NAMES}
    return self._metric_sums

  def _accumulate(self, lab_logits, labels, lab_sum, data_loss, loss,
                  unl_logits, unl_sum, targets):
    sums = self._metric_sums
    lab_probs = tf.nn.softmax(lab_logits)
    correct = tf.equal(tf.argmax(lab_logits, -1, output_type=tf.int32), labels)
    nl = float(self.global_labeled_batch)
    sums['lab/acc'].assign_add(tf.reduce_sum(tf.cast(correct, tf.float32)) / nl)
    sums['lab/pred_prob'].assign_add(tf.reduce_sum(tf.reduce_max(lab_probs, -1)) / nl)
    sums['lab/loss'].assign_add(lab_sum / nl)
    sums['train/data_loss'].assign_add(data_loss)
    sums['train/loss'].assign_add(loss)
    if unl_logits is not None:
      nu = float(self.global_unlabeled_batch)
      unl_probs = tf.nn.softmax(unl_logits)
      sums['unl/loss'].assign_add(unl_sum / nu)
      sums['unl/pred_prob'].assign_add(tf.reduce_sum(tf.reduce_max(unl_probs, -1)) / nu)
      sums['unl/target_prob'].assign_add(tf.reduce_sum(tf.reduce_max(targets, -1)) / nu)
      agree = tf.equal(tf.argmax(unl_logits, -1), tf.argmax(targets, -1))
      sums['unl/acc_to_dump'].assign_add(tf.reduce_sum(tf.cast(agree, tf.float32)) / nu)

  def _read_and_reset_metrics(self, steps: int) -> dict:
    values = {}
    for name, variable in self._metric_sums.items():
      values[name] = float(variable.read_value()) / max(steps, 1)
      variable.assign(tf.zeros_like(variable))
    return values

  # ------------------------------------------------------------------------
  # Running steps.
  # ------------------------------------------------------------------------
  def _dataset_fn(self, start_step: int):
    def fn(input_context):
      replicas_per_pipeline = max(
          1, self.num_replicas // input_context.num_input_pipelines)
      return input_pipeline.make_train_dataset(
          self.config.data, labeled_batch=self.labeled_batch,
          unlabeled_batch=self.unlabeled_batch, start_step=start_step,
          replicas_per_pipeline=replicas_per_pipeline,
          input_context=input_context)
    return fn

  def _build_loop(self):
    self._metric_variables()
    self._nonfinite_step = tf.Variable(-1, dtype=tf.int64, trainable=False)
    step_fn = self._train_step
    if self.config.train.jit_compile:
      step_fn = tf.function(step_fn, jit_compile=True)
    strategy = self.strategy

    @tf.function
    def loop(iterator, num_steps):
      for _ in tf.range(num_steps):
        self.global_step.assign_add(1)
        per_replica_loss = strategy.run(step_fn, args=(next(iterator),))
        loss = strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica_loss,
                               axis=None)
        if not tf.math.is_finite(loss):
          self._nonfinite_step.assign(self.global_step)
          break

    return loop

  def run_steps(self, num_steps: int) -> None:
    """Runs `num_steps` training steps in one tf.function call.

    Raises:
      NonFiniteLossError when the loss became NaN/Inf (the step that did is
        named; training stops at that step).
      RecordError-like errors naming the record when the data is corrupt.
    """
    if self._train_loop_fn is None:
      self._train_loop_fn = self._build_loop()
    if self._iterator is None:
      dist = self.strategy.distribute_datasets_from_function(
          self._dataset_fn(self.step))
      self._iterator = iter(dist)
    try:
      self._train_loop_fn(self._iterator, tf.constant(num_steps, tf.int64))
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as err:
      labeled, unlabeled = input_pipeline.train_files(self.config.data)
      explained = records.explain_data_error(err, labeled + unlabeled)
      if explained is not None:
        raise explained from None
      raise
    if int(self._nonfinite_step.numpy()) >= 0:
      self._raise_nonfinite()

  def _raise_nonfinite(self):
    step = int(self._nonfinite_step.numpy())
    latest = self.manager.latest_checkpoint
    kept = (f'the last good checkpoint {latest} is intact' if latest else
            'no checkpoint had been written yet')
    raise errors.NonFiniteLossError(
        f'The training loss became NaN/Inf at step {step} (learning rate '
        f'{self.schedule.numpy(step - 1):.3g}); training stopped and {kept}. '
        f'Lower {errors.field_name("base_learning_rate")} or check the input '
        'data.')

  def running_loss(self, steps: int) -> float:
    """Mean `train/loss` over the last `steps` steps (metrics not reset)."""
    return float(self._metric_sums['train/loss'].read_value()) / max(steps, 1)

  def loop_metrics(self, num_steps: int) -> dict:
    """Averages over the last `num_steps` steps (then reset) with the rate of
    the last step (`train/lr`) and the epoch (`train/epoch`)."""
    train = self.config.train
    metrics = self._read_and_reset_metrics(num_steps)
    if not self.unlabeled_batch:
      for name in ('unl/loss', 'unl/pred_prob', 'unl/target_prob',
                   'unl/acc_to_dump'):
        metrics.pop(name)
    step = self.step
    metrics['train/lr'] = self.schedule.numpy(step - 1)  # the last step's rate
    metrics['train/epoch'] = step / schedules.steps_per_epoch(
        train.num_train_images, train.train_batch_size,
        train.label_data_sample_prob)
    return metrics

  @property
  def images_per_step(self) -> int:
    """Labeled + unlabeled images of one global step."""
    return self.global_labeled_batch + self.global_unlabeled_batch

  def save(self, force: bool = False) -> None:
    """Saves a checkpoint: every `save_checkpoints_steps`, or now (`force`)
    unless the latest is already this step's."""
    if not force:
      self.manager.save(checkpoint_number=self.step, check_interval=True)
      return
    latest = self.manager.latest_checkpoint
    if latest is None or not latest.endswith(f'-{self.step}'):
      self.manager.save(checkpoint_number=self.step, check_interval=False)

  # ------------------------------------------------------------------------
  # Evaluation with the EMA weights.
  # ------------------------------------------------------------------------
  def _eval_model_config(self):
    return dataclasses.replace(
        self.config.model, sync_batch_norm=False,
        image_size=factory.inference_image_size(self.config.model))

  def ema_model(self) -> keras.Model:
    """A copy of the student holding the EMA weights (or the raw weights)."""
    if self._eval_model is None:
      with self.strategy.scope(), precision_policy(
          self.config.train.mixed_precision):
        self._eval_model = loading.build(self._eval_model_config(),
                                         name='student_ema')
    source = (self.ema.shadows if self.ema is not None
              else ema_lib.model_ema_weights(self.model))
    for value, target in zip(source,
                             ema_lib.model_ema_weights(self._eval_model)):
      target.assign(tf.convert_to_tensor(value))
    return self._eval_model

  def evaluate(self, splits) -> dict:
    """{split: metrics} on the labeled splits, with the EMA weights."""
    model = self.ema_model()
    results = {}
    for split in splits:
      files = input_pipeline.list_files(self.config.data.label_data_dir, [split])
      results[split] = evaluation.evaluate_files(
          model, self.strategy, files,
          image_size=self._eval_model_config().image_size,
          small_image=self.config.model.small_image,
          global_batch=self.config.train.eval_batch_size)
      results[split]['global_step'] = self.step
    return results
