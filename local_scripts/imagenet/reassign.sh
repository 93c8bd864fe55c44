#!/bin/bash
# Re-label the filtered data with a newer teacher (NEW_TEACHER_PATH).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"
: "${NEW_TEACHER_PATH:?set NEW_TEACHER_PATH to the newer teacher}"

"$PYTHON" -m noisy_student.main "${DEVICE_FLAGS[@]}" \
    --mode=predict \
    --reassign_label \
    --model_name="$MODEL_NAME" \
    --predict_ckpt_path="$NEW_TEACHER_PATH" \
    --worker_id=0 \
    --num_shards="$NUM_SHARDS" \
    --shard_id="$SHARD_ID" \
    --file_prefix=train \
    --label_data_dir="$PRED_ROOT/filter_data/data" \
    --output_dir="$PRED_ROOT/reassign" ${EXTRA_FLAGS:-}
