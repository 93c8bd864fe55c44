#!/bin/bash
# `bash filter_unlabel.sh 1`: statistics; `bash filter_unlabel.sh 0`: keep
# confidence >= 0.3 and balance to 130,000 images per class (the original).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/settings.sh"
only_get_stats="${1:?usage: filter_unlabel.sh 1 (statistics) | 0 (selection)}"

"$PYTHON" -m noisy_student.filter_unlabel \
    --input_dir="$UNL_DIR" \
    --file_prefix=extra \
    --info_dir="$PRED_ROOT/info" \
    --prediction_dir="$PRED_ROOT/predict_label" \
    --prelim_stats_dir="$PRED_ROOT/prelim_stats" \
    --output_dir="$PRED_ROOT/filter_data" \
    --num_shards="$NUM_SHARDS" \
    --shard_id="$SHARD_ID" \
    --min_threshold="${MIN_THRESHOLD:-0.3}" \
    --num_label_classes=1000 \
    --task=0 \
    --num_image="${NUM_IMAGE:-130000}" \
    --only_get_stats="$only_get_stats"
