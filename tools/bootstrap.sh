#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment in .venv and installs
# requirements.txt into it. Idempotent: a second run with unchanged requirements
# only checks a stamp file. Used by demo.sh and test.sh; safe to run by hand.
#
#   bash tools/bootstrap.sh            # .venv next to this repo
#   VENV=/path/to/venv bash tools/bootstrap.sh
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$repo_root/.venv}"
python="${PYTHON:-python3}"
requirements="$repo_root/requirements.txt"

if ! command -v "$python" >/dev/null 2>&1; then
  echo "bootstrap: '$python' not found; install Python 3.10-3.13 or set PYTHON=..." >&2
  exit 2
fi
if ! "$python" -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 13) else 1)'; then
  echo "bootstrap: $("$python" --version 2>&1) is not supported (TensorFlow 2.21 needs Python 3.10-3.13)" >&2
  exit 2
fi

if [[ ! -x "$venv/bin/python" ]]; then
  echo "bootstrap: creating virtual environment in $venv"
  "$python" -m venv "$venv"
fi

stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi

echo "bootstrap: installing $(grep -cvE '^\s*(#|$)' "$requirements") pinned packages from requirements.txt (about a minute)"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
echo "$want" > "$stamp"
echo "bootstrap: environment ready ($("$venv/bin/python" -c 'import tensorflow as tf, keras; print("TensorFlow", tf.__version__, "/ Keras", keras.__version__)' 2>/dev/null))"
