#!/usr/bin/env bash
# The README's demo command: the full Noisy Student pipeline (teacher ->
# pseudo-labels -> filter and balance -> noised student) on scikit-learn's
# bundled handwritten digits, offline, on a laptop CPU. Arguments are passed to
# `python -m noisy_student.demo` (see --help), e.g. `bash demo.sh --seed=1`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
bash tools/bootstrap.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec .venv/bin/python -m noisy_student.demo "$@"
