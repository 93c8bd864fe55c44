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
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

# timm's Noisy Student weights: architecture -> pretrained tags.
NS_MODELS = {f'tf_efficientnet_b{i}': ('ns_jft_in1k',) for i in range(8)}
NS_MODELS['tf_efficientnet_l2'] = ('ns_jft_in1k', 'ns_jft_in1k_475')


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


def write_reference(model_name: str, image_size: int, output_dir: str, *,
                    batch_size: int = 2, seed: int = 0) -> dict:
  """Builds, randomises and runs `model_name`; writes the two files."""
  import safetensors.torch  # pylint: disable=g-import-not-at-top
  import timm  # pylint: disable=g-import-not-at-top
  from timm.data import IMAGENET_DEFAULT_MEAN  # pylint: disable=g-import-not-at-top
  from timm.data import IMAGENET_DEFAULT_STD  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top

  model = timm.create_model(model_name, pretrained=False).eval()
  randomize(model, seed)
  images = np.random.default_rng(seed).uniform(
      0, 255, (batch_size, image_size, image_size, 3)).astype(np.float32)
  mean = np.asarray(IMAGENET_DEFAULT_MEAN, np.float32)
  std = np.asarray(IMAGENET_DEFAULT_STD, np.float32)
  normalized = ((images / 255.0 - mean) / std).transpose(0, 3, 1, 2)
  normalized = np.ascontiguousarray(normalized)
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
  np.savez(os.path.join(output_dir, 'reference.npz'), images=images,
           logits=logits.numpy().astype(np.float32),
           logits64=logits64.numpy(),
           info=np.asarray(json.dumps(info)))
  return info


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
  parser.add_argument('--image_size', type=int)
  parser.add_argument('--output_dir', required=True)
  parser.add_argument('--batch_size', type=int, default=2)
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args()
  if args.shapes:
    print(json.dumps(write_shapes(args.output_dir)['input_sizes']))
    return
  if not args.model or not args.image_size:
    parser.error('--model and --image_size are required (or --shapes)')
  info = write_reference(args.model, args.image_size, args.output_dir,
                         batch_size=args.batch_size, seed=args.seed)
  print(json.dumps(info))


if __name__ == '__main__':
  main()
