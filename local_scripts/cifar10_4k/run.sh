#!/usr/bin/env bash
# Noisy Student on CIFAR-10 with 4,000 labels (400 per class), the other
# training images unlabeled, the whole 10,000-image test set: the pre-declared
# arms (teacher, supervised control, full noised student, noise-free student)
# for the seeds in SEEDS. Results and the tuning table: docs/results.md.
#
#   SEEDS=0 bash local_scripts/cifar10_4k/run.sh
#   SEEDS=1 WORK_DIR=runs/cifar10_4k bash local_scripts/cifar10_4k/run.sh
#
# 1. prepare_split.py: the JPEG tarball -> train/ (400 per class), dev/ (50 per
#    class), unlabeled/ (no class folders), test/ (all), split with SPLIT_SEED
#    (the same labeled subset for every training seed);
# 2. data.images_to_tfrecord on those folders, as for your own photos;
# 3. noisy_student.ablate --preset=cifar10_4k (noisy_student/core/defaults.py,
#    chosen on dev only) with ARMS. Every stage is resumable: rerun the same
#    command after an interruption. One seed's table, per-image predictions
#    and timings land in WORK_DIR (ablation.json, predictions/seed_N/); join
#    the seeds of several sessions with `ablate --merge`.
# 4. (by hand, after a seed) pseudo_label_accuracy.py --data_root=DATA_ROOT
#    --seed_dir=WORK_DIR/seed_N: how often the teacher's pseudo-labels were
#    right, traced through split.json.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"

TARBALL="${TARBALL:-$REPO_ROOT/../shared/data/cifar10_jpeg/cifar10_jpeg.tar.gz}"
DATA_ROOT="${DATA_ROOT:-data/cifar10_4k}"
WORK_DIR="${WORK_DIR:-runs/cifar10_4k}"
SEEDS="${SEEDS:-0}"
SPLIT_SEED="${SPLIT_SEED:-0}"
LABELED_PER_CLASS="${LABELED_PER_CLASS:-400}"
DEV_PER_CLASS="${DEV_PER_CLASS:-50}"
MAX_PER_CLASS="${MAX_PER_CLASS:-}"
ARMS="${ARMS:-control,full,no_noise}"
# Stages trained at once (teacher beside control, students side by side), each
# in its own process on its own core: on 2 cores a seed takes about half as
# long as one after the other (noisy_student/runtime/job_pool.py).
JOBS="${JOBS:-2}"
EXTRA_FLAGS="${EXTRA_FLAGS:-}"

"$PYTHON" "$REPO_ROOT/local_scripts/cifar10_4k/prepare_split.py" \
    --tarball="$TARBALL" --output_dir="$DATA_ROOT/images" \
    --labeled_per_class="$LABELED_PER_CLASS" --dev_per_class="$DEV_PER_CLASS" \
    --split_seed="$SPLIT_SEED" ${MAX_PER_CLASS:+--max_per_class="$MAX_PER_CLASS"}
# Finished shards of the same inputs are kept, so a rerun converts nothing.
for split in train dev test; do
  "$PYTHON" -m data.images_to_tfrecord --input_dir="$DATA_ROOT/images/$split" \
      --output_dir="$DATA_ROOT/proc" --split="$split" --num_shards=4 \
      --name=cifar10_4k
done
"$PYTHON" -m data.images_to_tfrecord --input_dir="$DATA_ROOT/images/unlabeled" \
    --unlabeled --output_dir="$DATA_ROOT/unlabeled" --split=extra \
    --num_shards=16 --name=cifar10_4k

# shellcheck disable=SC2086
"$PYTHON" -m noisy_student.ablate --preset=cifar10_4k \
    --data_dir="$DATA_ROOT/proc" --unlabel_data_dir="$DATA_ROOT/unlabeled" \
    --work_dir="$WORK_DIR" --seeds="$SEEDS" --arms="$ARMS" --jobs="$JOBS" \
    $EXTRA_FLAGS
