"""Times README's first trial on your own folder: photos -> shards -> iterate.

  python -m benchmarks.own_data_trial [--work_dir=/tmp/own_data_trial] \
      [--steps=20] [-- extra iterate flags]

Writes 1,000 of scikit-learn's digits as 32x32 PNG photos (300 train, 100 dev
and 100 test in class folders, 500 unlabeled in one folder), converts them
with `noisy-student-images-to-tfrecord` as README's "Your own data" does,
then runs README's trial command (`noisy-student-iterate ... --min_threshold=0`
with --steps per stage) and prints, for the iterate command only, its wall
time and the largest gap between two of its output lines (README promises a
line at least every 30 s). Each output line is echoed with its time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from absl import app
from absl import flags
import numpy as np
from PIL import Image

FLAGS = flags.FLAGS

SPLITS = (('train', 300), ('dev', 100), ('test', 100), ('unlabeled', 500))


def write_photos(root: str) -> None:
  """The digits as PNG files: class folders, and a flat unlabeled folder."""
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  digits = datasets.load_digits()
  images = np.round(digits.images * 255 / 16).astype(np.uint8)
  order = np.random.RandomState(0).permutation(len(images))
  start = 0
  for split, count in SPLITS:
    for j, i in enumerate(order[start:start + count]):
      folder = os.path.join(root, split)
      if split != 'unlabeled':
        folder = os.path.join(folder, f'digit_{digits.target[i]}')
      os.makedirs(folder, exist_ok=True)
      image = Image.fromarray(images[i]).resize((32, 32), Image.BILINEAR)
      image.convert('RGB').save(os.path.join(folder, f'{split}_{j}.png'))
    start += count


def _script(name: str) -> str:
  """A console script next to this interpreter, else `python -m` form."""
  path = os.path.join(os.path.dirname(sys.executable), name)
  return path if os.path.exists(path) else name


def timed(command: list[str], cwd: str) -> tuple[float, float, str]:
  """Runs `command`, echoing each line with its time; (seconds, largest gap
  between lines in seconds, the line after that gap)."""
  start = last = time.monotonic()
  gap, after = 0.0, ''
  with subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT, text=True) as process:
    for line in process.stdout:
      now = time.monotonic()
      if now - last > gap:
        gap, after = now - last, line.strip()[:120]
      last = now
      print(f'{now - start:7.1f} {line}', end='', flush=True)
  now = time.monotonic()
  if now - last > gap:
    gap, after = now - last, '(the end)'
  if process.returncode:
    raise SystemExit(f'{command[0]} failed with status {process.returncode}')
  return now - start, gap, after


def main(argv):
  work = FLAGS.work_dir
  shutil.rmtree(work, ignore_errors=True)
  write_photos(os.path.join(work, 'photos'))
  convert = _script('noisy-student-images-to-tfrecord')
  for split, shards in (('train', 8), ('dev', 1), ('test', 1)):
    subprocess.run([convert, f'--input_dir=photos/{split}',
                    '--output_dir=data/mine', f'--split={split}',
                    f'--num_shards={shards}'], cwd=work, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  subprocess.run([convert, '--input_dir=photos/unlabeled', '--unlabeled',
                  '--output_dir=data/mine/unlabeled', '--split=extra',
                  '--num_shards=16'], cwd=work, check=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  command = [_script('noisy-student-iterate'), '--work_dir=runs/mine_trial',
             '--label_data_dir=data/mine',
             '--unlabel_data_dir=data/mine/unlabeled',
             f'--teacher_train_steps={FLAGS.steps}',
             f'--student_train_steps={FLAGS.steps}', '--min_threshold=0',
             *argv[1:]]
  seconds, gap, after = timed(command, work)
  print(f'iterate: {seconds:.1f} s wall; largest gap between lines '
        f'{gap:.1f} s (before: {after})')


def define_flags() -> None:
  flags.DEFINE_string('work_dir', '/tmp/own_data_trial', 'Scratch folder '
                      '(emptied first).')
  flags.DEFINE_integer('steps', 20, 'Teacher and student steps.')


if __name__ == '__main__':
  define_flags()
  app.run(main)
