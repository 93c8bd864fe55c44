"""What each `--mode` of main.py does, given configs and a strategy (no flags).

* `train`: checks and writes `model_config.json`, trains (evaluating every
  `evaluate_every` steps if asked) and returns the loop history;
* `evaluate`: EMA weights of the latest (or a given) checkpoint on the eval
  splits, appended to `eval_results.json`;
* `predict`: the teacher's soft labels for unlabeled shards (or re-labels
  filtered shards), resumable shard by shard;
* exporting lives in `noisy_student.models.export`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import MISSING
import json
import os
import re
from typing import Optional

from absl import logging
import tensorflow as tf

from data import dataset_info
from data import layout
from data import writers
from noisy_student.core import config as config_lib
from noisy_student.core.config import doc
from noisy_student.runtime import dir_lock
from noisy_student.runtime import errors
from noisy_student.models import checkpoints
from noisy_student.models import loading
from noisy_student.pseudo import predict as predict_lib
from noisy_student.training import controller as controller_lib
from noisy_student.training import distribute
from noisy_student.training import evaluation
from noisy_student.training import input_pipeline
from noisy_student.training import trainer as trainer_lib

def check_model_dir(model_dir: str, model: config_lib.ModelConfig) -> None:
  """Refuses to train into a model_dir whose saved architecture differs.

  Called before anything is written, so the existing `model_config.json`
  (and the checkpoints it describes) stay usable.

  Raises:
    ConfigError naming the file and every field that differs.
  """
  saved = checkpoints.read_model_config(model_dir)
  if saved is None or saved == model:
    return
  changed = [f'{f.name}: {getattr(saved, f.name)!r} -> {getattr(model, f.name)!r}'
             for f in dataclasses.fields(model)
             if f.compare and getattr(saved, f.name) != getattr(model, f.name)]
  raise errors.ConfigError(
      f'{checkpoints.model_config_path(model_dir)}: this model_dir holds a '
      f'different model ({"; ".join(changed)}); pass the same model flags to '
      f'resume it, or a new {errors.field_name("model_dir")} to start fresh')


def check_model_files(config: config_lib.ExperimentConfig) -> None:
  """Loads a `.keras` student or teacher once to check it, before any write.

  Raises:
    CheckpointError / ConfigError naming the file (not a .keras, ends in a
    softmax, other image size or classes than the job's).
  """
  loading.check_job_models(config.model, config.teacher)


def check_evaluate_every(evaluate_every) -> None:
  """None or a whole number of steps >= 1 (0 or less would evaluate step 0
  forever).

  Raises:
    ConfigError naming the argument (the flag in binaries).
  """
  if evaluate_every is None:
    return
  if isinstance(evaluate_every, bool) or not isinstance(evaluate_every, int):
    raise errors.ConfigError(
        f'{errors.field_name("evaluate_every")}={evaluate_every!r}: expected '
        'a whole number of steps or None')
  if evaluate_every < 1:
    raise errors.ConfigError(
        f'{errors.field_name("evaluate_every")}={evaluate_every}: must be >= 1 '
        '(None: evaluate only at the end)')


def remove_interrupted_saves(model_dir: str) -> list[str]:
  """Removes `ckpt-N_temp/` folders a save left when it was interrupted (a
  full disk, a kill); only the holder of the model_dir's lock calls this.
  Returns the removed paths."""
  removed = []
  for path in tf.io.gfile.glob(os.path.join(model_dir, 'ckpt-*_temp')):
    if re.fullmatch(r'ckpt-\d+_temp', os.path.basename(path)):
      tf.io.gfile.rmtree(path)
      logging.warning('Removed %s, left by an interrupted checkpoint save', path)
      removed.append(path)
  return removed


def _cleanup_worker_dir(path: str, model_dir: str) -> None:
  if path != model_dir and tf.io.gfile.exists(path):
    tf.io.gfile.rmtree(path)


def train(config: config_lib.ExperimentConfig, strategy: tf.distribute.Strategy,
          *, evaluate_every: Optional[int] = None,
          flags_json: Optional[dict] = None) -> dict:
  """Trains to the config's last_step; with `evaluate_every`, evaluates on the way.

  Checks the model_dir and a `.keras` model before writing anything, then
  holds the model_dir's lock (`runtime/dir_lock.py`: a second trainer on it
  is refused) and writes `model_config.json` (and `flags_json` as FLAGS.json).

  Returns {'global_step', 'history' (loop stats), 'eval' (last results)}.
  """
  check_evaluate_every(evaluate_every)
  chief = distribute.is_chief(strategy)
  check_model_dir(config.model_dir, config.model)
  check_model_files(config)
  input_pipeline.check_pseudo_labeled(config.data)
  lock = (dir_lock.exclusive(config.model_dir, 'trainer') if chief
          else contextlib.nullcontext())
  with lock:
    return _train_locked(config, strategy, chief, evaluate_every, flags_json)


def _train_locked(config: config_lib.ExperimentConfig,
                  strategy: tf.distribute.Strategy, chief: bool,
                  evaluate_every: Optional[int],
                  flags_json: Optional[dict]) -> dict:
  ckpt_dir = distribute.checkpoint_dir(config.model_dir, strategy)
  if chief:
    check_model_dir(config.model_dir, config.model)  # as it is now, locked
    remove_interrupted_saves(config.model_dir)
    checkpoints.write_model_config(config.model_dir, config.model)
    if flags_json is not None:
      writers.write_json(os.path.join(config.model_dir, layout.FLAGS_FILE),
                         flags_json)
  trainer = trainer_lib.Trainer(config, strategy, is_chief=chief,
                                checkpoint_dir=ckpt_dir)
  controller = controller_lib.Controller(trainer)
  history, results = controller.run(
      evaluate_every=evaluate_every, splits=config.eval_splits,
      on_evaluate=(lambda r: _append_eval_results(config.model_dir, r))
      if chief else None)
  if not history:
    logging.info('Already trained to step %d in %s', trainer.step,
                 config.model_dir)
  _cleanup_worker_dir(ckpt_dir, config.model_dir)
  return {'global_step': trainer.step,
          'history': [dataclasses.asdict(h) for h in history],
          'eval': results}


def _append_eval_results(model_dir: str, results: dict) -> None:
  path = os.path.join(model_dir, layout.EVAL_RESULTS_FILE)
  history = []
  if tf.io.gfile.exists(path):
    with tf.io.gfile.GFile(path) as f:
      history = json.load(f).get('history', [])
  history.append(results)
  writers.write_json(path, {'latest': results, 'history': history})


def evaluate(config: config_lib.ExperimentConfig,
             strategy: tf.distribute.Strategy,
             checkpoint_path: Optional[str] = None,
             image_size: Optional[int] = None,
             save_predictions: bool = False) -> dict:
  """EMA evaluation of the latest (or given) checkpoint on the eval splits.

  The model runs at `image_size`, else its inference size
  (`loading.inference_config`). With `save_predictions`, each split's
  per-image predictions are written to `layout.eval_predictions` in the
  model_dir (label, predicted class, its probability; record order), for
  paired tests between models evaluated on the same files.
  """
  path = checkpoint_path or config.model_dir
  model_config = loading.inference_config(path, config.model, image_size)
  with strategy.scope():
    model = loading.build(model_config, name='eval')
    prefix = loading.restore(model, path, use_ema=True)
  step = _checkpoint_step(prefix)
  results = {}
  for split in config.eval_splits:
    files = input_pipeline.list_files(config.data.label_data_dir, [split])
    results[split] = evaluation.evaluate_files(
        model, strategy, files, image_size=model_config.image_size,
        small_image=model_config.small_image,
        global_batch=config.train.eval_batch_size,
        per_image=save_predictions)
    per_image = results[split].pop('per_image', None)
    metrics = results[split]
    # Printed before anything is written: a read-only or full model_dir
    # still shows the accuracy, then the one line about what failed.
    print(f'{split}: top-1 {metrics["top_1_accuracy"]:.4f}  top-5 '
          f'{metrics["top_5_accuracy"]:.4f}  ({metrics["num_images"]} images, '
          f'step {step})', flush=True)
    if per_image is not None and distribute.is_chief(strategy):
      writers.write_npz(layout.eval_predictions(config.model_dir, split),
                        step=step if step is not None else -1,
                        files=[os.path.basename(f) for f in files],
                        **per_image)
    results[split]['global_step'] = step
    results[split]['checkpoint'] = prefix
  if distribute.is_chief(strategy) and tf.io.gfile.isdir(config.model_dir):
    _append_eval_results(config.model_dir, results)
  return results


def _checkpoint_step(prefix: str) -> Optional[int]:
  try:
    return int(prefix.rsplit('-', 1)[1])
  except (IndexError, ValueError):
    return None


@dataclasses.dataclass(frozen=True)
class PredictConfig:
  """What --mode=predict does (the original predict_label.py's flags).

  The fields with help texts are main's flags (`cli/config_flags.py`);
  `data_dir` is --label_data_dir, `image_size` --input_image_size.
  """
  predict_ckpt_path: str = doc(
      MISSING, 'Checkpoint for predict/export; default: latest in '
      '--model_dir.')
  data_dir: str
  output_dir: str = doc(MISSING, 'predict: folder of the prediction files.')
  info_dir: str = doc(MISSING, 'predict: folder of the per-shard info files; '
                      'default <output_dir>/info.')
  file_prefix: str = doc(
      'train', 'predict: prefix of the input shards; default: the folder\'s '
      'one unlabeled split (dataset_info.json), else train.')
  num_shards: int = doc(
      128, 'predict: shards of the unlabeled set; default: the folder\'s '
      'count (the original required it, default 128).')
  shard_ids: tuple[int, ...] = (0,)  # the --shard_id flag, parsed
  total_replicas: int = doc(
      1, 'predict: split each shard among this many workers.')
  worker_id: int = doc(0, 'predict: this worker, < total_replicas.')
  reassign_label: bool = doc(
      False, 'predict: re-label filtered shards <file_prefix>-<worker_id>-'
      '<shard>-of-<n> with this (newer) teacher.')
  predict_batch_size: int = doc(64, 'predict: images per batch.')
  num_samples_per_shard: int = doc(
      0, 'predict --reassign_label: save this many sample images.')
  image_size: Optional[int] = None

  def __post_init__(self):
    config_lib.check_ranges(self, {
        'num_shards': (1, None), 'total_replicas': (1, None),
        'predict_batch_size': (1, None), 'num_samples_per_shard': (0, None),
        'image_size': (1, None)})
    if not 0 <= self.worker_id < self.total_replicas:
      raise errors.ConfigError(
          f'{errors.field_name("worker_id")}={self.worker_id} must be in [0, '
          f'{errors.field_name("total_replicas")}={self.total_replicas})')


def predict(fallback: Optional[config_lib.ModelConfig], pcfg: PredictConfig,
            strategy: tf.distribute.Strategy) -> dict:
  """Predicts (or re-labels) every requested shard with the EMA teacher.

  `fallback` is the teacher's architecture when `pcfg.predict_ckpt_path` has
  no model_config.json (original TF1 checkpoints).
  """
  if not pcfg.reassign_label:  # shards that contradict dataset_info.json
    dataset_info.check_shard_files([
        layout.shard_path(pcfg.data_dir, pcfg.file_prefix, shard_id,
                          pcfg.num_shards) for shard_id in pcfg.shard_ids])
  model, config = loading.load_for_inference(
      pcfg.predict_ckpt_path, fallback, strategy, image_size=pcfg.image_size,
      name='predict')
  teacher_identity = loading.weights_identity(pcfg.predict_ckpt_path)
  counts = {}
  for shard_id in pcfg.shard_ids:
    common = dict(data_dir=pcfg.data_dir, file_prefix=pcfg.file_prefix,
                  shard_id=shard_id, num_shards=pcfg.num_shards,
                  output_dir=pcfg.output_dir,
                  image_size=config.image_size,
                  small_image=config.small_image,
                  batch_size=pcfg.predict_batch_size)
    if pcfg.reassign_label:
      source = layout.shard_path(pcfg.data_dir, pcfg.file_prefix, shard_id,
                                 pcfg.num_shards, task=pcfg.worker_id)
      if not tf.io.gfile.exists(source) and len(pcfg.shard_ids) > 1:
        logging.warning('%s does not exist (no image of this shard was kept '
                        'by the filter); skipping it', source)
        continue
      counts[shard_id] = predict_lib.reassign_shard(
          model, strategy, worker_id=pcfg.worker_id,
          num_samples=pcfg.num_samples_per_shard, **common)
    else:
      counts[shard_id] = predict_lib.predict_shard(
          model, strategy, info_dir=pcfg.info_dir,
          total_replicas=pcfg.total_replicas, worker_id=pcfg.worker_id,
          teacher_identity=teacher_identity, **common)
  if pcfg.reassign_label and not counts:
    raise errors.InputError(
        f'{pcfg.data_dir}: none of the filtered shards of {errors.field_name("shard_id")} exists '
        f'(e.g. {layout.shard_name(pcfg.file_prefix, pcfg.shard_ids[0], pcfg.num_shards, pcfg.worker_id)})')
  return counts
