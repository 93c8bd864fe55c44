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
