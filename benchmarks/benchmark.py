r"""Throughput benchmarks: our loop vs model.fit, predict, input, FLOPs.

  python -m benchmarks.benchmark                      # everything, this machine
  python -m benchmarks.benchmark --sizes=32 --steps=30 --skip_filter

Prints one markdown table (and writes it, plus JSON, to --output_dir):
* training images/s of EfficientNet-B0 in our loop (noisy_student.training.trainer,
  RMSProp + EMA + weight decay, `iterations_per_loop` steps per tf.function)
  vs the plain Keras way, `model.fit` on the same network, data pipeline,
  batch, optimizer and device; at 224 also keras.applications.EfficientNetB0;
  the ratio is measured in the same run. Variants (--variants): XLA
  (`--jit_compile`) and mixed float16 / bfloat16, by default on GPUs only;
* prediction (pseudo-labeling) images/s of our predict path vs model.predict;
* images/s of the training input pipeline with RandAugment and its ratio to
  what training consumes;
* filter_unlabel records/s and peak memory (benchmarks/filter_benchmark.py,
  each size in a fresh process);
* forward FLOPs per image (counted from the layers: 2 x multiply-adds of
  convolutions and dense layers), achieved training FLOP/s (3 x forward) and
  the machine's measured float32 matmul peak.
Timings exclude tracing: every measurement runs warm-up steps first. Each
measurement runs in a fresh child process, and the training contenders of a
row alternate timed windows (ours, fit, ours, fit, ...), best of --repeats,
so that neither earlier rows nor a slow spell of a shared machine bias a ratio.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Optional, Sequence

from absl import app
from absl import flags

from noisy_student.runtime import quiet  # noqa: E402  pylint: disable=wrong-import-position
quiet.install()
# pylint: disable=g-import-not-at-top,wrong-import-position
import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from data import image_codec  # noqa: E402
from data import prepare_digits  # noqa: E402
from data import records  # noqa: E402
from data import writers  # noqa: E402
from noisy_student.core import config as config_lib  # noqa: E402
from noisy_student.core import datasets  # noqa: E402
from noisy_student.models import backbones  # noqa: E402
from noisy_student.pseudo import predict as predict_lib  # noqa: E402
from noisy_student.training import input_pipeline  # noqa: E402
from noisy_student.training import optimizers  # noqa: E402
from noisy_student.training import trainer as trainer_lib  # noqa: E402
from noisy_student.training import controller as controller_lib  # noqa: E402

# pylint: enable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The binary's flags (defined at its edge, so tests can import this module)."""
  flags.DEFINE_list('sizes', ['32', '224'], 'Image sizes (32 = small-image model).')
  flags.DEFINE_integer('batch_size', 32, 'Training batch (global).')
  flags.DEFINE_integer('steps', 20, 'Timed training steps per row.')
  flags.DEFINE_integer('warmup_steps', 5, 'Untimed steps before each row.')
  flags.DEFINE_integer('repeats', 5, 'Timed windows of --steps steps per training '
                       'row; the best is reported (both sides alike).')
  flags.DEFINE_list('variants', ['auto'],
                    'Extra rows of our loop, each timed against plain float32 '
                    'in the same process: xla (jit_compile), float16 (mixed, '
                    'with loss scaling), bfloat16 (mixed). auto: xla and '
                    'float16 when a GPU is present, none on a CPU (where XLA '
                    'is about 10x slower: see BUILD.md).')
  flags.DEFINE_integer('predict_images', 1024, 'Images for the predict rows.')
  flags.DEFINE_integer('input_batches', 30, 'Batches timed for the input rows.')
  flags.DEFINE_list('filter_records', ['100000', '1000000'],
                    'Record counts for filter_unlabel (fresh process each).')
  flags.DEFINE_bool('skip_filter', False, 'Skip the filter_unlabel rows.')
  flags.DEFINE_float('width_coefficient', None, 'Scales B0\'s channels (a '
                     'quick check of this script; BUILD.md\'s numbers are '
                     'B0\'s own). Unset: B0.')
  flags.DEFINE_float('depth_coefficient', None, 'Scales B0\'s block repeats '
                     '(as --width_coefficient). Unset: B0.')
  flags.DEFINE_list('rows', ['train', 'flops', 'predict', 'input'],
                    'Which per-size rows to measure (e.g. --rows=predict).')
  flags.DEFINE_string('output_dir', 'benchmark_results', 'Where table and JSON go.')
  # Internal: run() starts one child process per measurement with these.
  flags.DEFINE_string('measure', None, 'Internal: run one measurement '
                      '(train, xla, float16, bfloat16, predict, input, flops), '
                      'print JSON.')
  flags.DEFINE_integer('measure_size', 32, 'Internal: image size for --measure.')
  flags.DEFINE_string('data_root', None, 'Internal: where run() wrote the data.')


_VARIANTS = ('xla', 'float16', 'bfloat16')


@dataclasses.dataclass
class Row:
  what: str
  value: str
  note: str = ''


def _data_dir(root: str, size: int) -> str:
  """Labeled TFRecords: the digits at 32, real photos (256x256 JPEG) at 224."""
  if size == 32:
    out = os.path.join(root, 'digits')
    prepare_digits.prepare_digits(out)
    return out
  from PIL import Image  # pylint: disable=g-import-not-at-top
  import skimage.data  # pylint: disable=g-import-not-at-top
  out = os.path.join(root, 'photos')
  if os.path.exists(os.path.join(out, 'test-00000-of-00001')):
    return out  # written by an earlier call (shards are written atomically)
  photos = [skimage.data.chelsea(), skimage.data.coffee(), skimage.data.rocket(),
            skimage.data.astronaut()]
  rng = np.random.default_rng(0)
  recs = []
  for i in range(256):
    photo = photos[i % len(photos)]
    h, w = photo.shape[:2]
    top, left = rng.integers(0, h - 200), rng.integers(0, w - 200)
    crop = np.ascontiguousarray(photo[top:top + 200, left:left + 200, :3])
    image = np.asarray(Image.fromarray(crop).resize((256, 256)))
    recs.append(records.serialize_labeled(image_codec.encode(image, 'jpeg', 90),
                                          i % 10))
  writers.write_sharded(recs, out, 'train', 4)
  writers.write_sharded(recs[:64], out, 'test', 1)
  return out


def _model(size: int) -> config_lib.ModelConfig:
  task = datasets.get_builtin('digits' if size == 32 else 'imagenet')
  return config_lib.ModelConfig(
      model_name='efficientnet-b0', num_classes=10, image_size=size,
      small_image=size == 32, mean_rgb=tuple(task.mean_rgb),
      stddev_rgb=tuple(task.stddev_rgb),
      width_coefficient=FLAGS.width_coefficient,
      depth_coefficient=FLAGS.depth_coefficient)


def _scaled() -> bool:
  return (FLAGS.width_coefficient, FLAGS.depth_coefficient) != (None, None)


def _experiment(root: str, data_dir: str, size: int, steps: int, *,
                jit: bool = False, precision: str = 'float32'
                ) -> config_lib.ExperimentConfig:
  data = config_lib.DataConfig(
      label_data_dir=data_dir, image_size=size, small_image=size == 32,
      flip=False, num_classes=10, use_cache=True)
  train = config_lib.TrainConfig(
      train_steps=steps, train_last_step_num=steps,
      train_batch_size=FLAGS.batch_size, num_train_images=1000,
      iterations_per_loop=max(steps, 1), save_checkpoints_steps=10 ** 9,
      keep_checkpoint_max=1, jit_compile=jit, mixed_precision=precision)
  return config_lib.ExperimentConfig(
      model_dir=tempfile.mkdtemp(dir=root), model=_model(size), data=data,
      train=train)


def _fit_dataset(cfg: config_lib.ExperimentConfig) -> tf.data.Dataset:
  dataset = input_pipeline.make_train_dataset(
      cfg.data, labeled_batch=FLAGS.batch_size, unlabeled_batch=0)
  return dataset.map(lambda d: (d['image'], tf.one_hot(d['label'], 10)))


class _OurLoop:
  """Trainer.train windows of --steps steps (one tf.function call each)."""

  def __init__(self, root, data_dir, size, *, jit=False, precision='float32'):
    warm, steps, repeats = FLAGS.warmup_steps, FLAGS.steps, FLAGS.repeats
    cfg = _experiment(root, data_dir, size, warm + 1 + repeats * steps,
                      jit=jit, precision=precision)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(
        cfg.train, iterations_per_loop=steps))
    self.trainer = trainer_lib.Trainer(cfg, tf.distribute.get_strategy())
    self.controller = controller_lib.Controller(self.trainer)

  def warm_up(self) -> None:
    self.controller.train(until_step=FLAGS.warmup_steps)  # traces the loop...
    self.controller.train(until_step=FLAGS.warmup_steps + 1)  # ...then no retrace

  def window(self) -> float:
    # The rate of the loop itself (one tf.function call of --steps steps,
    # input included) as the trainer logs it; like the model.fit windows it
    # leaves out checkpoint writing, which a real run amortises over
    # --save_checkpoints_steps steps.
    loops = self.controller.train(until_step=self.trainer.step + FLAGS.steps)
    return loops[-1].metrics['train/examples_per_sec']


class _Fit:
  """model.fit windows: the time between the ends of batch 2 and 2 + --steps
  of one fit call (tracing, iterator creation and the input's first fill are
  left out, as in our loop's windows)."""

  def __init__(self, model: keras.Model, dataset: tf.data.Dataset,
               same_work: bool = False):
    # same_work: the optimizer also keeps an EMA of the weights (Keras's
    # use_ema, every step) and decays them (Keras's decoupled weight_decay),
    # the per-step work our loop does on top of RMSProp.
    optimizer = (optimizers.TF1RMSprop(
        learning_rate=0.01, rho=0.9, momentum=0.9, epsilon=1e-3, use_ema=True,
        ema_momentum=0.9999, weight_decay=1e-5) if same_work
                 else optimizers.build_optimizer(0.01))
    model.compile(optimizer=optimizer,
                  loss=keras.losses.CategoricalCrossentropy(
                      from_logits=True, label_smoothing=0.1))
    self.model, self.dataset = model, dataset

  def warm_up(self) -> None:
    self.model.fit(self.dataset, steps_per_epoch=FLAGS.warmup_steps, epochs=1,
                   verbose=0)

  def window(self) -> float:
    first, last = 2, 2 + FLAGS.steps
    marks = {}

    class StepClock(keras.callbacks.Callback):

      def on_train_batch_end(self, batch, logs=None):
        if batch + 1 in (first, last):
          marks[batch + 1] = time.perf_counter()

    self.model.fit(self.dataset, steps_per_epoch=last, epochs=1, verbose=0,
                   callbacks=[StepClock()])
    return FLAGS.steps * FLAGS.batch_size / (marks[last] - marks[first])


def time_training(root, data_dir, size, contenders: Sequence[str]
                  ) -> dict[str, float]:
  """Best-of---repeats images/s of each contender, windows interleaved.

  Contenders: 'ours' (our loop), 'xla' / 'float16' / 'bfloat16' (our loop
  with that option), 'fit' (model.fit on our network and input),
  'fit_same_work' (the same with EMA and weight decay in the Keras
  optimizer), 'apps' (keras.applications.EfficientNetB0 with model.fit).
  Interleaving the
  windows (ours, fit, ours, fit, ...) keeps a slow spell of a shared machine
  from landing on one side of a ratio only.
  """
  keras.backend.clear_session()
  runners = {}
  for name in contenders:
    if name == 'ours' or name in _VARIANTS:
      runners[name] = _OurLoop(root, data_dir, size, jit=name == 'xla',
                               precision=name if 'float' in name
                               else 'float32')
      continue
    cfg = _experiment(root, data_dir, size, 1)
    model = (keras.applications.EfficientNetB0(
        weights=None, input_shape=(size, size, 3), classes=10,
        classifier_activation=None) if name == 'apps' else backbones.build_model(cfg.model))
    runners[name] = _Fit(model, _fit_dataset(cfg),
                         same_work=name == 'fit_same_work')
  for runner in runners.values():
    runner.warm_up()
  best = dict.fromkeys(runners, 0.0)
  for _ in range(FLAGS.repeats):
    for name, runner in runners.items():
      gc.collect()
      best[name] = max(best[name], runner.window())
  return best


def time_predict(data_dir, size) -> tuple[float, float]:
  """(our predict path, model.predict) images/s on the same TFRecord files."""
  keras.backend.clear_session()
  model = backbones.build_model(_model(size))
  # One shard of FLAGS.predict_images records (the training images repeated),
  # as a predict job sees it: enough batches that per-call set-up (pipeline,
  # iterator) weighs on both paths as little as it does on a real shard.
  count = FLAGS.predict_images - FLAGS.predict_images % 64
  path = os.path.join(data_dir, f'predict{count}-00000-of-00001')
  if not os.path.exists(path):
    source = list(tf.data.TFRecordDataset(
        input_pipeline.list_files(data_dir, ['train'])).as_numpy_iterator())
    writers.write_records(path, (source[i % len(source)] for i in range(count)))
  files = [path]
  strategy = tf.distribute.get_strategy()

  def ours():
    rows = predict_lib._probabilities(  # pylint: disable=protected-access
        model, strategy, files, image_size=size, small_image=size == 32,
        batch_size=64, total_replicas=1, worker_id=0, num_examples=count,
        label='benchmark')
    return sum(len(batch) for batch in rows)

  def keras_predict():
    dataset = input_pipeline.make_eval_dataset(
        files, image_size=size, small_image=size == 32, global_batch=64,
        labeled=True).map(lambda d: d['image']).take(count // 64)
    return len(model.predict(dataset, verbose=0))

  # Alternate the two paths and keep each one's best of --repeats, so that a
  # burst of background work (e.g. the earlier rows' input threads winding
  # down) does not land on one side only.
  gc.collect()
  best = {ours: 0.0, keras_predict: 0.0}
  for fn in best:
    fn()  # warm-up / tracing
  for _ in range(FLAGS.repeats):
    for fn in best:
      start = time.perf_counter()
      done = fn()
      best[fn] = max(best[fn], done / (time.perf_counter() - start))
  return best[ours], best[keras_predict]


def time_input(data_dir, size, magnitude: int) -> float:
  cfg = config_lib.DataConfig(
      label_data_dir=data_dir, image_size=size, small_image=size == 32,
      flip=size != 32, num_classes=10, augment_name='v1',
      randaug_magnitude=magnitude)
  iterator = iter(input_pipeline.make_train_dataset(
      cfg, labeled_batch=128, unlabeled_batch=0))
  for _ in range(5):
    next(iterator)
  start = time.perf_counter()
  for _ in range(FLAGS.input_batches):
    next(iterator)
  return FLAGS.input_batches * 128 / (time.perf_counter() - start)


def forward_flops(model: keras.Model) -> int:
  """2 x multiply-adds of Conv2D, DepthwiseConv2D and Dense layers, per image."""
  total = 0
  for layer in model._flatten_layers(include_self=False):  # pylint: disable=protected-access
    if not layer.built or not hasattr(layer, 'kernel'):
      continue
    try:
      out_shape = layer.output.shape
    except (AttributeError, ValueError):
      continue
    kernel = layer.kernel.shape
    if isinstance(layer, keras.layers.DepthwiseConv2D):
      total += 2 * out_shape[1] * out_shape[2] * kernel[0] * kernel[1] * kernel[2] * kernel[3]
    elif isinstance(layer, keras.layers.Conv2D):
      total += 2 * int(np.prod(out_shape[1:3])) * int(np.prod(kernel))
    elif isinstance(layer, keras.layers.Dense):
      total += 2 * int(np.prod(kernel))
  return int(total)


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
  """Measured float32 matmul FLOP/s of this machine (best of `repeats`)."""
  a = tf.random.normal([n, n])
  b = tf.random.normal([n, n])
  fn = tf.function(lambda: tf.reduce_sum(tf.linalg.matmul(a, b)))
  fn()
  best = min(_timed(fn) for _ in range(repeats))
  return 2.0 * n ** 3 / best


def _timed(fn) -> float:
  start = time.perf_counter()
  fn().numpy()
  return time.perf_counter() - start


def filter_rows() -> list[Row]:
  rows = []
  script = os.path.join(os.path.dirname(__file__), 'filter_benchmark.py')
  if not os.path.exists(script):
    return [Row('filter_unlabel', 'n/a', 'benchmarks/filter_benchmark.py missing')]
  for count in FLAGS.filter_records:
    result = subprocess.run(
        [sys.executable, '-m', 'benchmarks.filter_benchmark',
         f'--num_records={count}', '--json'], capture_output=True, text=True)
    if result.returncode:
      rows.append(Row(f'filter_unlabel {count} records', 'failed',
                      result.stderr.strip().splitlines()[-1][:120]))
      continue
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    rows.append(Row(f'filter_unlabel, {int(count):,} records',
                    f'{stats["records_per_sec"]:,.0f} records/s',
                    f'peak memory {stats["peak_rss_mb"]:.0f} MB'))
  return rows


def measure(kind: str, size: int, data_root: str) -> dict:
  """One measurement (run in a child process by run())."""
  data_dir = _data_dir(data_root, size)
  if kind == 'train':
    return time_training(
        data_root, data_dir, size,
        ['ours', 'fit', 'fit_same_work'] +
        (['apps'] if size != 32 and not _scaled() else []))
  if kind in _VARIANTS:
    return time_training(data_root, data_dir, size, ['ours', kind])
  if kind == 'predict':
    ours, keras_predict = time_predict(data_dir, size)
    return {'ours': ours, 'model.predict': keras_predict}
  if kind == 'input':
    return {str(m): time_input(data_dir, size, m) for m in (5, 27)}
  if kind == 'flops':
    return {'flops': forward_flops(backbones.build_model(_model(size)))}
  raise app.UsageError(f'--measure={kind!r} is not a measurement')


def _in_child(kind: str, size: int, data_root: str) -> dict:
  """measure() in a fresh process: no threads, caches or memory of earlier
  rows can slow a later one down."""
  result = subprocess.run(
      [sys.executable, '-m', 'benchmarks.benchmark', *sys.argv[1:],
       f'--measure={kind}', f'--measure_size={size}',
       f'--data_root={data_root}'],
      stdout=subprocess.PIPE, text=True, check=False)
  if result.returncode:
    raise RuntimeError(f'benchmark child {kind} {size} failed '
                       f'(exit {result.returncode}); see its log above')
  return json.loads(result.stdout.strip().splitlines()[-1])


def _other_rows(root: str, size: int, label: str, ours: Optional[float],
                variants: Sequence[str], peak: float) -> list[Row]:
  """The variant, FLOPs, predict and input rows of one size asked for by
  --rows (`ours`: the training loop's img/s; None when not measured)."""
  rows = []
  for variant in variants if 'train' in FLAGS.rows else ():
    try:
      pair = _in_child(variant, size, root)
      rows.append(Row(f'train B0 {label}: our loop + {variant}',
                      f'{pair[variant]:.1f} img/s',
                      f'x{pair[variant] / pair["ours"]:.2f} vs float32 '
                      'in the same process'))
    except RuntimeError as err:
      rows.append(Row(f'train B0 {label}: our loop + {variant}', 'failed',
                      str(err)))
  if 'flops' in FLAGS.rows:
    flops = _in_child('flops', size, root)['flops']
    note = '' if ours is None else (
        f'training ~{3 * flops * ours / 1e9:.1f} GFLOP/s achieved '
        f'= {100 * 3 * flops * ours / peak:.0f}% of matmul peak')
    rows.append(Row(f'B0 {label}: forward FLOPs / image',
                    f'{flops / 1e6:.1f} MFLOP', note))
  if 'predict' in FLAGS.rows:
    predict = _in_child('predict', size, root)
    rows.append(Row(f'predict B0 {label}: our predict path',
                    f'{predict["ours"]:.1f} img/s',
                    f'model.predict {predict["model.predict"]:.1f} img/s, '
                    f'ratio {predict["ours"] / predict["model.predict"]:.2f}'))
  if 'input' in FLAGS.rows:
    for magnitude, value in _in_child('input', size, root).items():
      rows.append(Row(f'input {label}: decode + RandAugment M={magnitude}',
                      f'{value:.0f} img/s',
                      '' if ours is None else
                      f'{value / ours:.1f}x what our loop consumes'))
  return rows


def run() -> list[Row]:
  rows = []
  root = tempfile.mkdtemp(prefix='ns_benchmark_')
  peak = matmul_peak()
  rows.append(Row('float32 matmul peak (2048x2048)', f'{peak / 1e9:.1f} GFLOP/s'))
  variants = FLAGS.variants
  if variants == ['auto']:
    variants = (['xla', 'float16'] if tf.config.list_physical_devices('GPU')
                else [])
  unknown = set(variants) - set(_VARIANTS)
  if unknown:
    raise app.UsageError(f'--variants: unknown {sorted(unknown)}; '
                         f'choose from {list(_VARIANTS)} or auto')
  for size in (int(s) for s in FLAGS.sizes):
    _data_dir(root, size)  # written once, read by every child
    label = f'{size}x{size}' + (' small-image' if size == 32 else '')
    if _scaled():
      label += (f' width {FLAGS.width_coefficient or 1:g}'
                f' depth {FLAGS.depth_coefficient or 1:g}')
    if 'train' not in FLAGS.rows:
      rows.extend(_other_rows(root, size, label, None, variants, peak))
      continue
    train = _in_child('train', size, root)
    ours = train['ours']
    rows.append(Row(f'train B0 {label}: our loop', f'{ours:.1f} img/s',
                    f'batch {FLAGS.batch_size}'))
    rows.append(Row(f'train B0 {label}: model.fit (same network)',
                    f'{train["fit"]:.1f} img/s',
                    f'ours / fit = {ours / train["fit"]:.2f}'))
    rows.append(Row(f'train B0 {label}: model.fit + EMA + weight decay '
                    '(Keras optimizer options)',
                    f'{train["fit_same_work"]:.1f} img/s',
                    f'ours / this = {ours / train["fit_same_work"]:.2f}'))
    if 'apps' in train:
      rows.append(Row(f'train B0 {label}: keras.applications B0 model.fit',
                      f'{train["apps"]:.1f} img/s',
                      f'ours / fit = {ours / train["apps"]:.2f}'))
    rows.extend(_other_rows(root, size, label, ours, variants, peak))
  if not FLAGS.skip_filter:
    rows.extend(filter_rows())
  return rows


def markdown(rows: Sequence[Row]) -> str:
  head = (f'Machine: {platform.processor() or platform.machine()}, '
          f'{os.cpu_count()} CPUs, TensorFlow {tf.__version__}, GPUs: '
          f'{len(tf.config.list_physical_devices("GPU"))}\n\n'
          '| measurement | result | note |\n|---|---|---|\n')
  return head + '\n'.join(f'| {r.what} | {r.value} | {r.note} |' for r in rows) + '\n'


def main(argv):
  del argv
  if FLAGS.measure:
    print(json.dumps(measure(FLAGS.measure, FLAGS.measure_size,
                             FLAGS.data_root)))
    return
  rows = run()
  table = markdown(rows)
  print(table)
  os.makedirs(FLAGS.output_dir, exist_ok=True)
  writers.write_text(os.path.join(FLAGS.output_dir, 'benchmark.md'), table)
  writers.write_json(os.path.join(FLAGS.output_dir, 'benchmark.json'),
                     [dataclasses.asdict(r) for r in rows])


if __name__ == '__main__':
  define_flags()
  app.run(main)
