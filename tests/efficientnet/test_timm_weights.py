r"""Tests for efficientnet/timm_weights.py and efficientnet/safetensors_file.py.

(a) Always runs (no torch): timm `tf_efficientnet_b0` state dicts typed
after timm (`timm_state_dicts.py`), written to `.safetensors` by hand with
numpy; mapping completeness, every tensor in the right place and layout,
dtypes, and the errors.

(b) `test_logits_match_timm` compares with timm itself (and
`test_every_ns_architecture_fits_timms_names_and_shapes` checks B0-B7 and L2
names and shapes from timm's meta-device models): random-weight timm
models (weights and BN statistics), their state dicts saved by
`safetensors.torch.save_file`, converted with `convert_checkpoint.convert`,
logits on random 0-255 images. It needs a Python with torch, timm and
safetensors: this one, or the one $TIMM_PYTHON names (which runs
`timm_reference.py`); otherwise it skips. CI has no torch/timm and runs (a)
and (c) only.

(c) Always runs (no torch): `test_committed_fixture_logits_match_timm`
compares with timm's logits committed in `timm_fixture/` (tiny random-weight
B0-family models written by `timm_reference.py --fixture`). The command for
(b) (docs/efficientnet.md):

  TIMM_PYTHON=/work/timm-venv/bin/python python -m pytest -p no:cacheprovider \
    -n 0 -s tests/efficientnet/test_timm_weights.py -k 'match_timm or every_ns'
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from noisy_student.runtime import errors
import efficientnet
from efficientnet import convert_checkpoint
from efficientnet import safetensors_file
from efficientnet import timm_weights
from tests.efficientnet import timm_reference
from tests.efficientnet import timm_state_dicts as sd

pytestmark = pytest.mark.usefixtures('fresh_keras_session')

CONV = (2, 3, 1, 0)        # [out, in, kh, kw] -> [kh, kw, in, out]
DEPTHWISE = (2, 3, 0, 1)   # [C, 1, kh, kw] -> [kh, kw, C, 1]
BN = {'gamma': 'weight', 'beta': 'bias', 'moving_mean': 'running_mean',
      'moving_variance': 'running_var'}


@pytest.fixture(scope='module')
def b0():
  return efficientnet.build_model('efficientnet-b0', image_size=32)


@pytest.fixture(scope='module')
def state():
  return sd.random_state_dict(sd.b0_timm_shapes())


def _weights(model, layer_name):
  layer = model.get_layer(layer_name.split('.')[0])
  if '.' in layer_name:
    layer = getattr(layer, layer_name.split('.')[1])
  return {v.name: v.numpy() for v in layer.weights}


# --------------------------------------------------------------------------
# (a) The name table and loading, without torch.
# --------------------------------------------------------------------------
def test_name_table_is_timms_b0_state_dict(b0):
  shapes = sd.b0_timm_shapes()
  assert len(shapes) == sd.NUM_B0_TENSORS
  table = timm_weights.timm_variable_map(b0)
  counters = {n for n in shapes if n.endswith('.num_batches_tracked')}
  assert len(counters) == sd.NUM_B0_COUNTERS
  assert set(table) == set(shapes) - counters
  assert len(table) == len(b0.weights) == 311
  for name, target in table.items():
    assert target.timm_shape == shapes[name], name


def test_round_trip_puts_every_tensor_in_place(b0, state, tmp_path):
  path = sd.write_safetensors(tmp_path / 'b0.safetensors', state)
  report = timm_weights.load_timm_weights(b0, path)
  assert (report.num_variables, report.num_ignored) == (311, 49)
  assert report.dtypes == ('F32',) and report.source == path
  assert 'loaded 311 variables (F32)' in str(report)

  def check_bn(layer, timm):
    for leaf, value in _weights(b0, layer).items():
      np.testing.assert_array_equal(value, state[f'{timm}.{BN[leaf]}'])

  def check_conv(layer, timm, perm=CONV):
    np.testing.assert_array_equal(_weights(b0, layer)['kernel'],
                                  state[f'{timm}.weight'].transpose(perm))

  check_conv('stem_conv', 'conv_stem')
  check_bn('stem_bn', 'bn1')
  # blocks_0: DepthwiseSeparable (conv_dw, bn1, se, conv_pw, bn2).
  check_conv('blocks_0_dwconv', 'blocks.0.0.conv_dw', DEPTHWISE)
  assert _weights(b0, 'blocks_0_dwconv')['kernel'].shape == (3, 3, 32, 1)
  check_bn('blocks_0_dw_bn', 'blocks.0.0.bn1')
  for role, timm in (('reduce', 'conv_reduce'), ('expand', 'conv_expand')):
    check_conv(f'blocks_0_se.{role}', f'blocks.0.0.se.{timm}')
    np.testing.assert_array_equal(_weights(b0, f'blocks_0_se.{role}')['bias'],
                                  state[f'blocks.0.0.se.{timm}.bias'])
  check_conv('blocks_0_project_conv', 'blocks.0.0.conv_pw')
  check_bn('blocks_0_project_bn', 'blocks.0.0.bn2')
  # blocks_1 = blocks.1.0: InvertedResidual (conv_pw expands, conv_pwl projects).
  check_conv('blocks_1_expand_conv', 'blocks.1.0.conv_pw')
  check_bn('blocks_1_expand_bn', 'blocks.1.0.bn1')
  check_conv('blocks_1_dwconv', 'blocks.1.0.conv_dw', DEPTHWISE)
  check_bn('blocks_1_dw_bn', 'blocks.1.0.bn2')
  check_conv('blocks_1_project_conv', 'blocks.1.0.conv_pwl')
  check_bn('blocks_1_project_bn', 'blocks.1.0.bn3')
  # Stage-major order: blocks_2 = blocks.1.1, blocks_3 = blocks.2.0, ...
  check_conv('blocks_2_dwconv', 'blocks.1.1.conv_dw', DEPTHWISE)
  check_conv('blocks_3_dwconv', 'blocks.2.0.conv_dw', DEPTHWISE)
  check_conv('blocks_9_expand_conv', 'blocks.4.1.conv_pw')
  check_bn('blocks_15_project_bn', 'blocks.6.0.bn3')
  check_conv('head_conv', 'conv_head')
  check_bn('head_bn', 'bn2')
  head = _weights(b0, 'head_dense')
  np.testing.assert_array_equal(head['kernel'], state['classifier.weight'].T)
  np.testing.assert_array_equal(head['bias'], state['classifier.bias'])

  # A bijection: each weight holds the values of exactly one tensor.
  by_values = {np.sort(a, axis=None).tobytes(): n for n, a in state.items()
               if a.dtype == np.float32}
  sources = [by_values.get(np.sort(w.numpy(), axis=None).tobytes())
             for w in b0.weights]
  assert None not in sources and len(set(sources)) == 311


def test_mapping_source_and_low_precision_files(b0, state, tmp_path):
  report = timm_weights.load_timm_weights(b0, state)
  assert report.source == '<state dict>' and report.dtypes == ('float32',)
  for dtype, expect in (('F16', lambda a: a.astype(np.float16)),
                        ('BF16', sd.bf16_truncate)):
    path = sd.write_safetensors(tmp_path / f'{dtype}.safetensors', state,
                                float_dtype=dtype)
    report = timm_weights.load_timm_weights(b0, path)
    assert report.dtypes == (dtype,)
    np.testing.assert_array_equal(
        _weights(b0, 'blocks_4_dwconv')['kernel'],
        expect(state['blocks.2.1.conv_dw.weight']).astype(
            np.float32).transpose(DEPTHWISE))


def _mismatch(model, state, tmp_path):
  path = sd.write_safetensors(tmp_path / 'bad.safetensors', state)
  before = [w.numpy() for w in model.weights]
  with pytest.raises(efficientnet.CheckpointMismatchError) as info:
    timm_weights.load_timm_weights(model, path)
  for old, w in zip(before, model.weights):  # all-or-nothing
    np.testing.assert_array_equal(old, w.numpy())
  message = str(info.value)
  assert message.startswith(path)
  return message.splitlines()[0], message


def test_missing_unexpected_and_wrong_shape_name_the_tensor(b0, state,
                                                            tmp_path):
  missing = dict(state)
  del missing['blocks.3.1.bn2.running_var']
  first, _ = _mismatch(b0, missing, tmp_path)
  assert "tensor 'blocks.3.1.bn2.running_var' is missing" in first

  wrong = {**state, 'blocks.1.0.conv_dw.weight': np.zeros((96, 1, 5, 5),
                                                          np.float32)}
  first, _ = _mismatch(b0, wrong, tmp_path)
  assert ('tensor blocks.1.0.conv_dw.weight has shape [96, 1, 5, 5], '
          'expected [96, 1, 3, 3]') in first

  extra = {**state, 'blocks.0.0.conv_pwl.weight': np.zeros((16, 32, 1, 1),
                                                           np.float32)}
  first, message = _mismatch(b0, extra, tmp_path)
  assert "'blocks.0.0.conv_pwl.weight' (shape [16, 32, 1, 1]) has no place" in (
      first)
  assert 'unexpected in the state dict (1)' in message


def test_wrong_model_size_and_classes_are_named(state, tmp_path):
  tiny = efficientnet.build_model('efficientnet-b0', 10, image_size=32,
                                  width_coefficient=0.25,
                                  depth_coefficient=0.25, name='tiny')
  first, message = _mismatch(tiny, state, tmp_path)
  assert ('(stem 32, head 1280, stages [1, 2, 2, 3, 3, 4, 1] (16 blocks), '
          '1000 classes) does not fit model ' in first)
  assert ("'tiny' (stem 8, head 320, stages [1, 1, 1, 1, 1, 1, 1] (7 blocks), "
          '10 classes); it looks like efficientnet-b0; it has 1000 classes, '
          'the model 10 (num_classes)') in first
  assert 'wrong shape' in message


def test_architecture_guesses_every_size():
  for name in efficientnet.list_models():
    arch = timm_weights.spec_architecture(name)
    shapes = sd.stage_shapes(arch.stem_filters, arch.head_filters,
                             arch.stage_sizes)
    assert timm_weights.state_dict_architecture(shapes) == arch
    assert timm_weights.guess_model_names(shapes) == [name]
  b3 = timm_weights.spec_architecture('efficientnet-b3')
  assert (b3.stem_filters, b3.head_filters, b3.stage_sizes) == (
      40, 1536, (2, 3, 3, 5, 5, 6, 2))  # 26 blocks, as timm's B3
  assert timm_weights.guess_model_names(sd.stage_shapes(32, 1280, [1])) == []


@pytest.mark.parametrize('kwargs', [
    dict(width_coefficient=0.25, depth_coefficient=0.25),  # equal widths
    dict(width_coefficient=0.1, depth_coefficient=2.0, small_image=True),
])
def test_model_stages_of_narrow_and_small_image_models(kwargs):
  model = efficientnet.build_model('efficientnet-b0', 10, image_size=32,
                                   **kwargs)
  spec = timm_weights.spec_architecture(
      'efficientnet-b0', width_coefficient=kwargs['width_coefficient'],
      depth_coefficient=kwargs['depth_coefficient'], num_classes=10)
  assert timm_weights.model_architecture(model) == spec


def test_read_tensors_decodes_each_dtype(tmp_path):
  values = np.array([[1.5, -2.25, 3.0e-3], [65504.0, -0.0, 7.0]], np.float32)
  for dtype in ('F32', 'F16', 'F64', 'BF16', 'I64', 'I32', 'U8', 'BOOL'):
    array = values.astype(np.float16 if dtype == 'F16' else np.float32)
    if dtype in ('I64', 'I32', 'U8', 'BOOL'):
      array = np.abs(values).astype({'I64': np.int64, 'I32': np.int32,
                                     'U8': np.uint8, 'BOOL': bool}[dtype])
    path = tmp_path / f'{dtype}.safetensors'
    with open(path, 'wb') as f:
      data = sd.encode(array, dtype)
      header = json.dumps({'x': {'dtype': dtype, 'shape': [2, 3],
                                 'data_offsets': [0, len(data)]}}).encode()
      f.write(len(header).to_bytes(8, 'little') + header + data)
    (got,) = safetensors_file.read_tensors(str(path)).values()
    expected = sd.bf16_truncate(array) if dtype == 'BF16' else array
    np.testing.assert_array_equal(got, expected)
    assert got.shape == (2, 3), dtype


def _with_header(raw: bytes, edit) -> bytes:
  """`raw` with its JSON header edited by `edit(dict)` (length kept right)."""
  length = int.from_bytes(raw[:8], 'little')
  header = json.loads(raw[8:8 + length])
  edit(header)
  new = json.dumps(header).encode()
  return len(new).to_bytes(8, 'little') + new + raw[8 + length:]


@pytest.mark.parametrize('mutate, message', [
    (lambda raw: raw[:5], 'shorter than the 8-byte header length'),
    (lambda raw: (10**9).to_bytes(8, 'little') + raw[8:],
     'header length 1000000000 does not fit'),
    (lambda raw: raw[:8] + b'[' + raw[9:], 'header is not JSON'),
    (lambda raw: raw[:-4], "tensor 'b' (F32 [2, 2], 16 bytes) has "
     'data_offsets [16, 32] that do not fit'),
    (lambda raw: _with_header(raw, lambda h: h['a'].update(dtype='F8_E4M3')),
     "tensor 'a' has dtype 'F8_E4M3'"),
    (lambda raw: _with_header(raw, lambda h: h['a'].update(shape=[2, 3])),
     "tensor 'a' (F32 [2, 3], 24 bytes) has data_offsets [0, 16]"),
    (lambda raw: _with_header(raw, lambda h: h['a'].pop('shape')),
     "tensor 'a' has a malformed header entry"),
])
def test_malformed_files_are_named(tmp_path, mutate, message):
  path = sd.write_safetensors(tmp_path / 'x.safetensors', {
      'a': np.ones((2, 2), np.float32), 'b': np.ones((2, 2), np.float32)})
  raw = pathlib.Path(path).read_bytes()
  pathlib.Path(path).write_bytes(mutate(raw))
  with pytest.raises(safetensors_file.SafetensorsError) as info:
    safetensors_file.read_header(path)
  assert str(info.value).startswith(path) and message in str(info.value)


def test_missing_file_and_absent_name(tmp_path):
  with pytest.raises(errors.MissingFileError, match='nope.safetensors: no such'):
    safetensors_file.read_header(str(tmp_path / 'nope.safetensors'))
  path = sd.write_safetensors(tmp_path / 'x.safetensors',
                              {'a': np.ones(2, np.float32)})
  with pytest.raises(safetensors_file.SafetensorsError,
                     match="no tensor named 'b'"):
    safetensors_file.read_tensors(path, ['a', 'b'])


# --------------------------------------------------------------------------
# (b) Against timm itself (skips without torch + timm).
# --------------------------------------------------------------------------
REFERENCE_SCRIPT = pathlib.Path(__file__).with_name('timm_reference.py')
# Max |ours - timm| / max |timm logits| allowed, both float32. Measured
# 2026-12-05: about 3e-7 (docs/efficientnet.md).
RELATIVE_TOLERANCE = 1e-4


def _run_timm_reference(*args: str) -> None:
  """Runs timm_reference.py here (torch + timm importable) or under
  $TIMM_PYTHON; skips when neither has timm."""
  if all(importlib.util.find_spec(m) for m in ('torch', 'timm',
                                               'safetensors')):
    command = [sys.executable]
  elif os.environ.get('TIMM_PYTHON'):
    command = [os.environ['TIMM_PYTHON']]
  else:
    pytest.skip('needs torch + timm + safetensors here, or TIMM_PYTHON=<a '
                'python with them> (docs/efficientnet.md); CI has neither')
  result = subprocess.run([*command, str(REFERENCE_SCRIPT), *args],
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]


def _timm_reference(output_dir, timm_model, image_size):
  """(state dict path, reference.npz, info) written with timm."""
  _run_timm_reference(f'--model={timm_model}', f'--image_size={image_size}',
                      f'--output_dir={output_dir}')
  reference = np.load(output_dir / 'reference.npz')
  return output_dir / 'model.safetensors', reference, json.loads(
      str(reference['info']))


def _relative(ours, theirs):
  return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


@pytest.mark.slow
@pytest.mark.parametrize('timm_model, model_name, image_size', [
    ('tf_efficientnet_b0', 'efficientnet-b0', 224),
    ('tf_efficientnet_b3', 'efficientnet-b3', 300),
])
def test_logits_match_timm(tmp_path, timm_model, model_name, image_size):
  path, reference, info = _timm_reference(tmp_path, timm_model, image_size)
  # timm normalises 0-1 pixels outside; ours does the same on 0-255 inside.
  np.testing.assert_allclose(efficientnet.IMAGENET_MEAN_RGB,
                             np.multiply(info['mean'], 255), rtol=1e-7)
  np.testing.assert_allclose(efficientnet.IMAGENET_STDDEV_RGB,
                             np.multiply(info['std'], 255), rtol=1e-7)
  assert info['bn_eps'] == [efficientnet.BATCH_NORM_EPSILON]

  output = tmp_path / 'converted.keras'
  convert_checkpoint.convert(convert_checkpoint.ConvertConfig(
      model_name=None, checkpoint=str(path), output=str(output)))
  model = keras.models.load_model(str(output))
  assert model.name == model_name and model.input_shape[1] is None  # any size
  logits = model.predict(reference['images'], verbose=0)
  relative = _relative(logits, reference['logits'])
  print(f'\n{timm_model} @{image_size}px (timm {info["timm"]}, torch '
        f'{info["torch"]}): max |ours - timm| / max |timm| = {relative:.2e} '
        f'(float32); timm float32 vs float64: '
        f'{_relative(reference["logits"], reference["logits64"]):.2e}')
  assert relative < RELATIVE_TOLERANCE
  assert (logits.argmax(-1) == reference['logits'].argmax(-1)).all()

  if model_name == 'efficientnet-b0':  # the mapping itself, past f32 noise
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy('float64')
    try:
      model64 = efficientnet.build_model(model_name, image_size=image_size)
    finally:
      keras.config.set_dtype_policy(policy)
    timm_weights.load_timm_weights(model64, path)
    relative64 = _relative(model64.predict(
        reference['images'].astype(np.float64), verbose=0),
                           reference['logits64'])
    print(f'{timm_model} float64 (normalisation and classifier stay '
          f'float32): {relative64:.2e}')
    assert relative64 < 1e-5


@pytest.mark.slow
def test_every_ns_architecture_fits_timms_names_and_shapes(tmp_path):
  """B0-B7 and L2 from timm (on the meta device: no weights): every name and
  shape fits the model of the inferred size, and timm's input sizes are the
  converter's defaults."""
  _run_timm_reference('--shapes', f'--output_dir={tmp_path}')
  timm = json.loads((tmp_path / 'shapes.json').read_text())
  for arch, state_shapes in timm['shapes'].items():
    shapes = {n: tuple(s) for n, s in state_shapes.items()}
    name = arch.replace('tf_efficientnet_', 'efficientnet-')
    assert timm_weights.guess_model_names(shapes) == [name]
    model = efficientnet.build_model(name, image_size=32)
    table = timm_weights.check_fits(model, shapes, arch)  # raises on misfit
    assert len(table) == len(shapes) - sum(
        n.endswith('.num_batches_tracked') for n in shapes)
    del model, table
    keras.backend.clear_session()
  sizes = {tag: efficientnet.default_image_size(
      tag.split('.')[0].replace('tf_efficientnet_', 'efficientnet-'),
      for_eval=True) for tag in timm['input_sizes']}
  sizes['tf_efficientnet_l2.ns_jft_in1k_475'] = 475  # --image_size=475
  assert timm['input_sizes'] == sizes


# --------------------------------------------------------------------------
# (c) Against timm's logits committed in tests/efficientnet/timm_fixture/
# (no torch: runs in CI).
# --------------------------------------------------------------------------
FIXTURE_DIR = pathlib.Path(__file__).with_name('timm_fixture')


def _fixture(case):
  """(safetensors path, reference.npz, info) of a committed case."""
  directory = FIXTURE_DIR / case
  reference = np.load(directory / 'reference.npz')
  return (str(directory / 'model.safetensors'), reference,
          json.loads(str(reference['info'])))


def _fixture_logits(model, source, images):
  timm_weights.load_timm_weights(model, source)
  return model(images, training=False).numpy()


@pytest.mark.parametrize('case', sorted(timm_reference.FIXTURE_CASES))
def test_committed_fixture_logits_match_timm(case):
  """Random-weight timm models at tiny multipliers (timm_reference.py
  --fixture): our build_model with the same multipliers, loaded from timm's
  own safetensors, gives timm's logits.

  Guard against a wrong mapping passing: every tensor is random, so a tensor
  in the wrong place or layout changes the logits. Checked here with two
  errors the shape check cannot see: a square 1x1 kernel loaded [in, out]
  instead of [out, in], and (ds_skip) stage 0's two same-shape blocks
  swapped, as a wrong `blocks.s.j` order would.
  """
  path, reference, info = _fixture(case)
  settings = timm_reference.FIXTURE_CASES[case]
  assert info['case'] == case and info['model'] == 'tf_efficientnet_b0'
  for key in ('width_coefficient', 'depth_coefficient', 'num_classes',
              'image_size', 'seed'):
    assert info[key] == settings[key], key
  assert info['bn_eps'] == [efficientnet.BATCH_NORM_EPSILON]
  np.testing.assert_allclose(efficientnet.IMAGENET_MEAN_RGB,
                             np.multiply(info['mean'], 255), rtol=1e-7)
  np.testing.assert_allclose(efficientnet.IMAGENET_STDDEV_RGB,
                             np.multiply(info['std'], 255), rtol=1e-7)
  images = reference['images']
  assert images.dtype == np.uint8 and images.shape == (
      settings['batch_size'], info['image_size'], info['image_size'], 3)
  images = images.astype(np.float32)

  model = efficientnet.build_model(
      'efficientnet-b0', info['num_classes'], info['image_size'],
      width_coefficient=info['width_coefficient'],
      depth_coefficient=info['depth_coefficient'], name=case)
  assert timm_weights.model_architecture(model).stage_sizes == tuple(
      info['stage_sizes'])
  layer_names = {layer.name for layer in model.layers}
  ds_blocks = info['stage_sizes'][0]
  for i, skip in enumerate(info['stage0_has_skip']):  # timm's has_skip
    assert f'blocks_{i}_expand_conv' not in layer_names  # DepthwiseSeparable
    assert (f'blocks_{i}_add' in layer_names) == skip
  assert f'blocks_{ds_blocks}_expand_conv' in layer_names
  if case == 'ds_skip':  # the second DepthwiseSeparable block, with a skip
    assert ds_blocks == 2 and info['stage0_has_skip'] == [True, True]

  report = timm_weights.load_timm_weights(model, path)
  assert report.num_variables == len(model.weights)
  assert report.dtypes == ('F32',)
  logits = model(images, training=False).numpy()
  relative = _relative(logits, reference['logits'])
  print(f'\n{case} (w {info["width_coefficient"]}, d '
        f'{info["depth_coefficient"]}, {info["image_size"]}px, timm '
        f'{info["timm"]}, torch {info["torch"]}): max |ours - timm| / max '
        f'|timm| = {relative:.2e}; timm float32 vs float64: '
        f'{_relative(reference["logits"], reference["logits64"]):.2e}')
  assert relative < RELATIVE_TOLERANCE
  assert (logits.argmax(-1) == reference['logits'].argmax(-1)).all()
  # The logits depend on the image (calibrated BN statistics), so early
  # layers count too.
  assert _relative(reference['logits'][1:], reference['logits'][:1]) > 0.1

  state = safetensors_file.read_tensors(path)
  wrong = {}
  name = 'blocks.0.0.conv_pw.weight'
  assert state[name].shape[:2] == (8, 8)  # square: the shape check passes
  wrong['transposed 1x1 kernel'] = {
      **state, name: state[name].transpose(1, 0, 2, 3)}
  if case == 'ds_skip':
    wrong['stage-0 blocks swapped'] = {
        n.replace('blocks.0.0.', 'blocks.0.X.').replace(
            'blocks.0.1.', 'blocks.0.0.').replace('blocks.0.X.',
                                                  'blocks.0.1.'): a
        for n, a in state.items()}
  for what, bad in wrong.items():
    bad_relative = _relative(_fixture_logits(model, bad, images),
                             reference['logits'])
    print(f'{case}, {what}: {bad_relative:.2e}')
    assert bad_relative > 100 * RELATIVE_TOLERANCE, what
