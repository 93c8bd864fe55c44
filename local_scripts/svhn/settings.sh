# Shared settings of the SVHN recipe (sourced by every script in this folder).
# Override any of them from the environment.
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
DATA_ROOT="${DATA_ROOT:-./data/svhn}"
RAW_DIR="${RAW_DIR:-$DATA_ROOT/raw}"              # train/test/extra_32x32.mat
PROC_DIR="${PROC_DIR:-$DATA_ROOT/proc}"           # train-*, dev-*, test-*
UNL_DIR="${UNL_DIR:-$PROC_DIR/unlabeled}"         # extra-*-of-00128
PRED_ROOT="${PRED_ROOT:-$DATA_ROOT/predict}"      # predictions, filtered data
CKPT_ROOT="${CKPT_ROOT:-./ckpt/svhn}"
TEACHER_DIR="${TEACHER_DIR:-$CKPT_ROOT/teacher}"
STUDENT_DIR="${STUDENT_DIR:-$CKPT_ROOT/exp_1}"
NUM_SHARDS="${NUM_SHARDS:-128}"                   # shards of the unlabeled set
SHARD_ID="${SHARD_ID:-all}"                       # e.g. 0-63 on one machine
TRAIN_STEPS="${TRAIN_STEPS:-109474}"              # the original's default
ITERATIONS="${ITERATIONS:-1000}"
# Flags every main.py call of the recipe shares (the original's SVHN settings).
MAIN_FLAGS=(--model_name=efficientnet-b0 --use_tpu=false --use_bfloat16=false
            --task_name=svhn --iterations_per_loop="$ITERATIONS"
            --save_checkpoints_steps="$ITERATIONS" ${EXTRA_FLAGS:-})
