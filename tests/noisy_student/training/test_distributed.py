"""Real tf.distribute runs: mirrored replicas, two worker processes, SIGKILL."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from noisy_student.models import loading
from tests import helpers


@pytest.mark.slow
def test_mirrored_two_cpus_matches_one_device(digits_dir, tmp_path):
  out = helpers.run([sys.executable, '-m',
                     'tests.noisy_student.training.mirrored_equivalence', digits_dir,
                     str(tmp_path)]).stdout
  line = [l for l in out.splitlines() if l.startswith('MAX_DIFF')][0]
  max_diff = float(line.split()[1])
  # Same global batch, sync BN, summed gradients: equal up to float32
  # reduction-order rounding (weights are O(1); 6 RMSProp steps).
  assert max_diff < 2e-5, line
  # Per-image evaluation: the same images in the same order under both
  # strategies, the same predictions (near-equal weights), and accuracy
  # equal to the fraction of correct per-image predictions.
  same_labels, agree, match = [l for l in out.splitlines()
                               if l.startswith('PER_IMAGE')][0].split()[1:]
  assert same_labels == '1' and match == '1'
  assert float(agree) >= 0.99


def _free_ports(n):
  sockets = [socket.socket() for _ in range(n)]
  for s in sockets:
    s.bind(('localhost', 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


@pytest.mark.slow
def test_multi_worker_two_processes_train_checkpoint_evaluate(digits_dir,
                                                              tmp_path):
  model_dir = str(tmp_path / 'mw')
  cluster = {'worker': [f'localhost:{p}' for p in _free_ports(2)]}
  procs = []
  for index in range(2):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=helpers.REPO_ROOT,
               TF_CONFIG=json.dumps({'cluster': cluster,
                                     'task': {'type': 'worker', 'index': index}}))
    cmd = helpers.main_flags(digits_dir, model_dir, '--strategy=multi_worker',
                             '--mode=train_and_eval', '--steps_per_eval=10',
                             steps=10)
    procs.append(subprocess.Popen(cmd, cwd=helpers.REPO_ROOT, env=env,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True))
  outputs = [p.communicate(timeout=600)[0] for p in procs]
  for p, out in zip(procs, outputs):
    assert p.returncode == 0, out[-5000:]
  assert 'with 2 replicas' in outputs[0]
  assert os.path.basename(tf.train.latest_checkpoint(model_dir)) == 'ckpt-10'
  with open(os.path.join(model_dir, 'eval_results.json')) as f:
    latest = json.load(f)['latest']
  assert latest['dev']['num_images'] == 200
  assert latest['test']['num_images'] == 400
  assert not [d for d in os.listdir(model_dir) if d.startswith('.workertemp')]


def _weights(prefix):
  reader = tf.train.load_checkpoint(prefix)
  return {name: reader.get_tensor(name)
          for name, _ in tf.train.list_variables(prefix)
          if name.startswith(('model/', 'ema/', 'optimizer/'))}


@pytest.mark.slow
def test_sigkill_and_restart_ends_with_uninterrupted_weights(digits_dir,
                                                             tmp_path):
  args = ('--mode=train', '--deterministic_input', '--augment_name=v1',
          '--randaug_mag=10')
  steps = 40
  whole = str(tmp_path / 'whole')
  helpers.run(helpers.main_flags(digits_dir, whole, *args, steps=steps))

  broken = str(tmp_path / 'broken')
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=helpers.REPO_ROOT)
  proc = subprocess.Popen(helpers.main_flags(digits_dir, broken, *args,
                                             steps=steps),
                          cwd=helpers.REPO_ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  killed_at = None
  while time.time() < deadline and proc.poll() is None:
    latest = tf.train.latest_checkpoint(broken)
    if latest and latest.endswith(('-10', '-15', '-20')):
      proc.send_signal(signal.SIGKILL)
      killed_at = latest
      break
    time.sleep(0.02)
  proc.wait(timeout=60)
  assert killed_at is not None, 'the run finished before it could be killed'
  kept = tf.train.latest_checkpoint(broken)
  assert int(kept.rsplit('-', 1)[1]) < steps  # it really was interrupted
  helpers.run(helpers.main_flags(digits_dir, broken, *args, steps=steps))

  final_whole = _weights(os.path.join(whole, f'ckpt-{steps}'))
  final_broken = _weights(os.path.join(broken, f'ckpt-{steps}'))
  assert final_whole.keys() == final_broken.keys() and final_whole
  for name, value in final_whole.items():
    np.testing.assert_allclose(final_broken[name], value, rtol=0, atol=1e-6,
                               err_msg=name)


@pytest.mark.slow
def test_exported_saved_model_in_fresh_process_and_cli(digits_dir, tmp_path):
  model_dir = str(tmp_path / 'model')
  helpers.run(helpers.main_flags(digits_dir, model_dir, '--mode=train',
                                 steps=10))
  export_dir = str(tmp_path / 'export')
  helpers.run(helpers.main_flags(digits_dir, model_dir, '--mode=export',
                                 f'--export_dir={export_dir}',
                                 f'--export_keras_path={tmp_path}/m.keras'))
  test_file = os.path.join(digits_dir, 'test-00000-of-00002')
  from noisy_student.training import input_pipeline
  batch = next(iter(input_pipeline.make_eval_dataset(
      [test_file], image_size=32, small_image=True, global_batch=16)))
  images = batch['image'].numpy()
  np.save(tmp_path / 'images.npy', images)
  model = loading.load_model(model_dir, use_ema=True)
  expected = tf.nn.softmax(model(images, training=False)).numpy()

  script = (
      'import sys, numpy as np, tensorflow as tf\n'
      'm = tf.saved_model.load(sys.argv[1])\n'
      'x = np.load(sys.argv[2])\n'
      'out = m.signatures["serving_default"](images=tf.constant(x))\n'
      'np.save(sys.argv[3], out["probabilities"].numpy())\n'
      'raw = [r.numpy() for r in tf.data.TFRecordDataset(sys.argv[4]).take(16)]\n'
      'ex = [tf.train.Example.FromString(r) for r in raw]\n'
      'b = [e.features.feature["image/encoded"].bytes_list.value[0] for e in ex]\n'
      'o2 = m.signatures["serving_bytes"](image_bytes=tf.constant(b))\n'
      'np.save(sys.argv[5], o2["probabilities"].numpy())\n')
  helpers.run([sys.executable, '-c', script, export_dir,
               str(tmp_path / 'images.npy'), str(tmp_path / 'fresh.npy'),
               test_file, str(tmp_path / 'bytes.npy')])
  np.testing.assert_allclose(np.load(tmp_path / 'fresh.npy'), expected,
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.load(tmp_path / 'bytes.npy'), expected,
                             rtol=1e-5, atol=1e-6)

  cli = os.path.join(os.path.dirname(sys.executable), 'saved_model_cli')
  outdir = tmp_path / 'cli'
  helpers.run([cli, 'run', '--dir', export_dir, '--tag_set', 'serve',
               '--signature_def', 'serving_default', '--inputs',
               f'images={tmp_path}/images.npy', '--outdir', str(outdir)])
  np.testing.assert_allclose(np.load(outdir / 'probabilities.npy'), expected,
                             rtol=1e-5, atol=1e-6)
  assert os.path.exists(tmp_path / 'm.keras')
