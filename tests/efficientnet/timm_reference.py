r"""Writes a random-weight timm EfficientNet and its logits, for comparison.

Runs under a Python with torch, timm and safetensors (no TensorFlow needed):

  /work/timm-venv/bin/python tests/efficientnet/timm_reference.py \
    --model=tf_efficientnet_b0 --image_size=224 --output_dir=/tmp/ref_b0

writes `<output_dir>/model.safetensors` (timm's state dict, saved with
`safetensors.torch.save_file`) and `<output_dir>/reference.npz` with
`images` float32 [N, S, S, 3] in [0, 255] and `logits` float32 [N, 1000]:
timm's eval-mode output for `(images / 255 - mean) / std` (timm's
IMAGENET_DEFAULT_MEAN/STD, NCHW), and `logits64`, the same model run in
float64 (from the float32 weights, the float32 normalised images), to tell
mapping errors from float32 round-off. Every weight, bias and BN running statistic
is random (seeded), so a wrong mapping cannot hide behind an init value.
With --shapes instead of --model it writes `<output_dir>/shapes.json`: the
state dict {name: shape} of every Noisy Student architecture (built on
torch's 'meta' device, so L2 costs no memory) and the input size of each
`*.ns_jft_in1k*` pretrained tag.
tests/efficientnet/test_timm_weights.py runs it through $TIMM_PYTHON.

With --fixture it writes the small committed fixture that CI compares with
(no torch there), one folder per case of `FIXTURE_CASES`:

  /work/timm-venv/bin/python tests/efficientnet/timm_reference.py \
    --fixture --output_dir=tests/efficientnet/timm_fixture

`<output_dir>/<case>/model.safetensors` (float32) and `reference.npz`, as
above except that `images` are uint8 [N, S, S, 3] (whole numbers 0-255, so
float32(images) is exactly what timm saw), and `info` also holds the case,
`width_coefficient`, `depth_coefficient`, `num_classes`, `seed`, the blocks
per stage and each stage-0 block's `has_skip` (timm's). Their BN running
statistics are calibrated on 8 other random images (`calibrate_bn`), so the
logits depend on the image and on every tensor. The models are
timm's B0 generator (`timm.models.efficientnet._gen_efficientnet`, with
`tf_efficientnet_b0`'s 'same' padding and BN epsilon 1e-3) at tiny channel
and depth multipliers: `efficientnet.build_model('efficientnet-b0',
num_classes, image_size, width_coefficient=..., depth_coefficient=...)`
builds the same network. --width_coefficient / --depth_coefficient /
--num_classes do the same for a single --model=tf_efficientnet_b0 run.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

# timm's Noisy Student weights: architecture -> pretrained tags.
NS_MODELS = {f'tf_efficientnet_b{i}': ('ns_jft_in1k',) for i in range(8)}
NS_MODELS['tf_efficientnet_l2'] = ('ns_jft_in1k', 'ns_jft_in1k_475')

# The committed fixture (tests/efficientnet/timm_fixture/<case>/), B0 rows at
# tiny multipliers; test_timm_weights.py builds each with build_model.
# width 0.1: stem 8, stage outputs 8, 8, 8, 8, 16, 24, 32, head 128; the one
#   stage-0 block (DepthwiseSeparable 8 -> 8, stride 1) has a skip.
# width 0.05, depth 1.1 (B1's): stages [2, 3, 3, 4, 4, 5, 2], outputs 8 but
#   the last two stages 16, head 64; stage 0 has two DepthwiseSeparable blocks
#   (blocks.0.0 and blocks.0.1, both 8 -> 8 with a skip, the same shapes),
#   and every later stage has blocks.s.j with j > 0.
# BN statistics of the fixture models are calibrated (`calibrate_bn`) on
# this many random images, so that the logits depend on the image.
FIXTURE_CALIBRATION_IMAGES = 8
FIXTURE_CASES = {
    'tiny_b0': dict(width_coefficient=0.1, depth_coefficient=0.25,
                    num_classes=10, image_size=64, batch_size=3, seed=1),
    'ds_skip': dict(width_coefficient=0.05, depth_coefficient=1.1,
                    num_classes=10, image_size=64, batch_size=3, seed=2),
}


def randomize(model, seed: int) -> None:
  """Random weights and BN statistics (seeded) that keep activations O(0.3).

  Kernels: normal(0, sqrt(2 / fan_in)); BN gamma U(0.25, 0.75), beta and
  running_mean N(0, 0.2^2), running_var U(0.5, 1.5); SE and classifier
  biases N(0, 0.2^2). With BN gamma U(0.5, 1.5) instead, B0's activations
  grow to ~1e3 and float32 round-off alone reaches 4e-5 of the logits.
  """
  import torch  # pylint: disable=g-import-not-at-top

  generator = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, tensor in model.state_dict().items():
      if not tensor.is_floating_point():
        continue  # num_batches_tracked
      if name.endswith('running_var'):
        new = torch.rand(tensor.shape, generator=generator) + 0.5
      elif name.endswith('running_mean'):
        new = torch.randn(tensor.shape, generator=generator) * 0.2
      elif tensor.ndim == 1 and 'bn' in name.rsplit('.', 2)[-2]:
        new = (torch.rand(tensor.shape, generator=generator) * 0.5 + 0.25
               if name.endswith('weight') else
               torch.randn(tensor.shape, generator=generator) * 0.2)
      elif tensor.ndim == 1:  # SE and classifier biases
        new = torch.randn(tensor.shape, generator=generator) * 0.2
      else:  # kernels: He-style normal on the fan-in
        fan_in = tensor[0].numel()
        new = torch.randn(tensor.shape, generator=generator) * (
            2.0 / fan_in) ** 0.5
      tensor.copy_(new)


def calibrate_bn(model, normalized, seed: int) -> None:
  """BN running statistics from the activations, then perturbed (seeded).

  In one eval-mode pass over `normalized` (NCHW float32 images), each BN's
  running mean/var are set, just before it runs, to the per-channel mean and
  variance of its actual input, then mean += N(0, 0.2^2) x std and
  var x U(0.5, 1.5). Each BN sees the earlier ones already calibrated, so
  the activations stay O(1) at any depth. Without this, in the tiny fixture
  models `randomize`'s statistics (gamma ~0.5, beta and mean ~0.2) wash the
  image out: the logits hardly depend on the input, and a misplaced early
  tensor moved them by 1e-7 of their size.
  """
  import torch  # pylint: disable=g-import-not-at-top

  generator = torch.Generator().manual_seed(seed)

  def set_statistics(module, inputs):
    x = inputs[0].double()
    mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3))
    std = var.sqrt()
    module.running_mean.copy_(
        mean + torch.randn(std.shape, generator=generator).double() * 0.2 *
        std)
    module.running_var.copy_(
        var * (torch.rand(std.shape, generator=generator).double() + 0.5))

  hooks = [m.register_forward_pre_hook(set_statistics)
           for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
  model.eval()
  try:
    with torch.no_grad():
      model(torch.from_numpy(normalized))
  finally:
    for hook in hooks:
      hook.remove()


def create_model(model_name: str, *, width_coefficient: float | None = None,
                 depth_coefficient: float | None = None,
                 num_classes: int | None = None):
  """timm's `model_name`, or with multipliers / classes, its generator.

  With `width_coefficient` or `depth_coefficient` only tf_efficientnet_b0 is
  accepted: it is built by `_gen_efficientnet` (B0's rows) with the
  `tf_` settings (BN epsilon 1e-3, TF 'same' padding) and the multipliers
  as timm's `channel_multiplier` / `depth_multiplier`.
  """
  import timm  # pylint: disable=g-import-not-at-top
  from timm.models import efficientnet  # pylint: disable=g-import-not-at-top

  kwargs = {} if num_classes is None else {'num_classes': num_classes}
  if width_coefficient is None and depth_coefficient is None:
    return timm.create_model(model_name, pretrained=False, **kwargs)
  if model_name != 'tf_efficientnet_b0':
    raise ValueError('--width_coefficient / --depth_coefficient need '
                     f'--model=tf_efficientnet_b0, got {model_name}')
  return efficientnet._gen_efficientnet(  # pylint: disable=protected-access
      model_name, channel_multiplier=width_coefficient or 1.0,
      depth_multiplier=depth_coefficient or 1.0, pretrained=False,
      bn_eps=efficientnet.BN_EPS_TF_DEFAULT, pad_type='same', **kwargs)


def write_reference(model_name: str, image_size: int, output_dir: str, *,
                    batch_size: int = 2, seed: int = 0,
                    width_coefficient: float | None = None,
                    depth_coefficient: float | None = None,
                    num_classes: int | None = None,
                    uint8_images: bool = False,
                    calibration_images: int = 0,
                    extra_info: dict | None = None) -> dict:
  """Builds, randomises and runs `model_name`; writes the two files.

  `uint8_images`: whole-number pixels stored as uint8 (the fixture: a
  quarter of the bytes); otherwise uniform float32 in [0, 255).
  `calibration_images`: if > 0, `calibrate_bn` on that many other random
  images (drawn after the stored ones).
  """
  import safetensors.torch  # pylint: disable=g-import-not-at-top
  import timm  # pylint: disable=g-import-not-at-top
  from timm.data import IMAGENET_DEFAULT_MEAN  # pylint: disable=g-import-not-at-top
  from timm.data import IMAGENET_DEFAULT_STD  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top

  model = create_model(model_name, width_coefficient=width_coefficient,
                       depth_coefficient=depth_coefficient,
                       num_classes=num_classes).eval()
  randomize(model, seed)
  rng = np.random.default_rng(seed)
  shape = (batch_size, image_size, image_size, 3)
  stored = (rng.integers(0, 256, shape, dtype=np.uint8) if uint8_images
            else rng.uniform(0, 255, shape).astype(np.float32))
  mean = np.asarray(IMAGENET_DEFAULT_MEAN, np.float32)
  std = np.asarray(IMAGENET_DEFAULT_STD, np.float32)

  def normalize(pixels):
    return np.ascontiguousarray(((pixels.astype(np.float32) / 255.0 - mean) /
                                 std).transpose(0, 3, 1, 2))

  normalized = normalize(stored)
  if calibration_images:
    calibrate_bn(model, normalize(rng.integers(
        0, 256, (calibration_images, *shape[1:]), dtype=np.uint8)), seed)
  with torch.no_grad():
    logits = model(torch.from_numpy(normalized))
    state = {k: v.detach().clone().contiguous()
             for k, v in model.state_dict().items()}
    logits64 = model.double()(torch.from_numpy(normalized.astype(np.float64)))
  os.makedirs(output_dir, exist_ok=True)
  safetensors.torch.save_file(state, os.path.join(output_dir,
                                                  'model.safetensors'))
  bn_eps = sorted({m.eps for m in model.modules()
                   if isinstance(m, torch.nn.BatchNorm2d)})
  info = {'model': model_name, 'image_size': image_size, 'timm':
          timm.__version__, 'torch': torch.__version__, 'bn_eps': bn_eps,
          'mean': list(IMAGENET_DEFAULT_MEAN),
          'std': list(IMAGENET_DEFAULT_STD)}
  if width_coefficient is not None or depth_coefficient is not None:
    info.update(width_coefficient=width_coefficient,
                depth_coefficient=depth_coefficient)
  if num_classes is not None:
    info['num_classes'] = num_classes
  if calibration_images:
    info['calibration_images'] = calibration_images
  info.update(extra_info or {})
  np.savez(os.path.join(output_dir, 'reference.npz'), images=stored,
           logits=logits.numpy().astype(np.float32),
           logits64=logits64.numpy(),
           info=np.asarray(json.dumps(info)))
  return info


def write_fixture(output_dir: str) -> dict:
  """Writes `<output_dir>/<case>/` for every case of FIXTURE_CASES."""
  infos = {}
  for case, settings in FIXTURE_CASES.items():
    settings = dict(settings)
    model = create_model(
        'tf_efficientnet_b0', width_coefficient=settings['width_coefficient'],
        depth_coefficient=settings['depth_coefficient'],
        num_classes=settings['num_classes'])
    extra = {'case': case, 'seed': settings['seed'],
             'stage_sizes': [len(stage) for stage in model.blocks],
             'stage0_has_skip': [bool(b.has_skip) for b in model.blocks[0]]}
    infos[case] = write_reference(
        'tf_efficientnet_b0', settings.pop('image_size'),
        os.path.join(output_dir, case), uint8_images=True,
        calibration_images=FIXTURE_CALIBRATION_IMAGES, extra_info=extra,
        **settings)
  return infos


def write_shapes(output_dir: str) -> dict:
  """Writes shapes.json: {'shapes': {arch: {name: shape}}, 'input_sizes':
  {'<arch>.<tag>': pixels}}."""
  import timm  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top

  shapes, sizes = {}, {}
  for arch, tags in NS_MODELS.items():
    with torch.device('meta'):
      model = timm.create_model(arch, pretrained=False)
    shapes[arch] = {k: list(v.shape) for k, v in model.state_dict().items()}
    for tag in tags:
      cfg = timm.models.get_pretrained_cfg(f'{arch}.{tag}')
      sizes[f'{arch}.{tag}'] = cfg.input_size[-1]
  result = {'shapes': shapes, 'input_sizes': sizes, 'timm': timm.__version__}
  os.makedirs(output_dir, exist_ok=True)
  with open(os.path.join(output_dir, 'shapes.json'), 'w') as f:
    json.dump(result, f)
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--model', help='timm model name, e.g. '
                      'tf_efficientnet_b0 (or --shapes)')
  parser.add_argument('--shapes', action='store_true',
                      help='write shapes.json of every NS architecture')
  parser.add_argument('--fixture', action='store_true',
                      help='write the committed fixture: one folder per '
                      'FIXTURE_CASES case')
  parser.add_argument('--image_size', type=int)
  parser.add_argument('--output_dir', required=True)
  parser.add_argument('--batch_size', type=int, default=2)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--width_coefficient', type=float,
                      help='timm channel_multiplier (tf_efficientnet_b0 only)')
  parser.add_argument('--depth_coefficient', type=float,
                      help='timm depth_multiplier (tf_efficientnet_b0 only)')
  parser.add_argument('--num_classes', type=int)
  args = parser.parse_args()
  if args.shapes:
    print(json.dumps(write_shapes(args.output_dir)['input_sizes']))
    return
  if args.fixture:
    print(json.dumps(write_fixture(args.output_dir), indent=1))
    return
  if not args.model or not args.image_size:
    parser.error('--model and --image_size are required (or --shapes, '
                 '--fixture)')
  info = write_reference(args.model, args.image_size, args.output_dir,
                         batch_size=args.batch_size, seed=args.seed,
                         width_coefficient=args.width_coefficient,
                         depth_coefficient=args.depth_coefficient,
                         num_classes=args.num_classes)
  print(json.dumps(info))


if __name__ == '__main__':
  main()
