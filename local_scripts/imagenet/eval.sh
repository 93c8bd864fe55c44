#!/bin/bash
# Top-1/top-5 on the 50,000 validation images with the EMA weights of the
# latest checkpoint in $MODEL_DIR (or of any checkpoint given as CKPT).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"

"$PYTHON" -m noisy_student.main "${DEVICE_FLAGS[@]}" \
    --mode=eval \
    --model_name="$MODEL_NAME" \
    --label_data_dir="$LABEL_DATA_DIR" \
    --model_dir="$MODEL_DIR" \
    --eval_batch_size="${EVAL_BATCH_SIZE:-256}" ${EXTRA_FLAGS:-}
