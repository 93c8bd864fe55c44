"""Tests for efficientnet/params.py: size table, block strings, scaling."""

import dataclasses
import re

import pytest

from efficientnet import params

# (width, depth, train res, eval res, dropout): anchors.md §1.1 and §2.3.
EXPECTED_SPECS = {
    'efficientnet-b0': (1.0, 1.0, 224, 224, 0.2),
    'efficientnet-b1': (1.0, 1.1, 240, 240, 0.2),
    'efficientnet-b2': (1.1, 1.2, 260, 260, 0.3),
    'efficientnet-b3': (1.2, 1.4, 300, 300, 0.3),
    'efficientnet-b4': (1.4, 1.8, 380, 380, 0.4),
    'efficientnet-b5': (1.6, 2.2, 456, 456, 0.4),
    'efficientnet-b6': (1.8, 2.6, 528, 528, 0.5),
    'efficientnet-b7': (2.0, 3.1, 600, 600, 0.5),
    'efficientnet-l0': (2.8, 3.7, 380, 500, 0.5),
    'efficientnet-l1': (3.9, 3.7, 380, 500, 0.5),
    'efficientnet-l2': (4.3, 5.3, 475, 800, 0.5),
}
# Well-known facts about the published models: feature width before the
# classifier (keras.applications / timm num_features) and number of blocks.
HEAD_WIDTH = {'efficientnet-b0': 1280, 'efficientnet-b1': 1280,
              'efficientnet-b2': 1408, 'efficientnet-b3': 1536,
              'efficientnet-b4': 1792, 'efficientnet-b5': 2048,
              'efficientnet-b6': 2304, 'efficientnet-b7': 2560,
              'efficientnet-l2': 5504}
NUM_BLOCKS = {'efficientnet-b0': 16, 'efficientnet-b1': 23,
              'efficientnet-b2': 23, 'efficientnet-b3': 26,
              'efficientnet-b4': 32, 'efficientnet-b5': 39,
              'efficientnet-b6': 45, 'efficientnet-b7': 55}


def test_list_models_is_the_paper_set_in_size_order():
  assert params.list_models() == list(EXPECTED_SPECS)


@pytest.mark.parametrize('name', list(EXPECTED_SPECS))
def test_spec_table(name):
  spec = params.get_spec(name)
  assert (spec.width_coefficient, spec.depth_coefficient,
          spec.train_resolution, spec.eval_resolution,
          spec.dropout_rate) == EXPECTED_SPECS[name]
  assert spec.name == name


def test_get_spec_unknown_name_lists_known_names():
  with pytest.raises(ValueError, match=r"'efficientnet-b9'.*efficientnet-l2"):
    params.get_spec('efficientnet-b9')


def test_default_image_size_train_and_eval():
  assert params.default_image_size('efficientnet-l2') == 475
  assert params.default_image_size('efficientnet-l2', for_eval=True) == 800
  assert params.default_image_size('efficientnet-b3', for_eval=True) == 300


def test_decode_block_string():
  args = params.decode_block_string('r2_k3_s22_e6_i16_o24_se0.25')
  assert args == params.BlockArgs(
      kernel_size=3, num_repeat=2, input_filters=16, output_filters=24,
      expand_ratio=6, id_skip=True, strides=(2, 2), se_ratio=0.25,
      conv_type=0)
  assert not args.has_skip and args.has_se
  noskip = params.decode_block_string('r1_k5_s11_e1_i8_o8_noskip')
  assert not noskip.id_skip and not noskip.has_skip and not noskip.has_se


@pytest.mark.parametrize('block_string', params.BASE_BLOCK_STRINGS + (
    'r1_k5_s11_e1_i8_o8_noskip', 'r3_k7_s12_e4_i40_o80_se0.5'))
def test_encode_inverts_decode(block_string):
  args = params.decode_block_string(block_string)
  assert params.encode_block_string(args) == block_string
  assert params.decode_block_string(params.encode_block_string(args)) == args


def test_decode_accepts_explicit_conv_type_zero_and_any_order():
  assert params.decode_block_string('c0_se0.25_o24_i16_e6_s22_k3_r2') == (
      params.decode_block_string('r2_k3_s22_e6_i16_o24_se0.25'))


@pytest.mark.parametrize('block_string, problem', [
    ('r2_k3_s2_e6_i16_o24', 'two digits'),
    ('r2_k3_e6_i16_o24', 'missing'),
    ('r2_k3_s22_e6_i16_o24_x5', 'unknown token'),
    ('r2_k3_s22_e6_i16_o24_k5', 'twice'),
    ('r2_k3_s22_e6_i16_o24_se0.2.5', 'malformed'),
    ('r2_k3_s22_e6_i16_o24_c1', 'conv type'),
    ('r0_k3_s22_e6_i16_o24', 'positive'),
    ('r2_k3_s22_e6_i16_o24_', 'unknown token'),
])
def test_decode_errors_name_the_string(block_string, problem):
  with pytest.raises(ValueError, match=re.escape(repr(block_string)) +
                     '.*' + problem):
    params.decode_block_string(block_string)


def test_small_image_rows_change_only_stages_1_and_2_strides():
  normal = params.decode_block_strings(params.base_block_strings())
  small = params.decode_block_strings(params.base_block_strings(True))
  assert params.base_block_strings(True)[1:3] == [
      'r2_k3_s11_e6_i16_o24_se0.25', 'r2_k5_s11_e6_i24_o40_se0.25']
  for i, (a, b) in enumerate(zip(normal, small)):
    if i in (1, 2):
      assert a.strides == (2, 2) and b.strides == (1, 1)
      assert dataclasses.replace(a, strides=(1, 1)) == b
    else:
      assert a == b


@pytest.mark.parametrize('filters, width, expected', [
    (32, 1.0, 32), (32, 1.1, 32), (32, 1.4, 48), (32, 2.0, 64),
    (32, 4.3, 136), (16, 1.1, 16), (24, 1.2, 32), (1280, 4.3, 5504),
    (119, 0.1, 16),   # 11.9 rounds down to 8, >10% below: bumped to 16
    (4, 0.5, 8),      # never below the divisor
    (40, None, 40),   # no multiplier: unchanged
])
def test_round_filters(filters, width, expected):
  assert params.round_filters(filters, width) == expected


@pytest.mark.parametrize('repeats, depth, expected', [
    (1, 1.0, 1), (2, 1.1, 3), (4, 3.1, 13), (3, 5.3, 16), (1, 5.3, 6),
    (3, None, 3)])
def test_round_repeats(repeats, depth, expected):
  assert params.round_repeats(repeats, depth) == expected


@pytest.mark.parametrize('name', list(HEAD_WIDTH))
def test_head_width_matches_published_models(name):
  spec = params.get_spec(name)
  assert params.round_filters(params.HEAD_FILTERS,
                              spec.width_coefficient) == HEAD_WIDTH[name]


@pytest.mark.parametrize('name', list(NUM_BLOCKS))
def test_block_count_matches_published_models(name):
  spec = params.get_spec(name)
  blocks = params.scale_blocks(
      params.decode_block_strings(params.BASE_BLOCK_STRINGS),
      spec.width_coefficient, spec.depth_coefficient)
  assert len(blocks) == NUM_BLOCKS[name]


def test_scale_blocks_first_block_of_stage_takes_stride_and_input_width():
  blocks = params.scale_blocks(
      params.decode_block_strings(params.BASE_BLOCK_STRINGS), 1.4, 1.8)
  # B4: stage 1 (16 -> 24 at width 1.0) becomes 24 -> 32, repeated 4 times.
  stage1 = blocks[2:6]
  assert [(b.input_filters, b.output_filters, b.strides) for b in stage1] == [
      (24, 32, (2, 2)), (32, 32, (1, 1)), (32, 32, (1, 1)), (32, 32, (1, 1))]
  assert [b.has_skip for b in stage1] == [False, True, True, True]
  assert all(b.num_repeat == 1 for b in blocks)


def test_se_reduced_filters_uses_block_input_width():
  assert params.se_reduced_filters(16, 0.25) == 4
  assert params.se_reduced_filters(3, 0.25) == 1
