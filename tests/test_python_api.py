"""docs/python_api.md's example, executed as written, in a fresh process."""

import pathlib
import re
import sys

import pytest

from tests import helpers

DOC = pathlib.Path(helpers.REPO_ROOT, 'docs/python_api.md')


def _first_python_block() -> str:
  blocks = re.findall(r'```python\n(.*?)```', DOC.read_text(), re.S)
  assert blocks, f'{DOC}: no python example'
  return blocks[0]


@pytest.mark.slow
def test_the_documented_example_runs(tmp_path):
  script = tmp_path / 'example.py'
  script.write_text(_first_python_block())
  result = helpers.run([sys.executable, str(script)], timeout=1200,
                       cwd=str(tmp_path))
  printed = result.stdout
  assert re.search(r'^teacher 0\.\d+', printed, re.M), printed
  assert re.search(r'^student 0\.\d+', printed, re.M), printed
  assert 'pseudo-labeled images:' in printed
  # Progress lines reach stderr without any logging set-up (a notebook's case).
  assert re.search(r'^step \d+/150 ', result.stderr, re.M), result.stderr[-2000:]
  assert (tmp_path / 'runs' / 'student' / 'model_config.json').exists()
