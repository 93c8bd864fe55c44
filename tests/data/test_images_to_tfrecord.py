"""The images_to_tfrecord binary, run as a user would."""

import json
import os
import subprocess
import sys

from tests import conftest
from tests.data import photo_tree
from tests.data import readback


def _run(*args):
  return subprocess.run([sys.executable, '-m', 'data.images_to_tfrecord',
                         *args], capture_output=True, text=True,
                        cwd=conftest.REPO_ROOT, check=False)


def test_binary_converts_a_tree_and_reports_the_broken_files(tmp_path):
  root = tmp_path / 'in'
  made = photo_tree.make_tree(str(root))
  out = tmp_path / 'out'
  run = _run(f'--input_dir={root}', f'--output_dir={out}', '--split=train',
             '--num_shards=2', '--num_workers=1')
  assert run.returncode == 0, run.stderr
  report = json.loads(run.stdout.strip().splitlines()[-1])
  assert report == {
      'num_files': len(made['files']) + 2, 'num_written': len(made['files']),
      'num_skipped': 2, 'num_reencoded': 3, 'num_ignored_files': 1,
      'num_classes': 3, 'shards_written': 2, 'shards_kept': 0}
  for path in made['broken']:
    assert f'skipped {path}' in run.stderr
  assert f'train: {len(made["files"]) + 2} images in' in run.stderr  # progress
  assert len(readback.read_split(str(out), 'train')[0]) == len(made['files'])
  assert sorted(os.listdir(out)) == [
      'dataset_info.json', 'labels.txt', 'train-00000-of-00002',
      'train-00001-of-00002', 'train-skipped.txt', 'train-summary.json']


def test_binary_error_names_the_flag(tmp_path):
  run = _run(f'--input_dir={tmp_path / "absent"}',
             f'--output_dir={tmp_path / "out"}')
  assert run.returncode == 2  # a user error (docs/errors.md)
  assert 'images_to_tfrecord: error: --input_dir=' in run.stderr
  assert 'absent: not a folder' in run.stderr


def test_a_fifo_and_an_undecodable_name_do_not_hang_or_crash(tmp_path):
  """A FIFO named x.png used to block the converter forever, a non-UTF-8
  file name to end in a traceback: both are now reported and skipped."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from data import image_codec  # pylint: disable=g-import-not-at-top
  cat = tmp_path / 'in' / 'cat'
  cat.mkdir(parents=True)
  (cat / 'a.png').write_bytes(image_codec.encode(
      np.zeros((8, 8, 3), np.uint8), 'png'))
  os.mkfifo(cat / 'x.png')
  with open(os.path.join(str(cat), os.fsdecode(b'b\xff.png')), 'wb') as f:
    f.write(b'not read')
  run = subprocess.run(
      [sys.executable, '-m', 'data.images_to_tfrecord',
       f'--input_dir={tmp_path / "in"}', f'--output_dir={tmp_path / "out"}',
       '--num_shards=1', '--num_workers=1'],
      capture_output=True, text=True, cwd=conftest.REPO_ROOT, timeout=120)
  assert run.returncode == 0, run.stderr[-2000:]
  report = json.loads(run.stdout.strip().splitlines()[-1])
  assert (report['num_written'], report['num_ignored_files']) == (1, 2)
