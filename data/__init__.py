"""TFRecord schema, converters and the binaries' entry point (docs/architecture.md).

Importing it checks that the project's import names are its own
(`data/packages.py`).
"""

from data import packages as _packages

_packages.check()
