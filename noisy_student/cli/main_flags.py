"""Flag definitions of `python -m noisy_student.main` (imported only by main.py).

Original flags keep their names, defaults and meanings (google-research/
noisystudent main.py and predict_label.py). Flags marked "[TPUEstimator]" only
configured TPUEstimator: they are accepted so that old scripts still run, and
have no effect.
"""

from absl import flags

from noisy_student.core import config as config_lib
from noisy_student.core import defaults

_TRAIN = defaults.ORIGINAL.train
_NOISE = defaults.ORIGINAL.noise


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  """Defines the binary's flags on `fv`."""
  # --------------------------------------------------------------- experiment
  flags.DEFINE_string('task_name', None,
                      'Built-in dataset: imagenet (the original\'s default), '
                      'svhn, cifar10 or digits: sets image size, mean/std and '
                      'flips. Optional when --label_data_dir has a '
                      'dataset_info.json (written by every converter), whose '
                      'classes and image counts are used; explicit flags win.',
                      flag_values=fv)
  flags.DEFINE_enum('mode', 'train_and_eval', list(config_lib.MODES),
                    'train, eval (EMA weights, dev/test or validation), '
                    'train_and_eval (evaluate every --steps_per_eval), predict '
                    '(teacher pseudo-labels for unlabeled shards) or export '
                    '(SavedModel).', flag_values=fv)
  flags.DEFINE_string('label_data_dir', None,
                      'Folder(s) of labeled TFRecords (train-*, dev-*, test-*, '
                      'validation-*); ";"-separated for several. In '
                      '--mode=predict: the folder of the unlabeled shards.', flag_values=fv)
  flags.DEFINE_string('unlabel_data_dir', '',
                      'Folder(s) of unlabeled (train-*/extra-*) or filtered '
                      'pseudo-labeled shards; ";"-separated for several.', flag_values=fv)
  flags.DEFINE_string('model_dir', None,
                      'Where checkpoints, TensorBoard summaries, FLAGS.json, '
                      'model_config.json and eval_results.json are written.', flag_values=fv)
  flags.DEFINE_bool('init_model', False,
                    'Initialise the student from --init_model_path (EMA weights).', flag_values=fv)
  flags.DEFINE_string('init_model_path', None,
                      'Checkpoint (ours, .keras or original TF1) to initialise '
                      'the student from; only used with --init_model.', flag_values=fv)
  flags.DEFINE_string('model_name', 'efficientnet-b0',
                      'efficientnet-b0 ... b7, efficientnet-l0, -l1, -l2, '
                      'keras:<a keras.applications name> (random init, e.g. '
                      'keras:ResNet50), or a .keras classifier file.',
                      flag_values=fv)
  flags.DEFINE_integer('train_steps', _TRAIN.train_steps,
                       'Training steps (before --train_ratio); 350 epochs of '
                       'ImageNet at batch 4096.', flag_values=fv)
  flags.DEFINE_integer('input_image_size', None,
                       'Input resolution; default: the task\'s, else the model\'s.', flag_values=fv)
  flags.DEFINE_float('train_ratio', 1.0,
                     'Multiplies --train_steps and the LR decay period.', flag_values=fv)
  flags.DEFINE_integer('train_batch_size', _TRAIN.train_batch_size,
                       'Global labeled batch per step (split over replicas).', flag_values=fv)
  flags.DEFINE_integer('eval_batch_size', _TRAIN.eval_batch_size, 'Global evaluation batch.', flag_values=fv)

  # ------------------------------------------------------------------ devices
  flags.DEFINE_bool('use_tpu', True,
                    'Train on a TPU (implies --strategy=tpu). Default True as in '
                    'the original: pass --use_tpu=false on CPUs/GPUs.', flag_values=fv)
  flags.DEFINE_enum('strategy', 'default', list(config_lib.STRATEGIES),
                    'default (one device), mirrored (all local GPUs), '
                    'multi_worker (hosts in TF_CONFIG) or tpu.', flag_values=fv)
  flags.DEFINE_string('tpu', None, 'TPU name or grpc:// address.', flag_values=fv)
  flags.DEFINE_string('tpu_zone', None, 'GCE zone of the TPU.', flag_values=fv)
  flags.DEFINE_string('gcp_project', None, 'GCP project of the TPU.', flag_values=fv)
  flags.DEFINE_string('master', None, '[TPUEstimator] Not used.', flag_values=fv)
  flags.DEFINE_integer('num_tpu_cores', None, '[TPUEstimator] Not used.', flag_values=fv)
  flags.DEFINE_bool('use_bfloat16', True,
                    'Train with mixed bfloat16 activations (float32 weights, '
                    'logits and loss). Default True as in the original.', flag_values=fv)
  flags.DEFINE_enum('mixed_precision', '', ['', *config_lib.MIXED_PRECISION],
                    'Overrides --use_bfloat16: float32, bfloat16 or float16 '
                    '(float16 uses dynamic loss scaling).', flag_values=fv)
  flags.DEFINE_bool('jit_compile', False,
                    'XLA-compile the train step (GPU/TPU speed-up).', flag_values=fv)
  flags.DEFINE_bool('sync_batch_norm', False,
                    'Cross-replica (synchronized) BatchNorm statistics.', flag_values=fv)
  flags.DEFINE_integer('mirrored_cpu_devices', 0,
                       'With --strategy=mirrored and no GPU: split the CPU into '
                       'this many logical devices (to test multi-replica runs).', flag_values=fv)
  flags.DEFINE_bool('transpose_input', True, '[TPUEstimator] Not used.', flag_values=fv)
  flags.DEFINE_string('data_format', 'channels_last',
                      'Only channels_last is supported.', flag_values=fv)
  flags.DEFINE_integer('num_shards_per_group', -1,
                       '[TPUEstimator] BN grouping on TPU pods; not used.', flag_values=fv)
  flags.DEFINE_bool('skip_host_call', False, '[TPUEstimator] Not used.', flag_values=fv)
  flags.DEFINE_integer('log_step_count_steps', 64,
                       '[TPUEstimator] Not used; see --log_every_steps.', flag_values=fv)
  flags.DEFINE_integer('debug', 0, 'Not used.', flag_values=fv)

  # ---------------------------------------------------------- dataset sizes
  flags.DEFINE_integer('num_train_images', None,
                       'Labeled training images (steps per epoch); default: task.', flag_values=fv)
  flags.DEFINE_integer('num_eval_images', None,
                       'Accepted for compatibility: evaluation counts the records.', flag_values=fv)
  flags.DEFINE_integer('num_test_images', None,
                       'Accepted for compatibility: evaluation counts the records.', flag_values=fv)
  flags.DEFINE_integer('num_label_classes', 1000,
                       'Number of classes; default: the dataset\'s (1000 for '
                       'ImageNet, as the original).', flag_values=fv)
  flags.DEFINE_bool('small_image_model', False,
                    '32x32 model (stages 2-3 stride 1) and CIFAR/SVHN pipeline.', flag_values=fv)
  flags.DEFINE_integer('num_train_shards', None,
                       'Use only the first N labeled training shards.', flag_values=fv)
  flags.DEFINE_string('eval_splits', '',
                      'Comma-separated eval splits; default: the task\'s '
                      '(dev,test or validation).', flag_values=fv)

  # ------------------------------------------------------------ loop & ckpts
  flags.DEFINE_integer('steps_per_eval', _TRAIN.steps_per_eval,
                       'train_and_eval: evaluate every this many steps.', flag_values=fv)
  flags.DEFINE_integer('log_every_steps', _TRAIN.log_every_steps,
                       'A progress line (step, loss, rate, ETA) at least every '
                       'this many steps and about every 30 s.', flag_values=fv)
  flags.DEFINE_integer('iterations_per_loop', _TRAIN.iterations_per_loop,
                       'Steps per tf.function call; logs/summaries per loop.', flag_values=fv)
  flags.DEFINE_integer('save_checkpoints_steps', _TRAIN.save_checkpoints_steps,
                       'Checkpoint period in steps (at least iterations_per_loop).', flag_values=fv)
  flags.DEFINE_integer('keep_checkpoint_max', _TRAIN.keep_checkpoint_max, 'Checkpoints kept.', flag_values=fv)
  flags.DEFINE_integer('train_last_step_num', -1,
                       'Fine-tuning: train only the last N of --train_steps '
                       '(the LR schedule starts at train_steps - N).', flag_values=fv)
  flags.DEFINE_integer('fix_layer_num', -1, 'Not supported; must stay -1.', flag_values=fv)
  flags.DEFINE_integer('seed', _TRAIN.seed, 'Seed of shuffling, augmentation and masks.', flag_values=fv)
  flags.DEFINE_bool('deterministic_input', False,
                    'Fixed input order and augmentation for --seed and '
                    'deterministic TF ops, so that a killed and resumed run ends '
                    'with exactly the weights of an uninterrupted one (slower).', flag_values=fv)
  flags.DEFINE_bool('use_cache', True,
                    'Cache the training records in memory (skipped when larger '
                    'than half the RAM).', flag_values=fv)

  # -------------------------------------------------------------- optimiser
  flags.DEFINE_float('base_learning_rate', _TRAIN.base_learning_rate,
                     'Learning rate at batch 256 (scaled by batch/256).', flag_values=fv)
  flags.DEFINE_float('final_base_lr', None,
                     'If set, the decay period is chosen to reach it (original rule).', flag_values=fv)
  flags.DEFINE_float('moving_average_decay', _TRAIN.moving_average_decay, 'EMA decay of the weights.', flag_values=fv)
  flags.DEFINE_float('weight_decay', _TRAIN.weight_decay, 'L2 weight decay (non-BN weights).', flag_values=fv)
  flags.DEFINE_float('label_smoothing', _TRAIN.label_smoothing, 'Label smoothing.', flag_values=fv)
  flags.DEFINE_float('dropout_rate', None,
                     'Dropout before the classifier; default: the model\'s.', flag_values=fv)
  flags.DEFINE_float('stochastic_depth_rate', None,
                     'Final stochastic-depth drop rate; default 0.2.', flag_values=fv)
  flags.DEFINE_float('depth_coefficient', None, 'Overrides the depth multiplier.', flag_values=fv)
  flags.DEFINE_float('width_coefficient', None, 'Overrides the width multiplier.', flag_values=fv)

  # ------------------------------------------------------------ noisy student
  flags.DEFINE_float('unlabel_ratio', _TRAIN.unlabel_ratio,
                     'Unlabeled batch = ceil(unlabel_ratio x labeled batch).', flag_values=fv)
  flags.DEFINE_float('teacher_softmax_temp', _TRAIN.teacher_softmax_temp,
                     'Teacher softmax temperature; -1 = hard one-hot labels.', flag_values=fv)
  flags.DEFINE_string('teacher_model_name', None,
                      'Model of the on-the-fly teacher (e.g. efficientnet-b0).', flag_values=fv)
  flags.DEFINE_string('teacher_model_path', None,
                      'Teacher weights: a model_dir/checkpoint of ours, a .keras '
                      'file or an original TF1 checkpoint.', flag_values=fv)
  flags.DEFINE_float('label_data_sample_prob', _TRAIN.label_data_sample_prob,
                     'Keep each labeled example in the loss with this probability.', flag_values=fv)

  # ------------------------------------------------------------ augmentation
  flags.DEFINE_string('augment_name', None,
                      'None: crop and flip only. v1: RandAugment.', flag_values=fv)
  flags.DEFINE_integer('randaug_mag', _NOISE.randaug_magnitude, 'RandAugment magnitude M.', flag_values=fv)
  flags.DEFINE_integer('randaug_layer', _NOISE.randaug_num_layers, 'RandAugment ops per image N.', flag_values=fv)
  flags.DEFINE_bool('cutout_op', _NOISE.use_cutout_op, 'Include Cutout in the RandAugment ops.', flag_values=fv)
  flags.DEFINE_string('unl_aug', 'default',
                      'Augmentation of unlabeled images: default = --augment_name.', flag_values=fv)
  flags.DEFINE_bool('remove_aug', False,
                    'Train with the evaluation preprocessing (centre crop).', flag_values=fv)

  # ------------------------------------------------- predict (predict_label.py)
  flags.DEFINE_string('predict_ckpt_path', '',
                      'Checkpoint for predict/export; default: latest in --model_dir.', flag_values=fv)
  flags.DEFINE_string('output_dir', '', 'predict: folder of the prediction files.', flag_values=fv)
  flags.DEFINE_string('info_dir', '', 'predict: folder of the per-shard info files.', flag_values=fv)
  flags.DEFINE_integer('num_shards', 128, 'predict: shards of the unlabeled set.', flag_values=fv)
  flags.DEFINE_string('shard_id', '0',
                      'predict: shard(s) to process, e.g. 3, 0,5,7, 2-4 or all.', flag_values=fv)
  flags.DEFINE_integer('total_replicas', 1,
                       'predict: split each shard among this many workers.', flag_values=fv)
  flags.DEFINE_integer('worker_id', 0, 'predict: this worker, < total_replicas.', flag_values=fv)
  flags.DEFINE_bool('reassign_label', False,
                    'predict: re-label filtered shards <file_prefix>-<worker_id>-'
                    '<shard>-of-<n> with this (newer) teacher.', flag_values=fv)
  flags.DEFINE_string('data_type', 'tfrecord', 'predict: only tfrecord.', flag_values=fv)
  flags.DEFINE_string('file_prefix', 'train', 'predict: prefix of the input shards.', flag_values=fv)
  flags.DEFINE_integer('predict_batch_size', 64, 'predict: images per batch.', flag_values=fv)
  flags.DEFINE_integer('num_samples_per_shard', 0,
                       'predict --reassign_label: save this many sample images.', flag_values=fv)

  # ------------------------------------------------------------------- export
  flags.DEFINE_string('export_dir', '',
                      'export: SavedModel folder; default <model_dir>/saved_model.', flag_values=fv)
  flags.DEFINE_string('export_keras_path', '',
                      'export: the .keras file; default <export_dir>.keras '
                      '(beside the SavedModel); none: no .keras file.', flag_values=fv)
