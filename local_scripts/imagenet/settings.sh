# Shared settings of the ImageNet recipe (sourced by every script here).
# Fill in the paths (or export them) before running:
#   LABEL_DATA_DIR  ImageNet train-*/validation-* shards (imagenet_to_gcs layout)
#   UNL_DIR         unlabeled shards (e.g. JFT or any image folder converted
#                   with data/images_to_tfrecord.py --unlabeled), extra-*-of-N
#   TEACHER_PATH    teacher weights: our model_dir, a .keras file, or an
#                   original TF1 checkpoint such as
#                   noisy_student_efficientnet-b7/model.ckpt
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
MODEL_NAME="${MODEL_NAME:-efficientnet-b0}"
LABEL_DATA_DIR="${LABEL_DATA_DIR:-./data/imagenet/proc}"
UNL_DIR="${UNL_DIR:-./data/imagenet/proc/unlabeled}"
PRED_ROOT="${PRED_ROOT:-./data/imagenet/predict}"
TEACHER_PATH="${TEACHER_PATH:-}"
MODEL_DIR="${MODEL_DIR:-./ckpt/imagenet/$MODEL_NAME}"
NUM_SHARDS="${NUM_SHARDS:-128}"
SHARD_ID="${SHARD_ID:-all}"
# The original ran on TPUs; on GPUs use STRATEGY=mirrored (all local GPUs) or
# multi_worker (TF_CONFIG), and keep bfloat16 on A100/H100-class GPUs.
STRATEGY="${STRATEGY:-mirrored}"
USE_BFLOAT16="${USE_BFLOAT16:-true}"
DEVICE_FLAGS=(--task_name=imagenet --use_tpu=false --strategy="$STRATEGY" --use_bfloat16="$USE_BFLOAT16")
if [[ "$STRATEGY" == tpu ]]; then
  DEVICE_FLAGS=(--task_name=imagenet --use_tpu=true --tpu="${TPU_NAME:?set TPU_NAME}" --use_bfloat16=true)
fi

# Per-model settings of the original local_scripts/imagenet/train.sh (the
# paper's EfficientNet-B0..B7 Noisy Student runs; B5-B7 use train_ratio 1).
case "$MODEL_NAME" in
  efficientnet-b0) MODEL_FLAGS=(--unlabel_ratio=1 --train_ratio=2) ;;
  efficientnet-b1) MODEL_FLAGS=(--unlabel_ratio=3 --train_ratio=2) ;;
  efficientnet-b2) MODEL_FLAGS=(--unlabel_ratio=3 --train_ratio=2 --augment_name=v1 --randaug_mag=6) ;;
  efficientnet-b3) MODEL_FLAGS=(--unlabel_ratio=3 --train_ratio=2 --augment_name=v1 --randaug_mag=12) ;;
  efficientnet-b4) MODEL_FLAGS=(--unlabel_ratio=3 --train_ratio=2 --augment_name=v1 --randaug_mag=15) ;;
  efficientnet-b5) MODEL_FLAGS=(--unlabel_ratio=3 --augment_name=v1 --randaug_mag=18) ;;
  efficientnet-b6) MODEL_FLAGS=(--unlabel_ratio=3 --augment_name=v1 --randaug_mag=24) ;;
  efficientnet-b7|efficientnet-l0|efficientnet-l1|efficientnet-l2)
    MODEL_FLAGS=(--unlabel_ratio=3 --augment_name=v1 --randaug_mag=27) ;;
  *) echo "unknown MODEL_NAME=$MODEL_NAME" >&2; exit 2 ;;
esac
