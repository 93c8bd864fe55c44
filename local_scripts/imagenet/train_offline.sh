#!/bin/bash
# Noisy Student on ImageNet from stored, filtered pseudo-labels
# (predict.sh -> filter_unlabel.sh 1 -> filter_unlabel.sh 0 first).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"

"$PYTHON" -m noisy_student.main "${DEVICE_FLAGS[@]}" \
    --mode=train \
    --model_name="$MODEL_NAME" \
    --label_data_dir="$LABEL_DATA_DIR" \
    --model_dir="$MODEL_DIR" \
    --unlabel_data_dir="${FILTERED_DIR:-$PRED_ROOT/filter_data/data}" \
    --teacher_softmax_temp=1 \
    "${MODEL_FLAGS[@]}" ${EXTRA_FLAGS:-}
