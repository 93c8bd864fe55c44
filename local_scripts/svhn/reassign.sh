#!/bin/bash
# Re-label the filtered data with a better model (e.g. the student of run.sh):
# writes $PRED_ROOT/reassign/train-0-*-of-* with the new probabilities; point
# svhn_offline.sh's --unlabel_data_dir there to train the next student.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"
NEW_TEACHER_DIR="${NEW_TEACHER_DIR:-$STUDENT_DIR}"

"$PYTHON" -m noisy_student.main "${MAIN_FLAGS[@]}" \
    --mode=predict \
    --reassign_label \
    --predict_ckpt_path="$NEW_TEACHER_DIR" \
    --worker_id=0 \
    --num_shards="$NUM_SHARDS" \
    --shard_id="$SHARD_ID" \
    --file_prefix=train \
    --label_data_dir="$PRED_ROOT/filter_data/data" \
    --output_dir="$PRED_ROOT/reassign" \
    --num_samples_per_shard=10
