"""TFRecord schema, converters and the binaries' entry point (docs/architecture.md).

Importing it checks that the project's import names are its own
(`data/packages.py`) and makes TensorFlow's first import drop its start-up
banner (`data/quiet.py`; TensorFlow itself is not imported here).
"""

from data import packages as _packages
from data import quiet as _quiet

_packages.check()
_quiet.install()
