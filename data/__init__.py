"""Data on disk: the TFRecord schema, atomic writers, file layout and converters.

docs/architecture.md maps the modules. The package runs no code of its own;
its one import is the project's start-up (`noisy_student/__init__.py`: the
check that the three import names are ours), which runs before any module
here loads.
"""

import noisy_student.runtime  # noqa: F401  pylint: disable=unused-import
