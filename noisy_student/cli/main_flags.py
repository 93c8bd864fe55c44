"""Flag definitions of `python -m noisy_student.main` (imported only by main.py).

Original flags keep their names, defaults and meanings (google-research/
noisystudent main.py and predict_label.py). The recipe, model and data flags
are generated from the config dataclasses (`cli/config_flags.py`: their
fields, defaults and help texts); the rest (modes, devices, predict, export)
are declared here. Flags marked "[TPUEstimator]" only configured
TPUEstimator: they are accepted so that old scripts still run, and have no
effect.
"""

from absl import flags

from noisy_student.cli import config_flags
from noisy_student.core import config as config_lib
from noisy_student.core import defaults

# Config fields exposed as flags, and the binary's own defaults where the
# original's differ from the dataclass's (None: the dataset's value).
TRAIN_DEFAULTS = {'train_last_step_num': -1, 'num_train_images': None,
                  'mixed_precision': ''}
MODEL_FIELDS = ('model_name', 'num_classes', 'image_size', 'small_image',
                'width_coefficient', 'depth_coefficient', 'sync_batch_norm')
MODEL_DEFAULTS = {'image_size': None}
DATA_FIELDS = ('label_data_dir', 'unlabel_data_dir', 'num_train_shards',
               'remove_aug', 'use_cache', 'deterministic')
DATA_DEFAULTS = {'label_data_dir': None}


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
  flags.DEFINE_string('model_dir', None,
                      'Where checkpoints, TensorBoard summaries, FLAGS.json, '
                      'model_config.json and eval_results.json are written.', flag_values=fv)
  flags.DEFINE_bool('init_model', False,
                    'Initialise the student from --init_model_path (EMA weights).', flag_values=fv)
  flags.DEFINE_string('init_model_path', None,
                      'Checkpoint (ours, .keras or original TF1) to initialise '
                      'the student from; only used with --init_model.', flag_values=fv)

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
                    'logits and loss). Default True as in the original; '
                    '--mixed_precision overrides it.', flag_values=fv)
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
  flags.DEFINE_integer('num_eval_images', None,
                       'Accepted for compatibility: evaluation counts the records.', flag_values=fv)
  flags.DEFINE_integer('num_test_images', None,
                       'Accepted for compatibility: evaluation counts the records.', flag_values=fv)
  flags.DEFINE_string('eval_splits', '',
                      'Comma-separated eval splits; default: the task\'s '
                      '(dev,test or validation).', flag_values=fv)

  # ------------------------------------------------------------ loop & ckpts
  flags.DEFINE_integer('fix_layer_num', -1, 'Not supported; must stay -1.', flag_values=fv)

  # -------------------------------------------------------------- optimiser

  # ------------------------------------------------------------ noisy student
  flags.DEFINE_string('teacher_model_name', None,
                      'Model of the on-the-fly teacher (e.g. efficientnet-b0).', flag_values=fv)
  flags.DEFINE_string('teacher_model_path', None,
                      'Teacher weights: a model_dir/checkpoint of ours, a .keras '
                      'file or an original TF1 checkpoint.', flag_values=fv)

  # ------------------------------------------------------------ augmentation

  # ------------------------------------------------- predict (predict_label.py)
  flags.DEFINE_string('predict_ckpt_path', '',
                      'Checkpoint for predict/export; default: latest in --model_dir.', flag_values=fv)
  flags.DEFINE_string('output_dir', '', 'predict: folder of the prediction files.', flag_values=fv)
  flags.DEFINE_string('info_dir', '', 'predict: folder of the per-shard info '
                      'files; default <output_dir>/info.', flag_values=fv)
  flags.DEFINE_integer('num_shards', None,
                       'predict: shards of the unlabeled set; default: the '
                       'folder\'s count (the original required it, default '
                       '128).', flag_values=fv)
  flags.DEFINE_string('shard_id', 'all',
                      'predict: shard(s) to process, e.g. 3, 0,5,7, 2-4 or all '
                      '(default; the original\'s was 0).', flag_values=fv)
  flags.DEFINE_integer('total_replicas', 1,
                       'predict: split each shard among this many workers.', flag_values=fv)
  flags.DEFINE_integer('worker_id', 0, 'predict: this worker, < total_replicas.', flag_values=fv)
  flags.DEFINE_bool('reassign_label', False,
                    'predict: re-label filtered shards <file_prefix>-<worker_id>-'
                    '<shard>-of-<n> with this (newer) teacher.', flag_values=fv)
  flags.DEFINE_string('data_type', 'tfrecord', 'predict: only tfrecord.', flag_values=fv)
  flags.DEFINE_string('file_prefix', 'train', 'predict: prefix of the input '
                      'shards; default: the folder\'s one unlabeled split '
                      '(dataset_info.json), else train.', flag_values=fv)
  flags.DEFINE_integer('predict_batch_size', 64, 'predict: images per batch.', flag_values=fv)
  flags.DEFINE_integer('num_samples_per_shard', 0,
                       'predict --reassign_label: save this many sample images.', flag_values=fv)

  # ------------------------------------------------------------------- export
  flags.DEFINE_string('export_dir', '',
                      'export: SavedModel folder; default <model_dir>/saved_model.', flag_values=fv)
  flags.DEFINE_string('export_keras_path', '',
                      'export: the .keras file; default <export_dir>.keras '
                      '(beside the SavedModel); none: no .keras file.', flag_values=fv)

  # ------------------------------------- recipe, model and data (generated)
  config_flags.define(config_lib.TrainConfig, fv, base=defaults.ORIGINAL.train,
                      defaults=TRAIN_DEFAULTS)
  config_flags.define(config_lib.NoiseConfig, fv, base=defaults.ORIGINAL.noise)
  config_flags.define(config_lib.ModelConfig, fv, fields=MODEL_FIELDS,
                      defaults=MODEL_DEFAULTS)
  config_flags.define(config_lib.DataConfig, fv, fields=DATA_FIELDS,
                      defaults=DATA_DEFAULTS)
