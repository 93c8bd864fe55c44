#!/bin/bash
# Offline path, step 1: the teacher's predictions on every unlabeled shard.
# One process does SHARD_ID=all; to spread the work, run one job per range,
# e.g. SHARD_ID=0-63 on one GPU and SHARD_ID=64-127 on another. Finished
# shards are skipped on rerun.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"

"$PYTHON" -m noisy_student.main "${MAIN_FLAGS[@]}" \
    --mode=predict \
    --predict_ckpt_path="$TEACHER_DIR" \
    --worker_id=0 \
    --num_shards="$NUM_SHARDS" \
    --shard_id="$SHARD_ID" \
    --file_prefix=extra \
    --label_data_dir="$UNL_DIR" \
    --info_dir="$PRED_ROOT/info" \
    --output_dir="$PRED_ROOT/predict_label"
