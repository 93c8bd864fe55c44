#!/usr/bin/env bash
# Noisy Student on 1,000 labeled CIFAR-10 images (100 per class), the rest of
# the training images unlabeled, one seed. Results: docs/results.md.
#
#   NPZ=cifar10.npz SEED=0 bash local_scripts/cifar10_subset/run.sh
#
# The recipe (PRESETS['cifar10_subset'] in noisy_student/core/defaults.py; a
# test checks that the flags below agree with it) was tuned on the dev split
# only (200 images; docs/results.md): half-width/depth EfficientNet-B0 (32x32
# small-image), batch 32, rate 0.048 -> 0.0015, weight decay 1e-4, no EMA,
# dropout and stochastic depth 0.2 for both; the teacher trains 2,000 steps
# without RandAugment (at this size it cost the teacher more than it gave);
# the student trains 4,000 steps with RandAugment M=5 on soft pseudo-labels
# with top-1 probability >= 0.5, one per labeled image. Deterministic input:
# a rerun with the same SEED on the same machine repeats every number.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"

NPZ="${NPZ:?set NPZ to a .npz with x_train, y_train, x_test, y_test}"
DATA_ROOT="${DATA_ROOT:-data/cifar10_1k}"
WORK_DIR="${WORK_DIR:-runs/cifar10_1k}"
SEED="${SEED:-0}"
TEACHER_STEPS="${TEACHER_STEPS:-2000}"
STUDENT_STEPS="${STUDENT_STEPS:-4000}"
PER_CLASS_TRAIN="${PER_CLASS_TRAIN:-100}"
PER_CLASS_DEV="${PER_CLASS_DEV:-20}"
MIN_THRESHOLD="${MIN_THRESHOLD:-0.5}"

if [[ ! -f "$DATA_ROOT/unlabeled/dataset_info.json" ]]; then
  "$PYTHON" "$REPO_ROOT/local_scripts/cifar10_subset/prepare_subset.py" \
      --npz="$NPZ" --output_dir="$DATA_ROOT/images" \
      --per_class_train="$PER_CLASS_TRAIN" --per_class_dev="$PER_CLASS_DEV"
  for split in train dev test; do
    "$PYTHON" -m data.images_to_tfrecord --input_dir="$DATA_ROOT/images/$split" \
        --output_dir="$DATA_ROOT/proc" --split="$split" --num_shards=4 \
        --image_format=png --name=cifar10_1k
  done
  "$PYTHON" -m data.images_to_tfrecord --input_dir="$DATA_ROOT/images/unlabeled" \
      --unlabeled --output_dir="$DATA_ROOT/unlabeled" --split=extra \
      --num_shards=8 --image_format=png --name=cifar10_1k
fi

"$PYTHON" -m noisy_student.iterate --work_dir="$WORK_DIR/seed_$SEED" \
    --label_data_dir="$DATA_ROOT/proc" --unlabel_data_dir="$DATA_ROOT/unlabeled" \
    --teacher_model_name=efficientnet-b0 --student_model_names=efficientnet-b0 \
    --width_coefficient=0.5 --depth_coefficient=0.5 \
    --teacher_train_steps="$TEACHER_STEPS" --student_train_steps="$STUDENT_STEPS" \
    --train_batch_size=32 --base_learning_rate=0.048 --final_base_lr=0.0015 \
    --weight_decay=1e-4 --moving_average_decay=0 \
    --teacher_augment_name= --student_augment_name=v1 --student_randaug_mag=5 \
    --teacher_dropout_rate=0.2 --teacher_stochastic_depth_rate=0.2 \
    --student_dropout_rate=0.2 --student_stochastic_depth_rate=0.2 \
    --unlabel_ratio=1 --teacher_softmax_temp=1 --min_threshold="$MIN_THRESHOLD" \
    --iterations_per_loop=200 --deterministic_input --seed="$SEED"
