"""What each `--mode` of main.py does, given a config and a strategy (no flags)."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

from absl import logging
import tensorflow as tf

from data import writers
from noisy_student import checkpoints
from noisy_student import config as config_lib
from noisy_student import distribute
from noisy_student import evaluation
from noisy_student import export as export_lib
from noisy_student import input_pipeline
from noisy_student import predict as predict_lib
from noisy_student import prediction_files
from noisy_student import trainer as trainer_lib

EVAL_RESULTS_FILE = 'eval_results.json'


def write_model_config(config: config_lib.ExperimentConfig) -> None:
  writers.write_text(
      os.path.join(config.model_dir, checkpoints.MODEL_CONFIG_FILE),
      config.model.to_json() + '\n')


def _cleanup_worker_dir(path: str, model_dir: str) -> None:
  if path != model_dir and tf.io.gfile.exists(path):
    tf.io.gfile.rmtree(path)


def train(config: config_lib.ExperimentConfig, strategy: tf.distribute.Strategy,
          *, evaluate_every: Optional[int] = None) -> dict:
  """Trains to train_last_step_num; with `evaluate_every`, evaluates on the way.

  Returns {'global_step', 'history' (loop stats), 'eval' (last results)}.
  """
  chief = distribute.is_chief(strategy)
  ckpt_dir = distribute.checkpoint_dir(config.model_dir, strategy)
  if chief:
    write_model_config(config)
  trainer = trainer_lib.Trainer(config, strategy, is_chief=chief,
                                checkpoint_dir=ckpt_dir)
  target = config.train.train_last_step_num
  history, results = [], {}
  while trainer.step < target:
    until = target
    if evaluate_every:
      until = min(target, (trainer.step // evaluate_every + 1) * evaluate_every)
    history.extend(trainer.train(until))
    if evaluate_every:
      results = trainer.evaluate(config.eval_splits)
      if chief:
        _append_eval_results(config.model_dir, results)
  if trainer.step >= target and not history:
    logging.info('Already trained to step %d in %s', trainer.step,
                 config.model_dir)
  _cleanup_worker_dir(ckpt_dir, config.model_dir)
  return {'global_step': trainer.step,
          'history': [dataclasses.asdict(h) for h in history],
          'eval': results}


def _append_eval_results(model_dir: str, results: dict) -> None:
  path = os.path.join(model_dir, EVAL_RESULTS_FILE)
  history = []
  if tf.io.gfile.exists(path):
    with tf.io.gfile.GFile(path) as f:
      history = json.load(f).get('history', [])
  history.append(results)
  writers.write_json(path, {'latest': results, 'history': history})


def evaluate(config: config_lib.ExperimentConfig,
             strategy: tf.distribute.Strategy,
             checkpoint_path: Optional[str] = None) -> dict:
  """EMA evaluation of the latest (or given) checkpoint on the eval splits."""
  path = checkpoint_path or config.model_dir
  with strategy.scope():
    model = checkpoints.load_model(
        path, dataclasses.replace(config.model, sync_batch_norm=False),
        use_ema=True, name='eval', image_size=config.model.image_size)
  prefix = checkpoints.resolve_checkpoint(path)
  step = _checkpoint_step(prefix)
  results = {}
  for split in config.eval_splits:
    files = input_pipeline.list_files(config.data.label_data_dir, [split])
    results[split] = evaluation.evaluate_files(
        model, strategy, files, image_size=config.model.image_size,
        small_image=config.model.small_image,
        global_batch=config.train.eval_batch_size)
    results[split]['global_step'] = step
    results[split]['checkpoint'] = prefix
  if distribute.is_chief(strategy) and tf.io.gfile.isdir(config.model_dir):
    _append_eval_results(config.model_dir, results)
  for split, metrics in results.items():
    print(f'{split}: top-1 {metrics["top_1_accuracy"]:.4f}  top-5 '
          f'{metrics["top_5_accuracy"]:.4f}  ({metrics["num_images"]} images, '
          f'step {step})')
  return results


def _checkpoint_step(prefix: str) -> Optional[int]:
  try:
    return int(prefix.rsplit('-', 1)[1])
  except (IndexError, ValueError):
    return None


def export(config: config_lib.ExperimentConfig, export_dir: str,
           keras_path: Optional[str] = None,
           checkpoint_path: Optional[str] = None) -> dict:
  outputs = export_lib.export(config.model_dir, export_dir,
                              keras_path=keras_path,
                              checkpoint_path=checkpoint_path)
  print(json.dumps(outputs, indent=2))
  return outputs


@dataclasses.dataclass(frozen=True)
class PredictConfig:
  """Flags of the original predict_label.py."""
  predict_ckpt_path: str
  data_dir: str
  output_dir: str
  info_dir: str
  file_prefix: str = 'train'
  num_shards: int = 128
  shard_ids: tuple[int, ...] = (0,)
  total_replicas: int = 1
  worker_id: int = 0
  reassign_label: bool = False
  batch_size: int = 64
  num_samples: int = 0


def predict(config: config_lib.ExperimentConfig, pcfg: PredictConfig,
            strategy: tf.distribute.Strategy) -> dict:
  """Predicts (or re-labels) every requested shard with the EMA teacher."""
  with strategy.scope():
    model = checkpoints.load_model(
        pcfg.predict_ckpt_path,
        dataclasses.replace(config.model, sync_batch_norm=False),
        use_ema=True, name='predict', image_size=config.model.image_size)
  counts = {}
  for shard_id in pcfg.shard_ids:
    common = dict(data_dir=pcfg.data_dir, file_prefix=pcfg.file_prefix,
                  shard_id=shard_id, num_shards=pcfg.num_shards,
                  output_dir=pcfg.output_dir,
                  image_size=config.model.image_size,
                  small_image=config.model.small_image,
                  batch_size=pcfg.batch_size)
    if pcfg.reassign_label:
      source = prediction_files.reassign_input_path(
          pcfg.data_dir, pcfg.file_prefix, pcfg.worker_id, shard_id,
          pcfg.num_shards)
      if not tf.io.gfile.exists(source) and len(pcfg.shard_ids) > 1:
        logging.warning('%s does not exist (no image of this shard was kept '
                        'by the filter); skipping it', source)
        continue
      counts[shard_id] = predict_lib.reassign_shard(
          model, strategy, worker_id=pcfg.worker_id,
          num_samples=pcfg.num_samples, **common)
    else:
      counts[shard_id] = predict_lib.predict_shard(
          model, strategy, info_dir=pcfg.info_dir,
          total_replicas=pcfg.total_replicas, worker_id=pcfg.worker_id,
          **common)
  if pcfg.reassign_label and not counts:
    raise FileNotFoundError(
        f'{pcfg.data_dir}: none of the filtered shards '
        f'{pcfg.file_prefix}-{pcfg.worker_id}-*-of-{pcfg.num_shards:05d} exists')
  return counts
