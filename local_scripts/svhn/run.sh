#!/bin/bash
# Step 3: Noisy Student with the teacher predicting on the fly (the original
# run.sh): batch 128, unlabel_ratio 5, soft labels at temperature 1,
# RandAugment M=5, final_base_lr 2e-4, weight decay 1e-4; then evaluation.
# Expected: 98.6% +- 0.1 test top-1 (the paper's SVHN result).
# Rerunning resumes from the last checkpoint in $STUDENT_DIR (the original
# deleted the folder first: `rm -r $STUDENT_DIR` to start over).
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
    --teacher_model_name=efficientnet-b0 \
    --teacher_model_path="$TEACHER_DIR" \
    --model_dir="$STUDENT_DIR" \
    --unlabel_data_dir="$UNL_DIR"

"$PYTHON" -m noisy_student.main "${MAIN_FLAGS[@]}" \
    --mode=eval \
    --label_data_dir="$PROC_DIR" \
    --model_dir="$STUDENT_DIR"
