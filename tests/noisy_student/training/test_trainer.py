"""The training loop on real digits TFRecords with a tiny real EfficientNet."""

import dataclasses
import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from data import records
from data import writers
from noisy_student.runtime import errors
from noisy_student.drivers import modes
from noisy_student.models import backbones
from noisy_student.models import checkpoints
from noisy_student.models import loading
from noisy_student.training import input_pipeline
from noisy_student.training import losses
from noisy_student.core import schedules
from noisy_student.training import controller as controller_lib
from noisy_student.training import event_files
from noisy_student.training import trainer as trainer_lib
from tests import helpers


def _default():
  return tf.distribute.get_strategy()


def test_train_checkpoint_resume_and_evaluate(digits_dir, tmp_path, capsys):
  cfg = helpers.experiment(str(tmp_path / 'run'), digits_dir, steps=20)
  checkpoints.write_model_config(cfg.model_dir, cfg.model)
  trainer = trainer_lib.Trainer(cfg, _default())
  history = controller_lib.Controller(trainer).train()
  assert [h.step for h in history] == [10, 20]
  assert os.path.basename(trainer.manager.latest_checkpoint) == 'ckpt-20'
  for name in trainer_lib.METRIC_NAMES[:3]:
    assert np.isfinite(history[-1].metrics[name])
  assert history[-1].metrics['train/lr'] == pytest.approx(
      schedules.from_train_config(cfg.train).numpy(19))  # step 20 used lr(19)
  shadows = [s.numpy() for s in trainer.ema.shadows]

  # A killed run may have logged steps past its last checkpoint: the
  # resumed controller drops them before it logs them again.
  killed = tf.summary.create_file_writer(cfg.model_dir)
  with killed.as_default():
    tf.summary.scalar('train/loss', 9.0, step=25)
  killed.close()
  resumed = trainer_lib.Trainer(cfg, _default())
  assert resumed.step == 20
  lines = []
  controller_lib.Controller(resumed, emit=lines.append)
  assert lines == ['resuming at step 20: removed 1 TensorBoard events of '
                   'later steps logged before the restart']
  assert max(tf.compat.v1.Event.FromString(r.numpy()).step
             for p in event_files.event_files(cfg.model_dir)
             for r in tf.data.TFRecordDataset(p)) == 20
  for a, b in zip(shadows, resumed.ema.shadows):
    np.testing.assert_array_equal(a, b.numpy())
  assert int(resumed.optimizer.iterations.numpy()) == 20
  assert controller_lib.Controller(resumed).train() == []  # already at the last step

  results = modes.evaluate(cfg, _default())
  assert results['dev']['num_images'] == 200
  assert results['test']['num_images'] == 400
  assert results['test']['global_step'] == 20
  # `evaluate` used the EMA weights: the same as copying the shadows.
  ema_eval = trainer.evaluate(['test'])['test']
  assert ema_eval['top_1_accuracy'] == pytest.approx(
      results['test']['top_1_accuracy'])

  # A model_dir where the results cannot be written: the accuracy is printed
  # first, then the write fails.
  results_file = os.path.join(cfg.model_dir, 'eval_results.json')
  os.remove(results_file)
  os.mkdir(results_file)
  capsys.readouterr()
  with pytest.raises(Exception):  # pylint: disable=broad-exception-raised
    modes.evaluate(cfg, _default())
  printed = capsys.readouterr().out
  accuracy = results['test']['top_1_accuracy']
  assert f'test: top-1 {accuracy:.4f}' in printed, printed


def _pseudo_labeled_shards(digits_dir, out_dir, num_classes=10, seed=0):
  """Pseudo-labeled copies of the unlabeled digits with random soft labels."""
  rng = np.random.default_rng(seed)
  files = input_pipeline.list_files(os.path.join(digits_dir, 'unlabeled'),
                                    ['extra'])
  recs = []
  for path in files:
    for raw in tf.data.TFRecordDataset(path):
      image = records.read_example(raw.numpy())[records.IMAGE_KEY]
      probs = rng.dirichlet(np.ones(num_classes) * 0.3)
      recs.append(records.serialize_pseudo_labeled(image, probs))
  writers.write_sharded(recs, out_dir, 'train', 2)
  return out_dir


@pytest.mark.parametrize('temperature', [-1.0, 0.5])
def test_one_step_loss_equals_hand_assembled_loss(digits_dir, tmp_path,
                                                  temperature):
  unl_dir = _pseudo_labeled_shards(digits_dir, str(tmp_path / 'pseudo'))
  cfg = helpers.experiment(
      str(tmp_path / 'run'), digits_dir, steps=1, batch=8,
      model=helpers.tiny_model(dropout_rate=0.0, stochastic_depth_rate=0.0),
      data_changes=dict(unlabel_data_dir=unl_dir, pseudo_labels_stored=True),
      train_changes=dict(iterations_per_loop=1, unlabel_ratio=1.5,
                         teacher_softmax_temp=temperature,
                         label_smoothing=0.1, weight_decay=1e-3))
  trainer = trainer_lib.Trainer(cfg, _default())
  lab_b, unl_b = cfg.train.per_replica_batches(1)
  assert (lab_b, unl_b) == (8, 12)
  batch = next(iter(input_pipeline.make_train_dataset(
      cfg.data, labeled_batch=lab_b, unlabeled_batch=unl_b)))
  images = tf.concat([batch['image'], batch['unl_image']], 0)
  logits = trainer.model(images, training=True).numpy().astype(np.float64)

  def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))

  labels = batch['label'].numpy()
  lab_targets = np.full((8, 10), 0.01)
  lab_targets[np.arange(8), labels] += 0.9
  lab_loss = -(lab_targets * log_softmax(logits[:8])).sum(-1).mean()
  probs = batch['unl_probs'].numpy().astype(np.float64)
  if temperature == -1:
    unl_targets = np.full((12, 10), 0.01)
    unl_targets[np.arange(12), batch['unl_label'].numpy()] += 0.9
  else:
    sharp = probs ** (1 / temperature)
    unl_targets = sharp / sharp.sum(-1, keepdims=True)
  unl_loss = -(unl_targets * log_softmax(logits[8:])).sum(-1).mean()
  decay = sum(0.5 * float(np.sum(np.square(w.numpy())))
              for w in trainer_lib.decayed_weights(trainer.model))
  expected = lab_loss + 1.5 * unl_loss + 1e-3 * decay

  stats = controller_lib.Controller(trainer).train()[-1].metrics
  assert stats['lab/loss'] == pytest.approx(lab_loss, rel=1e-4)
  assert stats['unl/loss'] == pytest.approx(unl_loss, rel=1e-4)
  assert stats['train/loss'] == pytest.approx(expected, rel=1e-4)


def test_weight_decay_skips_batch_norm(digits_dir, tmp_path):
  cfg = helpers.experiment(str(tmp_path / 'run'), digits_dir)
  model = backbones.build_model(cfg.model)
  decayed = {id(w) for w in trainer_lib.decayed_weights(model)}
  paths = [w.path for w in model.trainable_weights if id(w) not in decayed]
  assert paths and all(p.endswith(('gamma', 'beta')) for p in paths)
  assert len(decayed) == len(model.trainable_weights) - len(paths)


def test_nonfinite_loss_stops_and_keeps_last_checkpoint(digits_dir, tmp_path):
  cfg = helpers.experiment(str(tmp_path / 'run'), digits_dir, steps=10)
  controller_lib.Controller(trainer_lib.Trainer(cfg, _default())).train()
  exploding = dataclasses.replace(cfg, train=dataclasses.replace(
      cfg.train, train_steps=30, train_last_step_num=30,
      base_learning_rate=1e30))
  trainer = trainer_lib.Trainer(exploding, _default())
  assert trainer.step == 10
  with pytest.raises(errors.NonFiniteLossError, match='ckpt-10 is intact'):
    controller_lib.Controller(trainer).train()
  assert os.path.basename(tf.train.latest_checkpoint(cfg.model_dir)) == 'ckpt-10'
  reader = tf.train.load_checkpoint(os.path.join(cfg.model_dir, 'ckpt-10'))
  for name, _ in tf.train.list_variables(os.path.join(cfg.model_dir, 'ckpt-10')):
    if name.startswith('model/'):
      assert np.all(np.isfinite(reader.get_tensor(name))), name


@pytest.mark.slow
def test_predict_writes_shards_and_skips_finished_ones(digits_dir, tmp_path):
  cfg = helpers.experiment(str(tmp_path / 'teacher'), digits_dir, steps=10)
  checkpoints.write_model_config(cfg.model_dir, cfg.model)
  controller_lib.Controller(trainer_lib.Trainer(cfg, _default())).train()
  pcfg = modes.PredictConfig(
      predict_ckpt_path=cfg.model_dir,
      data_dir=os.path.join(digits_dir, 'unlabeled'),
      output_dir=str(tmp_path / 'pred'), info_dir=str(tmp_path / 'info'),
      file_prefix='extra', num_shards=8, shard_ids=(0, 1), predict_batch_size=32)
  counts = modes.predict(cfg.model, pcfg, _default())
  for shard, count in counts.items():
    unl = os.path.join(digits_dir, 'unlabeled', f'extra-{shard:05d}-of-00008')
    assert count == records.count_records(unl)
    pred = os.path.join(pcfg.output_dir,
                        f'train-info-{shard:05d}-of-00008-00000')
    rows = [records.read_example(r.numpy()) for r in tf.data.TFRecordDataset(pred)]
    assert len(rows) == count
    probs = np.stack([r[records.PROBABILITIES_KEY] for r in rows])
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    assert [int(r[records.CLASSES_KEY][0]) for r in rows] == list(probs.argmax(-1))
  pred0 = os.path.join(pcfg.output_dir, 'train-info-00000-of-00008-00000')
  mtime = os.path.getmtime(pred0)
  modes.predict(cfg.model, pcfg, _default())
  assert os.path.getmtime(pred0) == mtime  # finished shard skipped
  with open(pred0, 'r+b') as f:  # a half-written shard is not "done"
    f.truncate(os.path.getsize(pred0) // 2)
  modes.predict(cfg.model, pcfg, _default())
  assert records.count_records(pred0) == counts[0]

  # The EMA weights predicted: same probabilities as the EMA classifier.
  model = loading.load_model(cfg.model_dir, use_ema=True)
  first = next(iter(input_pipeline.make_eval_dataset(
      [os.path.join(digits_dir, 'unlabeled', 'extra-00000-of-00008')],
      image_size=32, small_image=True, global_batch=4, labeled=False)))
  expected = tf.nn.softmax(model(first['image'], training=False)).numpy()
  got = [records.read_example(r.numpy())[records.PROBABILITIES_KEY]
         for r in tf.data.TFRecordDataset(pred0).take(4)]
  np.testing.assert_allclose(np.stack(got), expected, rtol=1e-4, atol=1e-6)
  # Another teacher into the same folders: every shard is predicted again
  # (its info file records the weights it was made from), not kept.
  with open(os.path.join(pcfg.info_dir, 'info-00000-of-00008-00000.txt')) as f:
    first_origin = json.load(f)['made_from']
  assert first_origin['teacher'].startswith('sha256:')
  other = helpers.experiment(str(tmp_path / 'other'), digits_dir, steps=10,
                             train_changes=dict(seed=5))
  checkpoints.write_model_config(other.model_dir, other.model)
  keras.utils.set_random_seed(5)
  controller_lib.Controller(trainer_lib.Trainer(other, _default())).train()
  mtime = os.path.getmtime(pred0)
  modes.predict(other.model, dataclasses.replace(
      pcfg, predict_ckpt_path=other.model_dir), _default())
  assert os.path.getmtime(pred0) != mtime
  with open(os.path.join(pcfg.info_dir, 'info-00000-of-00008-00000.txt')) as f:
    assert json.load(f)['made_from']['teacher'] != first_origin['teacher']

  # An input shard replaced by another of the same size (its records in
  # reverse order): recognised by its content, predicted again.
  unlabeled = tmp_path / 'unlabeled'
  unlabeled.mkdir()
  shard0 = unlabeled / 'extra-00000-of-00008'
  shutil.copy(os.path.join(digits_dir, 'unlabeled', 'extra-00000-of-00008'),
              shard0)
  copied = dataclasses.replace(pcfg, data_dir=str(unlabeled), shard_ids=(0,),
                               output_dir=str(tmp_path / 'pred2'),
                               info_dir=str(tmp_path / 'info2'))
  modes.predict(cfg.model, copied, _default())
  info0 = os.path.join(copied.info_dir, 'info-00000-of-00008-00000.txt')
  with open(info0) as f:
    before = json.load(f)['made_from']
  pred = os.path.join(copied.output_dir, 'train-info-00000-of-00008-00000')

  def predicted():
    return np.stack([records.read_example(r.numpy())[records.PROBABILITIES_KEY]
                     for r in tf.data.TFRecordDataset(pred)])

  first_order = predicted()
  raw = [r.numpy() for r in tf.data.TFRecordDataset(str(shard0))]
  size = os.path.getsize(shard0)
  writers.write_records(str(shard0), raw[::-1])
  assert os.path.getsize(shard0) == size
  modes.predict(cfg.model, copied, _default())
  with open(info0) as f:
    after = json.load(f)['made_from']
  assert after['input_bytes'] == before['input_bytes']
  assert after['input_sha256'] != before['input_sha256']
  # The rows follow the new record order.
  np.testing.assert_allclose(predicted(), first_order[::-1], rtol=1e-4,
                             atol=1e-6)


def test_teacher_on_the_fly_uses_unaugmented_view(digits_dir, tmp_path):
  teacher_cfg = helpers.experiment(str(tmp_path / 'teacher'), digits_dir,
                                   steps=10)
  checkpoints.write_model_config(teacher_cfg.model_dir, teacher_cfg.model)
  controller_lib.Controller(trainer_lib.Trainer(teacher_cfg, _default())).train()
  from noisy_student.core import config as config_lib
  cfg = helpers.experiment(
      str(tmp_path / 'student'), digits_dir, steps=10,
      data_changes=dict(unlabel_data_dir=os.path.join(digits_dir, 'unlabeled'),
                        teacher_image_size=32, augment_name='v1',
                        randaug_magnitude=27),
      train_changes=dict(unlabel_ratio=2, teacher_softmax_temp=1.0),
      teacher=config_lib.TeacherConfig(model=teacher_cfg.model,
                                       path=teacher_cfg.model_dir))
  trainer = trainer_lib.Trainer(cfg, _default())
  batch = next(iter(input_pipeline.make_train_dataset(
      cfg.data, labeled_batch=16, unlabeled_batch=32)))
  assert batch['unl_teacher_image'].shape == (32, 32, 32, 3)
  # The teacher view is the plain decoded image; the student's is noised.
  assert not np.allclose(batch['unl_teacher_image'], batch['unl_image'])
  history = controller_lib.Controller(trainer).train()
  assert 0.0 < history[-1].metrics['unl/target_prob'] <= 1.0
  teacher_logits = trainer.teacher(batch['unl_teacher_image'], training=False)
  targets = losses.teacher_targets_from_logits(teacher_logits, 10, 1.0, 0.1)
  np.testing.assert_allclose(targets.numpy().sum(-1), 1.0, rtol=1e-5)


def test_without_ema_trains_evaluates_and_loads(digits_dir, tmp_path):
  cfg = helpers.experiment(str(tmp_path / 'run'), digits_dir, steps=10,
                           train_changes=dict(moving_average_decay=0.0))
  checkpoints.write_model_config(cfg.model_dir, cfg.model)
  trainer = trainer_lib.Trainer(cfg, _default())
  assert trainer.ema is None
  controller_lib.Controller(trainer).train()
  results = modes.evaluate(cfg, _default())
  assert results['test']['num_images'] == 400
  model = loading.load_model(cfg.model_dir)  # use_ema: falls back to raw
  for loaded, trained in zip(model.weights, trainer.model.weights):
    np.testing.assert_array_equal(loaded.numpy(), trained.numpy())


def test_wrong_architecture_error_names_checkpoint(digits_dir, tmp_path):
  cfg = helpers.experiment(str(tmp_path / 'run'), digits_dir, steps=10)
  controller_lib.Controller(trainer_lib.Trainer(cfg, _default())).train()
  wrong = helpers.tiny_model(width_coefficient=0.2)
  with pytest.raises(errors.CheckpointError, match='ckpt-10: does not fit'):
    loading.load_model(cfg.model_dir, wrong)


class _FakeClock:
  """A clock that advances `seconds_per_call` each time it is read."""

  def __init__(self, seconds_per_call: float):
    self.now, self.step = 0.0, seconds_per_call

  def __call__(self) -> float:
    self.now += self.step
    return self.now


@pytest.mark.parametrize('seconds_per_call, expected', [
    (0.001, ['4/12', '8/12', '12/12']),       # fast: every log_every_steps
    # slow (25 s a step after the first call): a line every step, ~30 s
    (100.0, ['4/12', '5/12', '6/12', '7/12', '8/12', '9/12', '10/12',
             '11/12', '12/12']),
])
def test_progress_lines_come_every_log_every_steps_or_30_seconds(
    digits_dir, tmp_path, capsys, seconds_per_call, expected):
  cfg = helpers.experiment(
      str(tmp_path / 'run'), digits_dir, steps=12,
      train_changes=dict(iterations_per_loop=12, save_checkpoints_steps=12,
                         log_every_steps=4))
  controller_lib.Controller(trainer_lib.Trainer(cfg, _default()),
                            clock=_FakeClock(seconds_per_call)).train()
  lines = [l for l in capsys.readouterr().err.splitlines()
           if l.startswith('step ')]
  # Outside a binary (absl flags not parsed) the lines go to stderr: progress
  # lines inside the 12-step loop, then the loop's summary. The clock is
  # injected: the cadence never depends on this machine's load.
  assert [l.split()[1] for l in lines] == expected
  assert 'lab/acc' in lines[-1] and 'ETA' in lines[0]


def _trainable_after(steps: int, digits_dir: str, model_dir: str) -> list:
  cfg = helpers.experiment(model_dir, digits_dir, steps=steps, batch=8,
                           train_changes=dict(iterations_per_loop=1,
                                              moving_average_decay=0.0))
  trainer = trainer_lib.Trainer(cfg, _default())
  before = [w.numpy().copy() for w in trainer.model.trainable_weights]
  controller_lib.Controller(trainer).train()
  return before, [w.numpy() for w in trainer.model.trainable_weights]


def test_step_k_uses_the_original_rate_of_global_step_k_minus_1(digits_dir,
                                                                 tmp_path):
  # The original's graph read the global step before apply_gradients
  # incremented it: update k ran at lr(k - 1), so the first update runs at
  # lr(0) = 0 (warm-up) and changes no weight; the second runs at lr(1) > 0.
  before, after_one = _trainable_after(1, digits_dir, str(tmp_path / 'one'))
  for initial, trained in zip(before, after_one):
    np.testing.assert_array_equal(initial, trained)
  before, after_two = _trainable_after(2, digits_dir, str(tmp_path / 'two'))
  assert any(not np.array_equal(a, b) for a, b in zip(before, after_two))

  # Per step, the rate the optimizer reads equals the original formula at
  # global_step - 1 (utils.build_learning_rate of the original).
  cfg = helpers.experiment(str(tmp_path / 'three'), digits_dir, steps=400,
                           batch=8)
  trainer = trainer_lib.Trainer(cfg, _default())
  per_epoch = cfg.train.num_train_images / 8
  initial_lr = cfg.train.base_learning_rate * 8 / 256
  warmup = int(5 * per_epoch)
  for k in (1, 2, warmup, warmup + 1, 400):
    original_step = k - 1
    expected = (initial_lr * original_step / warmup if original_step < warmup
                else initial_lr * 0.97 ** np.floor(original_step
                                                   / (2.4 * per_epoch)))
    trainer.global_step.assign(k)
    assert float(trainer.optimizer.learning_rate) == pytest.approx(
        expected, rel=1e-6), k
