#!/bin/bash
# Offline path, step 2: `bash filter_unlabel.sh 1` computes the per-shard
# statistics, then `bash filter_unlabel.sh 0` keeps the images with
# confidence >= 0.3 and balances every class to NUM_IMAGE images (53,113 as in
# the original). Parallelizable by shard like predict.sh.
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
    --num_label_classes=10 \
    --task=0 \
    --num_image="${NUM_IMAGE:-53113}" \
    --only_get_stats="$only_get_stats"
