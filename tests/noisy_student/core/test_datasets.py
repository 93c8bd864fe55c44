import pytest

from noisy_student.core import datasets


def test_svhn_matches_original_task_info():
  svhn = datasets.get_builtin('svhn')
  assert svhn.num_train_images == 69257
  assert svhn.eval_split_sizes == {'dev': 4000, 'test': 26032}
  assert svhn.small_image and not svhn.flip and svhn.image_size == 32


def test_unknown_task_lists_known_ones():
  with pytest.raises(ValueError, match='digits.*imagenet'):
    datasets.get_builtin('mnist')
