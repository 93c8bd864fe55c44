"""FGSM on linear models: epsilon 0 is clean accuracy, more never helps."""

import keras
import numpy as np
import pytest

from noisy_student.models import classifier as classifier_lib
from noisy_student.robust import fgsm
from tests import robustness_fixtures as fx


def _linear_classifier(kernel: np.ndarray, bias: np.ndarray,
                       image_size: int = 32) -> classifier_lib.Classifier:
  inputs = keras.Input((image_size, image_size, 3))
  flat = keras.layers.Flatten()(inputs)
  outputs = keras.layers.Dense(
      kernel.shape[1], kernel_initializer=keras.initializers.Constant(kernel),
      bias_initializer=keras.initializers.Constant(bias))(flat)
  return classifier_lib.Classifier.from_keras(keras.Model(inputs, outputs))


@pytest.fixture(scope='module')
def digits_linear():
  """Logistic regression on 8x8 digits, lifted to 32x32x3 0-255 inputs."""
  from sklearn.datasets import load_digits
  from sklearn.linear_model import LogisticRegression
  data = load_digits()
  model = LogisticRegression(max_iter=3000).fit(data.data[:1000],
                                                data.target[:1000])
  # A 32x32x3 pixel p = x8 * 255 / 16 repeated over 4x4 pixels and 3 channels.
  weights = model.coef_.T.reshape(8, 8, 10)
  kernel = np.repeat(np.repeat(weights, 4, 0), 4, 1)[:, :, None, :]
  kernel = np.repeat(kernel, 3, 2) * 16.0 / 255.0 / 48.0
  classifier = _linear_classifier(kernel.reshape(-1, 10), model.intercept_)
  images, labels = fx.digits(200, offset=1000)
  return classifier, images.astype(np.float32), labels


def test_epsilon_zero_is_clean_accuracy_and_accuracy_never_increases(
    digits_linear):
  classifier, images, labels = digits_linear
  clean = np.mean(np.argmax(classifier.predict_logits(images), -1) == labels)
  assert clean > 0.85
  batches = [(images[i:i + 64], labels[i:i + 64]) for i in range(0, 200, 64)]
  epsilons = [0, 1, 2, 4, 8, 16, 32, 64]
  results = fgsm.fgsm_accuracy(classifier, batches, epsilons)
  accuracy = [results['top_1_accuracy'][f'{e:g}'] for e in epsilons]
  assert results['num_images'] == 200
  assert accuracy[0] == pytest.approx(clean)
  assert all(b <= a for a, b in zip(accuracy, accuracy[1:])), accuracy
  assert accuracy[-1] < clean - 0.3


def test_binary_linear_model_is_monotone():
  """Two classes: each FGSM step lowers the true-class margin (provably)."""
  images, labels = fx.digits(120)
  keep = labels < 2
  images, labels = images[keep].astype(np.float32), labels[keep]
  direction = (images[labels == 0].mean(0) - images[labels == 1].mean(0))
  direction = direction.reshape(-1) / np.abs(direction).sum()
  midpoint = (images[labels == 0].mean(0) + images[labels == 1].mean(0)) / 2
  bias = -direction @ midpoint.reshape(-1)
  # Small logits: a saturated softmax would give a zero gradient (no attack).
  direction, bias = direction / 20.0, bias / 20.0
  classifier = _linear_classifier(np.stack([direction, -direction], 1),
                                  np.array([bias, -bias]))
  epsilons = [0, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 255]
  results = fgsm.fgsm_accuracy(classifier, [(images, labels)], epsilons)
  accuracy = [results['top_1_accuracy'][f'{e:g}'] for e in epsilons]
  assert accuracy[0] == 1.0
  assert all(b <= a for a, b in zip(accuracy, accuracy[1:])), accuracy
  assert accuracy[-1] < 0.5, accuracy
  assert 0 < sum(a < 1.0 for a in accuracy[:-1]), accuracy


def test_fgsm_images_bounds(digits_linear):
  classifier, images, labels = digits_linear
  x = images[:8]
  for epsilon in (0, 3, 300):
    adversarial = fgsm.fgsm_images(classifier, x, labels[:8], epsilon).numpy()
    assert adversarial.shape == x.shape
    assert adversarial.min() >= 0 and adversarial.max() <= 255
    assert np.abs(adversarial - x).max() <= epsilon + 1e-4
  assert np.array_equal(fgsm.fgsm_images(classifier, x, labels[:8], 0), x)
  # epsilon 3: every pixel with a nonzero gradient moves by 3 unless clipped.
  moved = np.abs(fgsm.fgsm_images(classifier, x, labels[:8], 3).numpy() - x)
  assert set(np.unique(np.round(moved, 4))) <= {0.0, 3.0}
  with pytest.raises(ValueError, match='epsilon'):
    fgsm.fgsm_images(classifier, x, labels[:8], -1)
