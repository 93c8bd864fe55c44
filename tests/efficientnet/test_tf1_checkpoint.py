"""Tests for efficientnet/tf1_checkpoint.py.

The TF1 checkpoints here are written with tf.raw_ops.SaveV2 from names typed
after anchors.md §1.3 (the original's scopes and tf.layers auto-naming), not
from the loader's own table.
"""


import keras
import numpy as np
import pytest
import tensorflow as tf

import efficientnet
from efficientnet import tf1_checkpoint

S = 'efficientnet-b0'
EMA = '/ExponentialMovingAverage'
# B0 stages (anchors.md §1.2): repeats, kernel, stride, expand, in, out.
B0_ROWS = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40),
           (3, 3, 2, 6, 40, 80), (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192),
           (1, 3, 1, 6, 192, 320)]
BN_LEAVES = ('gamma', 'beta', 'moving_mean', 'moving_variance')
TINY = dict(width_coefficient=0.25, depth_coefficient=0.25)


pytestmark = pytest.mark.usefixtures('fresh_keras_session')


def b0_tf1_shapes(scope, num_classes=1000):
  """{name: shape} of an original B0 checkpoint (no EMA, no slots)."""
  shapes = {}

  def add_bn(prefix, channels):
    for leaf in BN_LEAVES:
      shapes[f'{prefix}/{leaf}'] = (channels,)

  shapes[f'{scope}/stem/conv2d/kernel'] = (3, 3, 3, 32)
  add_bn(f'{scope}/stem/tpu_batch_normalization', 32)
  index = 0
  for repeats, k, _, expand, c_in, c_out in B0_ROWS:
    for j in range(repeats):
      block_in = c_in if j == 0 else c_out
      mid, se = block_in * expand, max(1, int(block_in * 0.25))
      p = f'{scope}/blocks_{index}'
      # tf.layers auto-names per scope, in creation order.
      convs = iter(['conv2d', 'conv2d_1'])
      bns = iter(['tpu_batch_normalization', 'tpu_batch_normalization_1',
                  'tpu_batch_normalization_2'])
      if expand != 1:
        shapes[f'{p}/{next(convs)}/kernel'] = (1, 1, block_in, mid)
        add_bn(f'{p}/{next(bns)}', mid)
      shapes[f'{p}/depthwise_conv2d/depthwise_kernel'] = (k, k, mid, 1)
      add_bn(f'{p}/{next(bns)}', mid)
      shapes[f'{p}/se/conv2d/kernel'] = (1, 1, mid, se)
      shapes[f'{p}/se/conv2d/bias'] = (se,)
      shapes[f'{p}/se/conv2d_1/kernel'] = (1, 1, se, mid)
      shapes[f'{p}/se/conv2d_1/bias'] = (mid,)
      shapes[f'{p}/{next(convs)}/kernel'] = (1, 1, mid, c_out)
      add_bn(f'{p}/{next(bns)}', c_out)
      index += 1
  shapes[f'{scope}/head/conv2d/kernel'] = (1, 1, 320, 1280)
  add_bn(f'{scope}/head/tpu_batch_normalization', 1280)
  shapes[f'{scope}/head/dense/kernel'] = (1280, num_classes)
  shapes[f'{scope}/head/dense/bias'] = (num_classes,)
  return shapes


def write_checkpoint(prefix, arrays):
  names = sorted(arrays)
  tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names,
                    shape_and_slices=[''] * len(names),
                    tensors=[tf.constant(arrays[n]) for n in names])
  return prefix


def read_checkpoint(prefix):
  reader = tf.train.load_checkpoint(prefix)
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}


def test_typed_b0_names_spot_checks():
  shapes = b0_tf1_shapes(S)
  # Lines of anchors.md §1.3, verbatim.
  assert shapes[f'{S}/blocks_0/conv2d/kernel'] == (1, 1, 32, 16)  # project
  assert f'{S}/blocks_0/tpu_batch_normalization_1/gamma' in shapes
  assert f'{S}/blocks_0/tpu_batch_normalization_2/gamma' not in shapes
  assert shapes[f'{S}/blocks_1/conv2d/kernel'] == (1, 1, 16, 96)  # expand
  assert shapes[f'{S}/blocks_1/conv2d_1/kernel'] == (1, 1, 96, 24)
  assert shapes[f'{S}/blocks_15/conv2d_1/kernel'] == (1, 1, 1152, 320)
  assert len(shapes) == 311


@pytest.fixture(scope='module')
def original_b0(tmp_path_factory):
  """An original-style B0 checkpoint: raw, EMA shadows, RMSProp slots, step."""
  rng = np.random.default_rng(0)
  raw = {n: rng.normal(size=s).astype(np.float32)
         for n, s in b0_tf1_shapes(S).items()}
  ema = {n + EMA: v + 100.0 for n, v in raw.items()}
  slots = {}
  for name, value in raw.items():
    if not name.endswith(('moving_mean', 'moving_variance')):
      slots[name + '/RMSProp'] = np.ones_like(value)
      slots[name + '/RMSProp_1'] = np.zeros_like(value)
  arrays = {**raw, **ema, **slots, 'global_step': np.int64(1234)}
  prefix = str(tmp_path_factory.mktemp('tf1') / 'model.ckpt-1234')
  write_checkpoint(prefix, arrays)
  return prefix, raw, ema, len(arrays)


# Spot checks, "<model layer>[.<sublayer>] <weight attribute> <TF1 name>".
PLACEMENT = [tuple(row.split()) for row in """
stem_conv kernel stem/conv2d/kernel
stem_bn moving_variance stem/tpu_batch_normalization/moving_variance
blocks_0_dwconv kernel blocks_0/depthwise_conv2d/depthwise_kernel
blocks_0_dw_bn moving_mean blocks_0/tpu_batch_normalization/moving_mean
blocks_0_se.reduce bias blocks_0/se/conv2d/bias
blocks_0_project_conv kernel blocks_0/conv2d/kernel
blocks_0_project_bn gamma blocks_0/tpu_batch_normalization_1/gamma
blocks_1_expand_conv kernel blocks_1/conv2d/kernel
blocks_1_expand_bn beta blocks_1/tpu_batch_normalization/beta
blocks_1_dwconv kernel blocks_1/depthwise_conv2d/depthwise_kernel
blocks_1_dw_bn gamma blocks_1/tpu_batch_normalization_1/gamma
blocks_1_se.reduce kernel blocks_1/se/conv2d/kernel
blocks_1_se.expand kernel blocks_1/se/conv2d_1/kernel
blocks_1_se.expand bias blocks_1/se/conv2d_1/bias
blocks_1_project_conv kernel blocks_1/conv2d_1/kernel
blocks_1_project_bn moving_variance blocks_1/tpu_batch_normalization_2/moving_variance
blocks_15_project_conv kernel blocks_15/conv2d_1/kernel
head_conv kernel head/conv2d/kernel
head_bn moving_mean head/tpu_batch_normalization/moving_mean
head_dense kernel head/dense/kernel
head_dense bias head/dense/bias
""".strip().splitlines()]


def _weight(model, layer_path, attribute):
  name, _, sub = layer_path.partition('.')
  layer = model.get_layer(name)
  return getattr(getattr(layer, sub) if sub else layer, attribute).numpy()


def test_load_puts_ema_values_in_the_right_layers(original_b0):
  prefix, raw, ema, num_entries = original_b0
  model = efficientnet.build_model(S, image_size=32)
  report = efficientnet.load_tf1_checkpoint(model, prefix)
  for layer_path, attribute, tf1_name in PLACEMENT:
    np.testing.assert_array_equal(_weight(model, layer_path, attribute),
                                  ema[f'{S}/{tf1_name}{EMA}'],
                                  err_msg=tf1_name)
  # Every model weight holds exactly one distinct EMA array.
  by_fingerprint = {(v.shape, float(v.flat[0]), float(v.sum())): n
                    for n, v in ema.items()}
  used = [by_fingerprint[(tuple(w.shape), float(w.numpy().flat[0]),
                          float(w.numpy().sum()))] for w in model.weights]
  assert len(set(used)) == len(used) == len(ema) == 311
  assert (report.scope, report.num_variables, report.num_from_ema) == (
      S, 311, 311)
  assert report.num_ignored == num_entries - 311
  assert 'loaded 311 variables (311 from EMA shadows)' in str(report)


def test_use_ema_false_loads_the_raw_values(original_b0):
  prefix, raw, _, _ = original_b0
  model = efficientnet.build_model(S, image_size=32)
  report = efficientnet.load_tf1_checkpoint(model, prefix, use_ema=False)
  assert report.num_from_ema == 0
  for layer_path, attribute, tf1_name in PLACEMENT:
    np.testing.assert_array_equal(_weight(model, layer_path, attribute),
                                  raw[f'{S}/{tf1_name}'], err_msg=tf1_name)


def test_checkpoint_without_ema_loads_raw_values_even_with_use_ema(tmp_path):
  rng = np.random.default_rng(1)
  raw = {n: rng.normal(size=s).astype(np.float32)
         for n, s in b0_tf1_shapes(S).items()}
  prefix = write_checkpoint(str(tmp_path / 'model.ckpt'), raw)
  model = efficientnet.build_model(S, image_size=32)
  assert efficientnet.load_tf1_checkpoint(model, prefix).num_from_ema == 0
  np.testing.assert_array_equal(model.get_layer('head_dense').bias.numpy(),
                                raw[f'{S}/head/dense/bias'])


def test_teacher_scope_is_detected_and_directory_resolves(tmp_path):
  scope = 'teacher_model/efficientnet-b0'
  rng = np.random.default_rng(2)
  raw = {n: rng.normal(size=s).astype(np.float32)
         for n, s in b0_tf1_shapes(scope).items()}
  write_checkpoint(str(tmp_path / 'model.ckpt-7'), raw)
  (tmp_path / 'checkpoint').write_text(
      'model_checkpoint_path: "model.ckpt-7"\n')
  model = efficientnet.build_model(S, image_size=32)
  report = efficientnet.load_tf1_checkpoint(model, str(tmp_path))
  assert report.scope == scope
  assert report.checkpoint.endswith('model.ckpt-7')
  np.testing.assert_array_equal(model.get_layer('stem_conv').kernel.numpy(),
                                raw[f'{scope}/stem/conv2d/kernel'])


def test_wrong_model_size_gives_one_clear_error(tmp_path):
  b1 = efficientnet.build_model('efficientnet-b1', image_size=32)
  prefix = efficientnet.save_tf1_checkpoint(b1, str(tmp_path / 'b1.ckpt'))
  b0 = efficientnet.build_model(S, image_size=32)
  before = [w.numpy() for w in b0.weights]
  with pytest.raises(tf1_checkpoint.CheckpointMismatchError) as error:
    efficientnet.load_tf1_checkpoint(b0, prefix)
  message = str(error.value)
  assert prefix in message and "'efficientnet-b1'" in message
  assert 'missing from the checkpoint' in message
  # B0's blocks_1 expands (tpu_batch_normalization_2); B1's blocks_1 doesn't.
  assert 'efficientnet-b1/blocks_1/tpu_batch_normalization_2/gamma' in message
  assert 'unexpected in the checkpoint' in message
  # B1 has 23 blocks, B0 16: blocks_16..22 (7 x 19 variables) are extra.
  assert 'unexpected in the checkpoint (133)' in message
  assert 'efficientnet-b1/blocks_16/conv2d/kernel' in message
  assert ('efficientnet-b1/blocks_1/conv2d/kernel [1, 1, 16, 16] vs '
          '[1, 1, 16, 96]') in message
  assert 'wrong shape' in message
  assert 'looks like efficientnet-b1' in message
  # Nothing was assigned.
  for old, w in zip(before, b0.weights):
    np.testing.assert_array_equal(old, w.numpy())


def test_wrong_num_classes_is_named(original_b0):
  prefix, _, _, _ = original_b0
  model = efficientnet.build_model(S, num_classes=10, image_size=32)
  with pytest.raises(ValueError, match='1000 classes, the model 10') as error:
    efficientnet.load_tf1_checkpoint(model, prefix)
  assert 'head/dense/kernel [1280, 1000] vs [1280, 10]' in str(error.value)


def test_missing_or_foreign_checkpoint_errors_name_the_path(tmp_path):
  model = efficientnet.build_model(S, 10, 32, **TINY)
  missing = str(tmp_path / 'nothing.ckpt')
  with pytest.raises(FileNotFoundError, match='nothing.ckpt'):
    efficientnet.load_tf1_checkpoint(model, missing)
  with pytest.raises(FileNotFoundError, match='checkpoint'):
    efficientnet.load_tf1_checkpoint(model, str(tmp_path))
  foreign = write_checkpoint(str(tmp_path / 'resnet.ckpt'), {
      'resnet50/conv1/kernel': np.zeros((7, 7, 3, 64), np.float32)})
  with pytest.raises(ValueError, match='no EfficientNet variables'):
    efficientnet.load_tf1_checkpoint(model, foreign)
  with pytest.raises(ValueError, match="scope='other'"):
    efficientnet.load_tf1_checkpoint(model, foreign, scope='other')


def test_save_writes_the_original_names(tmp_path):
  model = efficientnet.build_model(S, image_size=32)
  prefix = efficientnet.save_tf1_checkpoint(model, str(tmp_path / 'out.ckpt'))
  saved = dict(tf.train.list_variables(prefix))
  expected = b0_tf1_shapes(S)
  assert saved.keys() == expected.keys()
  assert all(tuple(saved[n]) == s for n, s in expected.items())
  assert sorted(p.name for p in tmp_path.iterdir()) == [
      'out.ckpt.data-00000-of-00001', 'out.ckpt.index']


def test_save_load_round_trip_gives_identical_logits(tmp_path):
  source = efficientnet.build_model(S, 10, 32, small_image=True, **TINY)
  rng = np.random.default_rng(3)
  for w in source.weights:
    w.assign(rng.uniform(0.5, 1.5, w.shape).astype(np.float32)
             if 'variance' in w.path else
             rng.normal(0, 0.3, w.shape).astype(np.float32))
  prefix = efficientnet.save_tf1_checkpoint(
      source, str(tmp_path / 'tiny.ckpt'), 'student/efficientnet-b0',
      include_ema=True)
  entries = read_checkpoint(prefix)
  assert len(entries) == 2 * len(source.weights)
  target = efficientnet.build_model(S, 10, 32, small_image=True, **TINY)
  report = efficientnet.load_tf1_checkpoint(target, prefix)
  assert report.scope == 'student/efficientnet-b0'
  x = rng.uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
  np.testing.assert_array_equal(target(x, training=False),
                                source(x, training=False))


def test_scope_is_chosen_among_several_by_fit(tmp_path):
  student = efficientnet.build_model(S, 10, 32, **TINY)
  teacher = efficientnet.build_model(S, 10, 32, width_coefficient=0.5,
                                     depth_coefficient=0.25)
  arrays = {}
  for model, scope in ((student, S), (teacher, 'teacher_model/' + S)):
    part = efficientnet.save_tf1_checkpoint(
        model, str(tmp_path / scope.replace('/', '_')), scope)
    arrays.update(read_checkpoint(part))
  both = write_checkpoint(str(tmp_path / 'both.ckpt'), arrays)
  fresh = efficientnet.build_model(S, 10, 32, width_coefficient=0.5,
                                   depth_coefficient=0.25)
  assert efficientnet.load_tf1_checkpoint(fresh, both).scope == (
      'teacher_model/' + S)
  # Two same-size scopes: ambiguous unless scope= is given.
  twin = {k.replace('teacher_model/', 'twin/'): v for k, v in arrays.items()
          if k.startswith('teacher_model/')}
  ambiguous = write_checkpoint(str(tmp_path / 'twins.ckpt'),
                               {**arrays, **twin})
  with pytest.raises(ValueError, match='pass scope='):
    efficientnet.load_tf1_checkpoint(fresh, ambiguous)
  report = efficientnet.load_tf1_checkpoint(fresh, ambiguous,
                                            scope='twin/' + S)
  assert report.scope == 'twin/' + S


def test_variable_map_covers_every_weight_once():
  model = efficientnet.build_model('efficientnet-b2', image_size=32)
  mapping = efficientnet.tf1_variable_map(model, 'x')
  assert len(mapping) == len(model.weights)
  assert {id(v) for v in mapping.values()} == {id(w) for w in model.weights}
  assert all(name.startswith('x/') for name in mapping)
  with pytest.raises(ValueError, match='not an efficientnet'):
    inputs = keras.Input((4,))
    efficientnet.tf1_variable_map(
        keras.Model(inputs, keras.layers.Dense(2)(inputs)))


def test_guess_model_names():
  shapes = {n: list(s) for n, s in b0_tf1_shapes('m').items()}
  assert tf1_checkpoint.guess_model_names(shapes, 'm') == ['efficientnet-b0']
