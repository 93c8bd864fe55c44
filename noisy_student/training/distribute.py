"""Creating the tf.distribute strategy and answering "am I the chief?".

`--strategy`:
* default:      one device (the first GPU if any, else the CPU);
* mirrored:     all local GPUs (or `cpu_devices` logical CPUs, for testing
                multi-replica code on a laptop);
* multi_worker: MultiWorkerMirroredStrategy over the hosts in TF_CONFIG;
* tpu:          TPUStrategy on `--tpu` (also selected by `--use_tpu`).
"""

from __future__ import annotations

import glob
import json
import os
from typing import Optional

from absl import logging
import tensorflow as tf

from noisy_student.runtime import errors


def split_cpu(num_devices: int) -> list[str]:
  """Splits the host CPU into `num_devices` logical devices (before TF starts)."""
  cpus = tf.config.list_physical_devices('CPU')
  current = tf.config.get_logical_device_configuration(cpus[0])
  if not current or len(current) != num_devices:
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * num_devices)
  return [d.name for d in tf.config.list_logical_devices('CPU')]


def tpu_present(tpu: Optional[str] = None) -> bool:
  """Whether a TPU may be reachable: a --tpu name, TPU_NAME, or a TPU VM's
  device files. (Cheap: asks no network; `make_strategy('tpu')` connects.)"""
  return bool(tpu or os.environ.get('TPU_NAME') or glob.glob('/dev/accel*')
              or glob.glob('/dev/vfio/[0-9]*'))


def make_strategy(name: str, *, tpu: Optional[str] = None,
                  tpu_zone: Optional[str] = None,
                  gcp_project: Optional[str] = None,
                  cpu_devices: int = 0) -> tf.distribute.Strategy:
  """The strategy for `name` (one of config.STRATEGIES)."""
  if name == 'default':
    return tf.distribute.get_strategy()
  if name == 'mirrored':
    if cpu_devices > 1:
      return tf.distribute.MirroredStrategy(split_cpu(cpu_devices))
    return tf.distribute.MirroredStrategy()
  if name == 'multi_worker':
    if 'TF_CONFIG' not in os.environ:
      raise errors.ConfigError(
          f'{errors.field_name("strategy")}=multi_worker needs the '
          'TF_CONFIG environment variable describing the cluster (see README)')
    return tf.distribute.MultiWorkerMirroredStrategy()
  if name == 'tpu':
    try:
      resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
          tpu=tpu, zone=tpu_zone, project=gcp_project)
      tf.config.experimental_connect_to_cluster(resolver)
      tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, tf.errors.OpError, RuntimeError) as err:
      first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ''
      where = f' at {errors.field_name("tpu")}={tpu}' if tpu else ''
      strategy_field = errors.field_name('strategy')
      raise errors.ConfigError(
          f'no TPU reachable{where} ({first}); pass {strategy_field}=default '
          f'to train on CPU/GPU (main: --use_tpu=false; {strategy_field}='
          'mirrored for several GPUs)') from None
    return tf.distribute.TPUStrategy(resolver)
  raise errors.ConfigError(f'unknown {errors.field_name("strategy")}={name!r}')


def task_info() -> tuple[str, int]:
  """(task type, task index) from TF_CONFIG, or ('chief', 0) without it."""
  tf_config = json.loads(os.environ.get('TF_CONFIG', '{}') or '{}')
  task = tf_config.get('task', {})
  return task.get('type', 'chief'), int(task.get('index', 0))


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """The chief writes summaries, configs and the real checkpoints."""
  if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return True
  task_type, task_index = task_info()
  tf_config = json.loads(os.environ['TF_CONFIG'])
  has_chief = 'chief' in tf_config.get('cluster', {})
  return task_type == 'chief' or (not has_chief and task_type == 'worker'
                                  and task_index == 0)


def checkpoint_dir(model_dir: str, strategy: tf.distribute.Strategy) -> str:
  """model_dir for the chief; a per-worker temporary folder otherwise.

  Every MultiWorkerMirroredStrategy worker must take part in saving; only the
  chief's copy is kept (the caller removes the others afterwards).
  """
  if is_chief(strategy):
    return model_dir
  task_type, task_index = task_info()
  path = os.path.join(model_dir, f'.workertemp_{task_type}_{task_index}')
  logging.info('Non-chief worker saving to the temporary folder %s', path)
  return path
