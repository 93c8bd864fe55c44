#!/bin/bash
# Step 2: the supervised EfficientNet-B0 (32x32 small-image variant) teacher on
# the 69,257 labeled training images, then its dev/test evaluation.
# Recipe: the original's SVHN student settings without unlabeled data
# (batch 128, RandAugment M=5, final_base_lr 2e-4, weight decay 1e-4, 109,474
# steps ~ 202 epochs). Expected: about 97.9% test top-1, the accuracy of the
# original's (no longer downloadable) teacher.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"

"$PYTHON" -m noisy_student.main "${MAIN_FLAGS[@]}" \
    --mode=train \
    --train_batch_size=128 \
    --train_steps="$TRAIN_STEPS" \
    --augment_name=v1 \
    --randaug_mag=5 \
    --final_base_lr=0.0002 \
    --weight_decay=1e-4 \
    --label_data_dir="$PROC_DIR" \
    --model_dir="$TEACHER_DIR"

"$PYTHON" -m noisy_student.main "${MAIN_FLAGS[@]}" \
    --mode=eval \
    --label_data_dir="$PROC_DIR" \
    --model_dir="$TEACHER_DIR"
