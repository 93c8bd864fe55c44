"""Flags -> config: original names/defaults, task defaults, errors naming flags."""

from absl import flags
import pytest

from noisy_student import main
from noisy_student.core import config as config_lib
from noisy_student.runtime import errors


def _flags(*argv) -> flags.FlagValues:
  fv = flags.FlagValues()
  main.define_flags(fv)
  fv(['main', *argv])
  return fv


def _config(*argv):
  """The config of `argv`; ImageNet (the original's default task) if none given."""
  if not any(a.startswith('--task_name') for a in argv):
    argv = ('--task_name=imagenet', *argv)
  return main.config_from_flags(_flags(*argv))


def test_original_defaults_are_kept():
  fv = _flags()
  assert fv.mode == 'train_and_eval'
  assert fv.train_batch_size == 4096 and fv.train_steps == 109474
  assert fv.base_learning_rate == 0.016
  assert fv.moving_average_decay == 0.9999
  assert fv.randaug_mag == 27 and fv.randaug_layer == 2
  assert fv.teacher_softmax_temp == -1 and fv.use_tpu
  assert fv.use_bfloat16 and fv.label_smoothing == 0.1


def test_svhn_task_defaults_and_train_ratio():
  cfg = _config('--task_name=svhn', '--use_tpu=false', '--use_bfloat16=false',
                '--label_data_dir=/d', '--model_dir=/m', '--train_steps=100',
                '--train_ratio=2', '--unlabel_ratio=5',
                '--unlabel_data_dir=/u', '--teacher_softmax_temp=1')
  assert cfg.model.image_size == 32 and cfg.model.small_image
  assert cfg.model.num_classes == 10 and cfg.data.flip is False
  assert cfg.train.num_train_images == 69257
  assert cfg.train.train_steps == 200 and cfg.train.train_last_step_num == 200
  assert cfg.strategy == 'default' and cfg.train.mixed_precision == 'float32'
  assert cfg.eval_splits == ('dev', 'test')
  assert cfg.data.pseudo_labels_stored  # no teacher: offline pseudo-labels
  assert cfg.train.per_replica_batches(1) == (4096, 20480)


def test_explicit_flag_beats_task_default():
  cfg = _config('--task_name=svhn', '--use_tpu=false', '--label_data_dir=/d',
                '--model_dir=/m', '--num_label_classes=11',
                '--small_image_model=false', '--input_image_size=40')
  assert cfg.model.num_classes == 11 and cfg.model.image_size == 40
  assert not cfg.model.small_image
  assert cfg.train.mixed_precision == 'bfloat16'  # --use_bfloat16 default


def test_strategy_resolution(monkeypatch):
  base = ('--label_data_dir=/d', '--model_dir=/m')
  # --use_tpu defaults to True (the original's): a TPU when one can be there,
  # else the default strategy in float32, announced, instead of a traceback.
  monkeypatch.setattr(main.distribute, 'tpu_present', lambda tpu=None: True)
  assert _config(*base).strategy == 'tpu'
  monkeypatch.setattr(main.distribute, 'tpu_present', lambda tpu=None: False)
  fallback = _config(*base)
  assert fallback.strategy == 'default'
  assert fallback.train.mixed_precision == 'float32'
  assert _config(*base, '--use_tpu=true').strategy == 'tpu'  # asked: no fallback
  assert _config(*base, '--strategy=mirrored').strategy == 'mirrored'
  with pytest.raises(errors.ConfigError, match='use_tpu'):
    _config(*base, '--use_tpu=true', '--strategy=mirrored')


@pytest.mark.parametrize('argv, flag', [
    (('--model_dir=/m',), 'label_data_dir'),
    (('--label_data_dir=/d',), 'model_dir'),
    (('--label_data_dir=/d', '--model_dir=/m', '--unlabel_ratio=2'),
     'unlabel_data_dir'),
    (('--label_data_dir=/d', '--model_dir=/m', '--teacher_softmax_temp=0'),
     'teacher_softmax_temp'),
    (('--label_data_dir=/d', '--model_dir=/m', '--teacher_model_name=efficientnet-b0'),
     'teacher_model_path'),
    (('--label_data_dir=/d', '--model_dir=/m', '--augment_name=v2'),
     'augment_name'),
    (('--task_name=mnist', '--label_data_dir=/d', '--model_dir=/m'),
     'task_name'),
    (('--task_name=svhn', '--label_data_dir=/d', '--model_dir=/m',
      '--input_image_size=40'), 'input_image_size=40: the small-image'),
    (('--label_data_dir=/d', '--model_dir=/m', '--train_steps=-5'),
     r'--train_steps must be in \[1, inf\), received: -5'),
    (('--label_data_dir=/d', '--model_dir=/m', '--train_batch_size=0'),
     '--train_batch_size'),
    (('--label_data_dir=/d', '--model_dir=/m', '--input_image_size=0'),
     r'--input_image_size must be in \[1, inf\), received: 0'),
    (('--label_data_dir=/d', '--model_dir=/m', '--model_name=efficientnet-b99'),
     'efficientnet-b99'),
    (('--label_data_dir=/d', '--model_dir=/m', '--dropout_rate=1.5'),
     '--dropout_rate'),
    (('--label_data_dir=/d', '--model_dir=/m', '--randaug_mag=-1'),
     '--randaug_mag'),
    # --train_ratio scales --train_steps: a bad ratio is named, not the steps.
    (('--label_data_dir=/d', '--model_dir=/m', '--train_ratio=0'),
     r'^--train_ratio must be in \(0, inf\), received: 0.0$'),
    (('--label_data_dir=/d', '--model_dir=/m', '--train_steps=10',
      '--train_ratio=0.01'),
     r'^--train_steps=10 x --train_ratio=0.01 is 0 steps'),
    (('--label_data_dir=/d', '--model_dir=/m', '--deterministic',
      '--deterministic_input'), '--deterministic is the old name of '
     '--deterministic_input; pass only one of them'),
])
def test_bad_flags_name_the_flag(argv, flag):
  with pytest.raises(errors.ConfigError, match=flag):
    _config('--use_tpu=false', *argv)


def test_a_folder_without_dataset_info_and_no_task_is_one_clear_error(tmp_path):
  with pytest.raises(errors.ConfigError) as error:
    main.config_from_flags(_flags('--use_tpu=false', f'--label_data_dir={tmp_path}',
                                  '--model_dir=/m'))
  message = str(error.value)
  assert str(tmp_path) in message and 'dataset_info.json' in message
  assert '--task_name' in message and '--num_label_classes' in message
  # The counts as flags are enough.
  cfg = main.config_from_flags(_flags(
      '--use_tpu=false', f'--label_data_dir={tmp_path}', '--model_dir=/m',
      '--num_label_classes=7', '--num_train_images=70', '--input_image_size=32'))
  assert (cfg.model.num_classes, cfg.train.num_train_images) == (7, 70)
  assert cfg.model.image_size == 32 and cfg.model.small_image


def test_init_model_initialises_the_student_only_without_a_teacher():
  base = ('--task_name=svhn', '--use_tpu=false', '--label_data_dir=/d',
          '--model_dir=/m', '--init_model', '--init_model_path=/ckpt')
  assert _config(*base).init_model_path == '/ckpt'
  assert _config(*base[:-2], '--init_model_path=/ckpt').init_model_path is None
  # As the original (utils.init_from_ckpt): with a teacher, only the
  # teacher's checkpoint is read; the student starts from scratch.
  with_teacher = _config(*base, '--teacher_model_name=efficientnet-b0',
                         '--teacher_model_path=/teacher')
  assert with_teacher.init_model_path is None
  assert with_teacher.teacher.path == '/teacher'


def test_the_mode_table_has_every_mode_of_the_flag():
  assert tuple(main.MODES) == config_lib.MODES


def test_an_l2_teacher_from_an_original_checkpoint_runs_at_800(tmp_path):
  # A TF1 checkpoint carries no model_config.json: the teacher's size comes
  # from the binary's own config path, the L2's eval resolution (the
  # original ran its L2 teacher at 800, not at its 475 train size).
  tf1 = tmp_path / 'noisy_student_efficientnet-l2' / 'model.ckpt'
  cfg = _config('--use_tpu=false', '--label_data_dir=/d', '--model_dir=/m',
                '--unlabel_ratio=1', '--unlabel_data_dir=/u',
                '--teacher_model_name=efficientnet-l2',
                f'--teacher_model_path={tf1}')
  assert cfg.teacher.model.model_name == 'efficientnet-l2'
  assert cfg.teacher.model.image_size == 800
  assert cfg.data.teacher_image_size == 800
  assert cfg.model.image_size == 224  # the student's own (b0) train size


def test_teacher_model_path_without_a_name_starts_no_teacher(caplog):
  # As the original: --teacher_model_path alone is ignored (here: with a
  # warning), and the student learns from stored pseudo-labels.
  cfg = _config('--use_tpu=false', '--label_data_dir=/d', '--model_dir=/m',
                '--unlabel_ratio=1', '--unlabel_data_dir=/u',
                '--teacher_model_path=/some/teacher')
  assert cfg.teacher is None and cfg.data.pseudo_labels_stored
  assert cfg.data.teacher_image_size is None
  assert any('--teacher_model_path is ignored' in r.getMessage()
             for r in caplog.records)


def test_a_folder_that_describes_itself_sizes_the_loop_to_its_data(digits_dir):
  """No --task_name: batch, steps, loop, evaluation and EMA from the folder's
  300 labeled images; a flag the user passes keeps its meaning."""
  base = ('--use_tpu=false', f'--label_data_dir={digits_dir}', '--model_dir=/m')
  cfg = main.config_from_flags(_flags(*base))
  train = cfg.train
  assert train.num_train_images == 300
  assert train.train_batch_size == 32        # 300 images hold 9 batches
  assert train.train_steps == 3281           # 350 epochs
  assert train.iterations_per_loop == 164 == train.save_checkpoints_steps
  assert train.steps_per_eval == 328
  assert train.moving_average_decay == pytest.approx(1 - 10 / 3281)
  given = main.config_from_flags(_flags(*base, '--train_batch_size=64',
                                        '--moving_average_decay=0.9'))
  assert given.train.train_batch_size == 64
  assert given.train.train_steps == int(350 * 300 / 64)
  assert given.train.moving_average_decay == 0.9
  # --train_ratio still scales the (sized) steps, as the original's.
  halved = main.config_from_flags(_flags(*base, '--train_ratio=0.5'))
  assert halved.train.train_steps == int(3281 * 0.5)
  # A built-in task keeps the original's values.
  task = main.config_from_flags(_flags(*base, '--task_name=digits'))
  assert task.train.train_batch_size == 4096
  assert task.train.train_steps == 109474
