#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment in .venv: installs the
# pinned requirements, then the project itself (editable, no dependencies), so
# that `python -m ...` and the console scripts (noisy-student-train, ...) work.
# Idempotent: a rerun with unchanged inputs only checks a stamp file. Used by
# demo.sh and test.sh; safe to run by hand.
#
#   bash tools/bootstrap.sh          # requirements-gpu.txt if `nvidia-smi -L` lists a GPU,
#                                    # else requirements.txt (tensorflow-cpu)
#   bash tools/bootstrap.sh --gpu    # requirements-gpu.txt: tensorflow[and-cuda]
#   bash tools/bootstrap.sh --cpu    # requirements.txt
#   NOISY_STUDENT_GPU=1 bash test.sh # the same choice for test.sh / demo.sh (0 = CPU)
#   VENV=/path/to/venv bash tools/bootstrap.sh
#   BOOTSTRAP_DRY_RUN=1 bash tools/bootstrap.sh   # print the pip commands only
#
# It never installs tensorflow-cpu into an environment that has the GPU-capable
# `tensorflow` distribution (both provide the `tensorflow` module): that one is
# kept. Going to GPU replaces tensorflow-cpu.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$repo_root/.venv}"
python="${PYTHON:-python3}"

gpu="${NOISY_STUDENT_GPU:-auto}"
for arg in "$@"; do
  case "$arg" in
    --gpu) gpu=1 ;;
    --cpu) gpu=0 ;;
    -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bootstrap: unknown argument '$arg' (use --gpu or --cpu)" >&2; exit 2 ;;
  esac
done
case "$gpu" in
  1|true|yes) gpu=1; why="asked for" ;;
  0|false|no) gpu=0; why="asked for" ;;
  auto|'')
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
      gpu=1; why="nvidia-smi lists a GPU; NOISY_STUDENT_GPU=0 or --cpu for the CPU build"
    else
      gpu=0; why="no GPU found by nvidia-smi"
    fi ;;
  *) echo "bootstrap: NOISY_STUDENT_GPU must be 1 or 0, received '$gpu'" >&2; exit 2 ;;
esac
if [[ "$gpu" == 1 ]]; then
  requirements="$repo_root/requirements-gpu.txt"
else
  requirements="$repo_root/requirements.txt"
fi

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
want="$( (echo "gpu=$gpu"; cat "$requirements" "$repo_root/pyproject.toml") | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi

# The TensorFlow distributions already in the environment (pip metadata only).
installed_tf=" $("$venv/bin/python" -c '
import importlib.metadata as metadata
for name in ("tensorflow", "tensorflow-cpu"):
  try:
    metadata.version(name)
    print(name, end=" ")
  except metadata.PackageNotFoundError:
    pass
')"
pip() {
  if [[ -n "${BOOTSTRAP_DRY_RUN:-}" ]]; then
    echo "+ pip $*"
  else
    "$venv/bin/python" -m pip --disable-pip-version-check "$@"
  fi
}
install_from="$requirements"
if [[ "$gpu" == 1 && "$installed_tf" == *" tensorflow-cpu "* ]]; then
  echo "bootstrap: replacing tensorflow-cpu by the GPU build (tensorflow[and-cuda])"
  # Both distributions own the same files: remove every copy, then reinstall one.
  pip uninstall --quiet -y tensorflow-cpu tensorflow
elif [[ "$gpu" == 0 && "$installed_tf" == *" tensorflow "* ]]; then
  if [[ "$installed_tf" == *" tensorflow-cpu "* ]]; then
    echo "bootstrap: $venv has both tensorflow and tensorflow-cpu (they overwrite each other);" \
         "delete it and rerun" >&2
    exit 2
  fi
  echo "bootstrap: keeping the GPU-capable tensorflow in $venv (not installing tensorflow-cpu" \
       "next to it); --gpu adds the CUDA libraries"
  install_from="$(mktemp)"
  trap 'rm -f "$install_from"' EXIT
  sed -E 's/^tensorflow-cpu([=<>~!; ]|$)/tensorflow\1/' "$requirements" > "$install_from"
fi

echo "bootstrap: installing $(grep -cvE '^\s*(#|$)' "$requirements") pinned packages from" \
     "$(basename "$requirements") ($why) and the project (editable)"
pip install --quiet --upgrade pip
pip install --quiet -r "$install_from"
# (PYTHONWARNINGS: setuptools' editable-install notice about same-named folders in
# the working directory, which noisy_student/runtime/packages.py checks for at import time.)
PYTHONWARNINGS=ignore::UserWarning pip install --quiet --no-deps --no-build-isolation -e "$repo_root"
if [[ -n "${BOOTSTRAP_DRY_RUN:-}" ]]; then
  echo "+ TensorFlow from $(basename "$requirements"): $(grep -E '^tensorflow(-cpu)?(\[[a-z-]+\])?[=<>~ ]' "$install_from")"
  exit 0
fi
echo "$want" > "$stamp"
echo "bootstrap: environment ready ($("$venv/bin/python" -c 'import tensorflow as tf, keras; print("TensorFlow", tf.__version__, "/ Keras", keras.__version__)' 2>/dev/null))"
