"""This project's top-level import names, and a check that they are ours.

The project installs three top-level packages: `data`, `efficientnet` and
`noisy_student` (the repository's layout). `data` and `efficientnet` are
generic names: other distributions install packages of the same names (PyPI's
`efficientnet`, for one), and a folder of that name with an `__init__.py` in
the working directory or on PYTHONPATH can shadow ours. Python has one package
per import name, so such a distribution cannot share an environment with this
project. `check()` runs when the project is first imported
(`noisy_student/__init__.py`, which `data.*` and `efficientnet.*` import
through `noisy_student.runtime`) and raises
`PackageConflictError` (an ImportError) naming the culprit when

* one of the three names resolves to a folder that is not beside the other two
  (another distribution, or a folder on `sys.path` before ours, shadows it), or
* an installed copy of this project (a wheel, not an editable install) had its
  `data/__init__.py` or `efficientnet/__init__.py` overwritten, as pip does when
  another distribution installs a package of the same name into the same
  environment (compared with the sha256 in the wheel's RECORD beside them).

It imports only the standard library; the check takes under a millisecond.
NOISY_STUDENT_SKIP_PACKAGE_CHECK=1 turns it off.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import importlib.util
import os
import sys
from typing import Optional

DISTRIBUTION = 'noisy-student'
DIST_INFO_PREFIX = 'noisy_student-'   # <root>/noisy_student-0.1.0.dist-info
PACKAGES = ('data', 'efficientnet', 'noisy_student')
# The generic names whose installed __init__.py another distribution may overwrite.
GENERIC_PACKAGES = ('data', 'efficientnet')
SKIP_ENV = 'NOISY_STUDENT_SKIP_PACKAGE_CHECK'


class PackageConflictError(ImportError):
  """An import name of this project resolves to another project's code."""


def _package_dir(name: str) -> Optional[str]:
  """The folder `import name` would load (without importing it), or None."""
  try:
    spec = importlib.util.find_spec(name)
  except (ImportError, ValueError):
    return None
  if spec is None:
    return None
  if spec.submodule_search_locations:
    return os.path.realpath(list(spec.submodule_search_locations)[0])
  return os.path.realpath(spec.origin) if spec.origin else None


def _owners(name: str) -> list[str]:
  """Installed distributions that provide the import name (slow: error path)."""
  import importlib.metadata  # pylint: disable=g-import-not-at-top
  owners = importlib.metadata.packages_distributions().get(name, [])
  return sorted({o for o in owners
                 if o and o.lower().replace('_', '-') != DISTRIBUTION})


def _record_hash(path: str) -> str:
  with open(path, 'rb') as f:
    digest = hashlib.sha256(f.read()).digest()
  return 'sha256=' + base64.urlsafe_b64encode(digest).rstrip(b'=').decode('ascii')


def _overwritten(root: str) -> list[str]:
  """Generic packages whose installed __init__.py no longer has our hash.

  A wheel install puts `noisy_student-<version>.dist-info/RECORD` (each file's
  sha256) beside the packages in `root`; a checkout or an editable install has
  none there, and nothing is checked.
  """
  try:
    records = [os.path.join(root, entry, 'RECORD') for entry in os.listdir(root)
               if entry.startswith(DIST_INFO_PREFIX) and entry.endswith('.dist-info')]
  except OSError:
    return []
  changed = []
  for record in records:
    try:
      with open(record, newline='') as f:
        rows = list(csv.reader(f))
    except OSError:
      continue
    for row in rows:
      if len(row) < 2 or not row[1]:
        continue
      package, _, module = row[0].partition('/')
      path = os.path.join(root, package, '__init__.py')
      if (package in GENERIC_PACKAGES and module == '__init__.py' and
          os.path.exists(path) and _record_hash(path) != row[1]):
        changed.append(package)
  return changed


def problems(root: Optional[str] = None) -> list[str]:
  """What is wrong with the three import names; [] when all are this project's.

  Args:
    root: the folder that holds this project's packages; default: the one
      holding this `noisy_student` package.
  """
  root = root or os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.realpath(__file__))))
  found = []
  for name in PACKAGES:
    location = _package_dir(name)
    if location is not None and os.path.dirname(location) != root:
      owners = _owners(name)
      found.append(
          f"'{name}' resolves to {location}, not to this project's "
          f'{os.path.join(root, name)}'
          + (f" (distribution {', '.join(owners)})" if owners else ''))
  for name in _overwritten(root):
    owners = _owners(name)
    found.append(
        f"{os.path.join(root, name, '__init__.py')} is not the file this project "
        'installed: another distribution'
        + (f" ({', '.join(owners)})" if owners else '')
        + ' wrote its own package of that name over it')
  return found


def _message(found: list[str]) -> str:
  return ('noisy-student: ' + '; '.join(found) + '. `data`, `efficientnet` and '
          '`noisy_student` are this project\'s top-level packages; another '
          'package of the same name cannot share its environment. Use a '
          'separate virtual environment (or uninstall the other distribution '
          'and run `pip install --force-reinstall --no-deps noisy-student`, or '
          f'move the folder off sys.path). {SKIP_ENV}=1 skips this check.')


def running_a_binary() -> bool:
  """True while `python -m <our module>` or a console script starts."""
  first = sys.argv[0] if sys.argv else ''
  return first == '-m' or os.path.basename(first).startswith('noisy-student-')


def _working_directory_entry() -> Optional[str]:
  """The sys.path entry `python -m` put first for the working directory."""
  if sys.path and sys.path[0] in ('', os.getcwd()):
    return sys.path[0]
  return None


def check() -> None:
  """Raises PackageConflictError when `problems()` finds any.

  A binary (`python -m noisy_student.<binary>`) started in a folder that has
  its own `data/` or `efficientnet/` package runs with this project's
  packages instead (the working directory moves to the end of sys.path, said
  in one line); any other conflict stops a binary with one line and status 2.
  """
  if os.environ.get(SKIP_ENV, '') not in ('', '0'):
    return
  found = problems()
  if not found:
    return
  if not running_a_binary():
    raise PackageConflictError(_message(found))
  entry = _working_directory_entry()
  if entry is not None:
    shadows = [name for name in PACKAGES
               if (_package_dir(name) or '').startswith(
                   os.path.realpath(entry or '.') + os.sep)]
    if shadows:
      sys.path.append(sys.path.pop(0))
      if not problems():
        print(f'noisy-student: the working directory has its own '
              f'{", ".join(n + "/" for n in shadows)} package; using this '
              "project's instead (the folder stays importable after it)",
              file=sys.stderr, flush=True)
        return
      found = problems()
  print(f'noisy-student: error: {_message(found)[len("noisy-student: "):]}',
        file=sys.stderr, flush=True)
  sys.exit(2)
