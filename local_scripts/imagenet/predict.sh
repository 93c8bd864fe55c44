#!/bin/bash
# Teacher predictions on the unlabeled shards; run one job per shard range on
# many machines, e.g. SHARD_ID=0-15, 16-31, ... (finished shards are skipped).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"
: "${TEACHER_PATH:?set TEACHER_PATH to the teacher checkpoint}"

"$PYTHON" -m noisy_student.main "${DEVICE_FLAGS[@]}" \
    --mode=predict \
    --model_name="$MODEL_NAME" \
    --predict_ckpt_path="$TEACHER_PATH" \
    --worker_id=0 \
    --num_shards="$NUM_SHARDS" \
    --shard_id="$SHARD_ID" \
    --file_prefix=extra \
    --label_data_dir="$UNL_DIR" \
    --info_dir="$PRED_ROOT/info" \
    --output_dir="$PRED_ROOT/predict_label" ${EXTRA_FLAGS:-}
