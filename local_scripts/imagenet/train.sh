#!/bin/bash
# Noisy Student on ImageNet with the teacher predicting on the fly (soft
# labels, T=1) and the per-model settings of settings.sh, e.g.
#   MODEL_NAME=efficientnet-b3 TEACHER_PATH=ckpt/imagenet/efficientnet-b3-teacher \
#   LABEL_DATA_DIR=... UNL_DIR=... bash local_scripts/imagenet/train.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"
: "${TEACHER_PATH:?set TEACHER_PATH to the teacher checkpoint}"

"$PYTHON" -m noisy_student.main "${DEVICE_FLAGS[@]}" \
    --mode=train \
    --model_name="$MODEL_NAME" \
    --label_data_dir="$LABEL_DATA_DIR" \
    --model_dir="$MODEL_DIR" \
    --unlabel_data_dir="$UNL_DIR" \
    --teacher_model_name="$MODEL_NAME" \
    --teacher_model_path="$TEACHER_PATH" \
    --teacher_softmax_temp=1 \
    "${MODEL_FLAGS[@]}" ${EXTRA_FLAGS:-}
