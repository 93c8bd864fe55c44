"""The docs' commands, run as a reader types them, at tiny scale.

Every block marked `<!-- docs-test: run by tests/test_docs_run.py -->` in
README.md or docs/*.md runs here: one test per document, its marked blocks
in their order with `bash -e -o pipefail`, in one fresh folder (a later block
finds what an earlier one wrote, as in the reader's shell), after three
declared changes, all in this file:

* WORKSPACE: the files a document assumes the reader has (their photo
  folders, the SVHN .mat files, ImageNet-style class folders, a batch of
  images, a trained teacher for the pages that start from one) are written
  first, and SETUP commands (shown in the failure message) make the rest.
* SCALE: substitutions applied to a block's text before it runs: training
  steps, batch sizes, shard counts and ranges and the network's width and
  depth shrink to what two CPU cores do in seconds. A command is otherwise
  the document's, flag for flag.
* The console scripts and `python -m` of the project run through
  tests/launcher.py (the binary's own `run()`, without importing TensorFlow
  for each command).

Python blocks run the same way (`python` on the block's text), with
PRELUDES defining what a fragment leaves to the reader (`images`).
A failure names the document and line of the block and shows the text that
ran.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess

import numpy as np
from PIL import Image
import pytest

from tests import helpers
from tests import launcher
from tests import test_docs
from tests.data import svhn_fixture

ROOT = pathlib.Path(helpers.REPO_ROOT)
THIS = 'tests/test_docs_run.py'
TINY_NET = '--width_coefficient=0.1 --depth_coefficient=0.1'

# (pattern, replacement, why): applied in order to every block's text.
SCALE = [
    (r'--(teacher_|student_)?train_steps=\d+', r'--\1train_steps=2',
     'two training steps'),
    (r'--train_batch_size=\d+', '--train_batch_size=8', 'a batch of 8'),
    # Every training command and iterate's rounds train the tiny network for
    # two steps unless the block says otherwise (a flag named later wins).
    (r'\bnoisy-student-train\b(?![\s\\]+--mode=(?:eval|predict|export))',
     f'noisy-student-train --train_steps=2 {TINY_NET} '
     '--iterations_per_loop=2 --eval_batch_size=16',
     'the tiny network, two steps'),
    (r'\bnoisy-student-iterate\b',
     f'noisy-student-iterate --teacher_train_steps=2 '
     f'--student_train_steps=2 {TINY_NET} --iterations_per_loop=2 '
     '--eval_batch_size=16 --predict_batch_size=16 --min_threshold=0',
     'the tiny network, two steps a stage, every pseudo-label kept (a '
     'two-step teacher is not confident)'),
    # proc_svhn: the tiny .mat files fill 2 train / 2 eval / 4 extra shards.
    (r'\bnoisy-student-proc-svhn\b',
     'noisy-student-proc-svhn --dev_size=10 --train_shards=2 '
     '--eval_shards=2 --extra_shards=4', 'shards of the tiny .mat files'),
    (r'--num_shards=(?:128|1024|16|8)\b', '--num_shards=4',
     'four shards of tiny data'),
    (r'--shard_id=0-63\b', '--shard_id=0-1', 'the first half of 4 shards'),
    (r'--shard_id=64-127\b', '--shard_id=2-3', 'the second half of 4 shards'),
    (r'--num_workers=16\b', '--num_workers=2', 'two cores'),
    (r'--num_image=\d+', '--num_image=3', 'three pseudo-labels per class'),
    (r'--min_threshold=0\.3\b', '--min_threshold=0',
     'a two-step teacher is not confident'),
    (r'extra-\*-of-00128', 'extra-*-of-00004', 'four shards of tiny data'),
    (r'\bnoisy-student-make-corrupted\b',
     'noisy-student-make-corrupted --max_images=4 '
     '--corruptions=gaussian_noise,contrast --severities=1,3',
     'four images, two corruptions at two severities (a block\'s own '
     'flags win)'),
    (r'\bnoisy-student-make-perturbed\b',
     'noisy-student-make-perturbed --max_images=4',
     'four videos'),
    (r"(?<=[='\s,])/(data|tmp|models|ckpts|weights)/", r'\1/',
     'absolute example paths move into the test\'s folder'),
    (r'\bckpt/student\b', 'ckpt/teacher',
     'the pages before train one model, the teacher'),
]

# Variable of a fragment's reader, defined before the block runs.
PRELUDES = {
    'images': "import numpy as np\nimages = np.zeros((2, 32, 32, 3), 'float32')\n",
}


def scaled(text: str) -> str:
  for pattern, replacement, _ in SCALE:
    text = re.sub(pattern, replacement, text)
  return text


# ----------------------------------------------------------------- workspace


def _png_tree(root: pathlib.Path, classes, per_class: int, seed: int,
              flat: bool = False, suffix: str = '.png') -> None:
  """Class folders of small coloured-digit images (a flat folder if flat)."""
  rng = np.random.default_rng(seed)
  for label, name in enumerate(classes):
    folder = root if flat else root / name
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(per_class):
      image = svhn_fixture.synthetic_digit(label % 10, rng)
      Image.fromarray(image).save(folder / f'{name}_{i}{suffix}')


def _photos(work: pathlib.Path) -> None:
  for split, count in (('train', 8), ('dev', 2), ('test', 2)):
    _png_tree(work / 'photos' / split, ('cat', 'dog', 'ship'), count, 1)
  _png_tree(work / 'photos' / 'unlabeled', ('cat', 'dog', 'ship'), 8, 2,
            flat=True)
  _png_tree(work / 'my_photos', ('x',), 8, 3, flat=True)
  _png_tree(work / 'unlabeled_photos', ('x',), 8, 4, flat=True)


def _imagenet(work: pathlib.Path) -> None:
  wnids = ('n01440764', 'n01443537')
  _png_tree(work / 'imagenet' / 'train', wnids, 4, 5, suffix='.JPEG')
  _png_tree(work / 'imagenet' / 'val', wnids, 2, 6, suffix='.JPEG')


def _svhn(work: pathlib.Path) -> None:
  svhn_fixture.write_svhn_mat_files(str(work / 'data' / 'svhn' / 'raw'),
                                    60, 20, 40)


def _images(work: pathlib.Path) -> None:
  rng = np.random.default_rng(7)
  np.save(work / 'batch.npy',
          rng.uniform(0, 255, (2, 32, 32, 3)).astype('float32'))
  Image.fromarray(svhn_fixture.synthetic_digit(3, rng)).save(
      work / 'digit.png')
  Image.fromarray(svhn_fixture.synthetic_digit(5, rng)).save(
      work / 'cat.jpg')


WORKSPACE = (_photos, _imagenet, _svhn, _images)

# Commands that make what a page starts from (its prerequisites, written by
# the pages before it).
SVHN_TEACHER = (
    'noisy-student-proc-svhn --raw_data_dir=data/svhn/raw '
    '--output_dir=data/svhn/proc\n'
    'noisy-student-train --mode=train --task_name=svhn --use_tpu=false '
    '--label_data_dir=data/svhn/proc --model_dir=ckpt/teacher')
DIGITS_MODELS = (
    'noisy-student-prepare-digits --output_dir=data/digits\n'
    'noisy-student-train --mode=train --task_name=digits --use_tpu=false '
    '--label_data_dir=data/digits --model_dir=ckpt/digits\n'
    'noisy-student-train --mode=export --use_tpu=false --model_dir=ckpt/digits '
    '--export_dir=export/digits --export_keras_path=teacher.keras\n'
    'cp teacher.keras student.keras\n'
    'noisy-student-images-to-tfrecord --input_dir=imagenet/val '
    '--output_dir=data/imagenet --split=validation --num_shards=1 '
    '--label_map=imagenet\n')
SETUP = {
    'docs/filtering.md': SVHN_TEACHER,
    'docs/beam.md': SVHN_TEACHER,
    'docs/serving.md': SVHN_TEACHER,
    'docs/robustness.md': DIGITS_MODELS,
}


def _readme_results(work: pathlib.Path) -> None:
  """What README's own-data and SVHN blocks leave behind."""
  info = json.loads((work / 'data/mine/dataset_info.json').read_text())
  assert (info['num_classes'], info['image_size']) == (3, 32)
  assert info['class_names'] == ['cat', 'dog', 'ship']
  assert {s: v['num_examples'] for s, v in info['splits'].items()} == {
      'train': 24, 'dev': 6, 'test': 6}
  for work_dir, roles in (('runs/mine', ['teacher', 'student']),
                          ('runs/svhn', ['teacher', 'student', 'student'])):
    rows = json.loads((work / work_dir / 'summary.json').read_text())
    assert [row['role'] for row in rows] == roles, rows
  stats = json.loads(
      (work / 'runs/mine/round_1/filter/stats/final_stats.json').read_text())
  # 24 unlabeled photos balanced over 3 classes: 8 each for every class the
  # two-step teacher predicts.
  assert set(stats['per_class']) <= {0, 8} and stats['num_written'] >= 8
  assert (work / 'export/student/saved_model.pb').exists()
  assert (work / 'pred/filter_data/stats/final_stats.json').exists()


# Checks of what a document's blocks wrote, after they ran.
CHECKS = {'README.md': _readme_results}


def run_bash(text: str, work: pathlib.Path, env: dict, where: str) -> None:
  result = subprocess.run(['bash', '-e', '-o', 'pipefail', '-c', text],
                          cwd=work, env=env, capture_output=True, text=True,
                          timeout=900)
  if result.returncode != 0:
    raise AssertionError(
        f'{where} failed ({result.returncode}); it ran:\n{text}\n--- stdout\n'
        f'{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-6000:]}')


def _run_python(text: str, work: pathlib.Path, env: dict, where: str) -> None:
  prelude = ''.join(code for name, code in PRELUDES.items()
                    if re.search(rf'\b{name}\b', text)
                    and not re.search(rf'^{name} =', text, re.M))
  script = work / f'block_{abs(hash(where))}.py'
  script.write_text(prelude + text)
  run_bash(f'python {script.name}', work, env, where)


def _blocks_run_here(doc: str) -> list[test_docs.Block]:
  return [b for b in test_docs.BLOCKS
          if str(b.doc.relative_to(ROOT)) == doc and b.marker
          and f'run by {THIS}' in b.marker]


# The documents with blocks marked for this file (a test keeps the list true).
DOCS = ('README.md', 'docs/beam.md', 'docs/data_preparation.md',
        'docs/filtering.md', 'docs/robustness.md', 'docs/serving.md')


@pytest.mark.slow
@pytest.mark.parametrize('doc', DOCS)
def test_the_blocks_of_a_document_run_in_order(doc, tmp_path):
  work = tmp_path / 'work'
  work.mkdir()
  for make in WORKSPACE:
    make(work)
  env = launcher.shim_env(dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2',
                               PYTHONPATH=str(ROOT)))
  if doc in SETUP:
    run_bash(scaled(SETUP[doc]), work, env, f'{doc}: SETUP')
  for block in _blocks_run_here(doc):
    text = scaled(block.text)
    if block.lang == 'python':
      _run_python(text, work, env, str(block))
    else:
      run_bash(text, work, env, str(block))
  if doc in CHECKS:
    CHECKS[doc](work)


def test_documents_named_here_and_scale_rules_are_used():
  """Every SETUP names a document that runs here; every SCALE rule changes
  some block that runs (a rule nothing needs is removed)."""
  marked = {str(b.doc.relative_to(ROOT)) for b in test_docs.BLOCKS
            if b.marker and f'run by {THIS}' in b.marker}
  assert marked == set(DOCS), marked ^ set(DOCS)
  assert set(SETUP) <= set(DOCS), set(SETUP) - set(DOCS)
  texts = [b.text for doc in DOCS for b in _blocks_run_here(doc)]
  texts += list(SETUP.values())
  unused = [pattern for pattern, _, _ in SCALE
            if not any(re.search(pattern, t) for t in texts)]
  assert not unused, unused
