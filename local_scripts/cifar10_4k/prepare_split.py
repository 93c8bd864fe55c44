r"""The CIFAR-10 JPEG tarball -> the 4,000-label split as image folders.

  python local_scripts/cifar10_4k/prepare_split.py \
      --tarball=../shared/data/cifar10_jpeg/cifar10_jpeg.tar.gz \
      --output_dir=data/cifar10_4k/images

The tarball holds `train/<class>/NNNN.jpg` (5,000 per class) and
`test/<class>/NNNN.jpg` (1,000 per class). Per class, a generator seeded with
--split_seed permutes the training images: the first --labeled_per_class go
to `train/<class>/`, the next --dev_per_class to `dev/<class>/`, the rest to
`unlabeled/` (one flat folder, renamed `uNNNNN.jpg` in a seeded order, so
neither folder nor name tells the class). `test/<class>/` is the whole test
set. The JPEG bytes are copied unchanged. `split.json` records the settings,
the tarball's size and each output file's source (the unlabeled images' true
classes are there, for measuring pseudo-label accuracy; training never reads
it).

The split seed is not a training seed: every seed of the experiment uses the
same labeled subset. A rerun with the same settings and tarball does nothing;
with other settings it refuses (use another --output_dir). The folder is
written under a temporary name and renamed when complete.
--max_per_class keeps only the first K training and K test images of each
class (tests).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tarfile

import numpy as np

CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog',
           'horse', 'ship', 'truck')
_MEMBER = re.compile(r'(?:\./)?(train|test)/([a-z]+)/(\d+)\.jpg')
SPLIT_FILE = 'split.json'


def read_tarball(path: str, max_per_class: int | None = None) -> dict:
  """{(part, class, number): JPEG bytes} for part 'train' / 'test'.

  Raises:
    SystemExit naming the tarball when it cannot be read or lacks a class.
  """
  images = {}
  try:
    with tarfile.open(path, 'r:gz') as tar:
      for member in tar:
        match = _MEMBER.fullmatch(member.name)
        if not member.isfile() or not match:
          continue
        part, name, number = match.group(1), match.group(2), int(match.group(3))
        if name not in CLASSES:
          continue
        if max_per_class is not None and number >= max_per_class:
          continue
        images[(part, name, number)] = tar.extractfile(member).read()
  except (OSError, tarfile.TarError, EOFError) as err:
    raise SystemExit(f'{path}: cannot read the CIFAR-10 tarball ({err})')
  for part in ('train', 'test'):
    missing = [c for c in CLASSES
               if not any(k[:2] == (part, c) for k in images)]
    if missing:
      raise SystemExit(f'{path}: no {part}/<class>/NNNN.jpg images for '
                       f'{", ".join(missing)}; expected the CIFAR-10 JPEG '
                       'tarball (train/ and test/ class folders)')
  return images


def split_numbers(numbers: list[int], labeled: int, dev: int,
                  rng: np.random.Generator) -> tuple[list, list, list]:
  """One class's training image numbers -> (labeled, dev, unlabeled)."""
  if labeled < 1 or dev < 0:
    raise SystemExit(f'--labeled_per_class={labeled} must be >= 1 and '
                     f'--dev_per_class={dev} >= 0')
  if labeled + dev > len(numbers):
    raise SystemExit(f'--labeled_per_class={labeled} + --dev_per_class={dev} '
                     f'> the {len(numbers)} training images of a class')
  order = [numbers[i] for i in rng.permutation(len(numbers))]
  return (sorted(order[:labeled]), sorted(order[labeled:labeled + dev]),
          order[labeled + dev:])


def plan(images: dict, labeled: int, dev: int, split_seed: int) -> dict:
  """{output relative path: source key}: the whole split, pure."""
  rng = np.random.default_rng(split_seed)
  files, unlabeled = {}, []
  for name in CLASSES:
    numbers = sorted(k[2] for k in images if k[:2] == ('train', name))
    train, dev_part, rest = split_numbers(numbers, labeled, dev, rng)
    for part, chosen in (('train', train), ('dev', dev_part)):
      for n in chosen:
        files[f'{part}/{name}/{n:04d}.jpg'] = ('train', name, n)
    unlabeled += [('train', name, n) for n in rest]
  order = rng.permutation(len(unlabeled))
  for new, old in enumerate(order.tolist()):
    files[f'unlabeled/u{new:05d}.jpg'] = unlabeled[old]
  for key in sorted(k for k in images if k[0] == 'test'):
    files[f'test/{key[1]}/{key[2]:04d}.jpg'] = key
  return files


def settings(args: argparse.Namespace) -> dict:
  return {'tarball_bytes': os.path.getsize(args.tarball),
          'labeled_per_class': args.labeled_per_class,
          'dev_per_class': args.dev_per_class, 'split_seed': args.split_seed,
          'max_per_class': args.max_per_class}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--tarball', required=True)
  parser.add_argument('--output_dir', required=True)
  parser.add_argument('--labeled_per_class', type=int, default=400)
  parser.add_argument('--dev_per_class', type=int, default=50)
  parser.add_argument('--split_seed', type=int, default=0)
  parser.add_argument('--max_per_class', type=int, default=None)
  args = parser.parse_args(argv)
  if not os.path.isfile(args.tarball):
    raise SystemExit(f'--tarball={args.tarball}: no such file')
  wanted = settings(args)
  record_path = os.path.join(args.output_dir, SPLIT_FILE)
  if os.path.exists(args.output_dir):
    try:
      with open(record_path) as f:
        done = json.load(f)['settings']
    except (OSError, ValueError, KeyError):
      raise SystemExit(f'--output_dir={args.output_dir} exists and was not '
                       f'written by this script (no readable {SPLIT_FILE}); '
                       'give a new folder') from None
    if done != wanted:
      raise SystemExit(f'{record_path}: made with {done}, not {wanted}; give '
                       'another --output_dir')
    print(f'{args.output_dir}: already split with these settings')
    return 0
  images = read_tarball(args.tarball, args.max_per_class)
  files = plan(images, args.labeled_per_class, args.dev_per_class,
               args.split_seed)
  temp = f'{args.output_dir.rstrip("/")}.partial-{os.getpid()}'
  try:
    for rel, key in files.items():
      path = os.path.join(temp, rel)
      os.makedirs(os.path.dirname(path), exist_ok=True)
      with open(path, 'wb') as f:
        f.write(images[key])
    counts = {}
    for rel in files:
      counts[rel.split('/')[0]] = counts.get(rel.split('/')[0], 0) + 1
    with open(os.path.join(temp, SPLIT_FILE), 'w') as f:
      json.dump({'settings': wanted, 'counts': counts,
                 'sources': {rel: f'{k[0]}/{k[1]}/{k[2]:04d}.jpg'
                             for rel, k in files.items()}}, f, indent=0)
    os.rename(temp, args.output_dir)
  finally:
    if os.path.exists(temp):
      shutil.rmtree(temp)
  print(json.dumps(counts))
  return 0


if __name__ == '__main__':
  sys.exit(main())
