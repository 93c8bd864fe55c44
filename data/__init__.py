"""TFRecord schema, converters and the binaries' entry point (docs/architecture.md).

Importing it checks that the project's import names are its own
(`data/packages.py`) and loads TensorFlow without its start-up banner
(`data/quiet.py`).
"""

from data import packages as _packages
from data import quiet as _quiet

_packages.check()
_quiet.import_tensorflow()
