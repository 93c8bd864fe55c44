"""The config factory: image sizes, dataset defaults, noise spread, teachers."""

import dataclasses

import pytest

from noisy_student.core import config as config_lib
from noisy_student.core import datasets
from noisy_student.runtime import errors
from noisy_student.cli import config_flags
from noisy_student.core import factory

IMAGENET = datasets.get_builtin('imagenet')
SVHN = datasets.get_builtin('svhn')


@pytest.mark.parametrize('dataset, name, override, for_eval, expected', [
    (SVHN, 'efficientnet-b7', None, False, 32),        # the dataset's size
    (IMAGENET, 'efficientnet-b4', None, False, 380),   # the model's
    (IMAGENET, 'efficientnet-l2', None, False, 475),   # train resolution
    (IMAGENET, 'efficientnet-l2', None, True, 800),    # eval resolution
    (SVHN, 'efficientnet-b0', 48, False, 48),          # an explicit flag wins
])
def test_image_size_rules(dataset, name, override, for_eval, expected):
  assert factory.image_size(dataset, name, override=override,
                            for_eval=for_eval) == expected


def test_bad_image_size_and_model_name_name_the_flag():
  # Named as the argument from Python, as the flag inside a binary.
  with pytest.raises(errors.ConfigError,
                     match='^image_size must be positive, received: 0'):
    factory.image_size(SVHN, 'efficientnet-b0', override=0)
  with config_flags.flag_names(), pytest.raises(
      errors.ConfigError, match='^--input_image_size must be positive'):
    factory.image_size(SVHN, 'efficientnet-b0', override=0)
  with pytest.raises(errors.ConfigError, match='efficientnet-b99'):
    factory.model_config(SVHN, 'efficientnet-b99')


def test_model_config_takes_the_dataset_unless_overridden():
  noise = config_lib.NoiseConfig(dropout_rate=0.3, stochastic_depth_rate=0.1)
  model = factory.model_config(SVHN, 'efficientnet-b0', noise=noise)
  assert (model.num_classes, model.image_size, model.small_image) == (10, 32, True)
  assert model.mean_rgb == SVHN.mean_rgb and model.stddev_rgb == SVHN.stddev_rgb
  assert (model.dropout_rate, model.stochastic_depth_rate) == (0.3, 0.1)
  model = factory.model_config(SVHN, 'efficientnet-b0', num_classes=11,
                               small_image=False, width_coefficient=0.5)
  assert (model.num_classes, model.small_image) == (11, False)
  assert model.width_coefficient == 0.5


def test_data_config_gets_the_augmentation_noise():
  noise = config_lib.NoiseConfig(augment_name='v1', randaug_magnitude=5,
                                 randaug_num_layers=3, use_cutout_op=False)
  model = factory.model_config(SVHN, 'efficientnet-b0', noise=noise)
  data = factory.data_config(SVHN, model, noise, label_data_dir='/d', seed=7)
  assert (data.augment_name, data.unl_augment_name) == ('v1', 'v1')
  assert (data.randaug_magnitude, data.randaug_num_layers) == (5, 3)
  assert not data.use_cutout_op and data.seed == 7 and not data.flip
  assert (data.image_size, data.num_classes) == (32, 10)
  separate = dataclasses.replace(noise, unl_augment_name=None)
  data = factory.data_config(SVHN, model, separate, label_data_dir='/d')
  assert (data.augment_name, data.unl_augment_name) == ('v1', None)


def test_inference_size_is_the_eval_resolution_only_for_default_sizes():
  l2 = factory.model_config(IMAGENET, 'efficientnet-l2')
  assert factory.inference_image_size(l2) == 800
  custom = dataclasses.replace(l2, image_size=300)
  assert factory.inference_image_size(custom) == 300
  small = factory.model_config(SVHN, 'efficientnet-l2')
  assert factory.inference_image_size(small) == 32


def test_teacher_takes_the_students_data_and_coefficients():
  student = factory.model_config(IMAGENET, 'efficientnet-b0',
                                 width_coefficient=0.5, depth_coefficient=0.4)
  teacher = factory.teacher_model_config(student, 'efficientnet-l2')
  assert teacher.model_name == 'efficientnet-l2'
  assert teacher.image_size == 800  # the size it is built and run at
  assert (teacher.width_coefficient, teacher.depth_coefficient) == (0.5, 0.4)
  assert teacher.num_classes == 1000 and teacher.mean_rgb == student.mean_rgb
  small = factory.teacher_model_config(
      factory.model_config(SVHN, 'efficientnet-b0'), 'efficientnet-b4')
  assert small.image_size == 32 and small.small_image
