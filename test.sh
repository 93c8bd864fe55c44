#!/usr/bin/env bash
# The test command of the README: installs what is needed into .venv and runs the
# whole test suite (slow end-to-end tests included). Extra arguments go to pytest,
# e.g. `bash test.sh -m "not slow"` or `bash test.sh tests/efficientnet`. Tests run in
# TEST_WORKERS pytest-xdist processes (default 2; TEST_WORKERS=0: one process).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
bash tools/bootstrap.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec .venv/bin/python -m pytest -n "${TEST_WORKERS:-2}" "$@"
