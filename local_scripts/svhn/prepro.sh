#!/bin/bash
# Step 1: SVHN .mat files -> TFRecords (69,257 train, 4,000 dev, 26,032 test,
# 531,131 unlabeled `extra`). Put train_32x32.mat, test_32x32.mat and
# extra_32x32.mat from http://ufldl.stanford.edu/housenumbers/ in $RAW_DIR, or
# leave it empty to read TensorFlow Datasets' svhn_cropped (needs
# `pip install tensorflow-datasets` and network access).
#
# The original script also downloaded a teacher checkpoint; that link is dead
# (google-research/noisystudent issue #13), so train the teacher with
# train_teacher.sh instead.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"

raw_flag=()
if [[ -e "$RAW_DIR/train_32x32.mat" ]]; then
  raw_flag=(--raw_data_dir="$RAW_DIR")
fi
"$PYTHON" -m data.proc_svhn "${raw_flag[@]}" --output_dir="$PROC_DIR" \
    ${PROC_SVHN_FLAGS:-}
