#!/bin/bash
# Offline path, step 3: the student trained on the stored, filtered and
# balanced pseudo-labels (soft, temperature 1), then evaluated.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"

"$PYTHON" -m noisy_student.main "${MAIN_FLAGS[@]}" \
    --mode=train \
    --train_batch_size=128 \
    --train_steps="$TRAIN_STEPS" \
    --unlabel_ratio=5 \
    --teacher_softmax_temp=1 \
    --augment_name=v1 \
    --randaug_mag=5 \
    --final_base_lr=0.0002 \
    --weight_decay=1e-4 \
    --label_data_dir="$PROC_DIR" \
    --model_dir="$STUDENT_DIR" \
    --unlabel_data_dir="$PRED_ROOT/filter_data/data"

"$PYTHON" -m noisy_student.main "${MAIN_FLAGS[@]}" \
    --mode=eval \
    --label_data_dir="$PROC_DIR" \
    --model_dir="$STUDENT_DIR"
