"""evaluate_* on small trees with fixed-logit models: hand-computed values."""

import os

import numpy as np
import pytest

from data import layout
from data import label_maps
from data import make_corrupted
from data import records
from data import writers
from noisy_student.robust import benchmarks as re_
from noisy_student.robust import metrics as rb
from tests import robustness_fixtures as fx

WNIDS = label_maps.imagenet_wnids()
REVOLVER, STINGRAY, GOLDFINCH, PANDA = 763, 6, 11, 388


def _imagenet_logits(**values):
  logits = np.zeros(1000, np.float32)
  for index, value in values.items():
    logits[int(index[1:])] = value
  return logits


def test_imagenet_a_accuracy_uses_the_200_classes(tmp_path):
  root = tmp_path / 'a'
  fx.save_image(str(root / WNIDS[REVOLVER] / '1.jpg'), fx.photo('chelsea'))
  fx.save_image(str(root / WNIDS[REVOLVER] / '2.jpg'), fx.photo('coffee'))
  fx.save_image(str(root / WNIDS[STINGRAY] / '3.jpg'), fx.photo('rocket'))
  # The panda logit is the largest, but panda is not an ImageNet-A class.
  classifier = fx.constant_classifier(_imagenet_logits(c388=9.0, c763=5.0))
  results = re_.evaluate_imagenet_a(classifier, str(root), batch_size=2)
  assert results['top_1_accuracy'] == pytest.approx(2 / 3)
  assert results['num_images'] == 3 and results['benchmark'] == 'imagenet_a'
  assert results['preprocess'] == ('centre crop (padding 32) + bicubic resize '
                                   'to 32')  # the standard eval preprocessing
  # An injected preprocess_fn is used for every image and named in the JSON.
  calls = []

  def center_square(image):
    calls.append(image.shape)
    side = min(image.shape[:2])
    return np.asarray(image[:side, :side][:32, :32], np.float32)

  custom = re_.evaluate_imagenet_a(classifier, str(root),
                                   preprocess_fn=center_square)
  assert len(calls) == 3 and custom['preprocess'] == 'center_square'
  # Files are read in class (wnid) order: stingray's folder comes first.
  assert re_.evaluate_imagenet_a(classifier, str(root),
                                 max_images=2)['top_1_accuracy'] == 0.5


def _tfds_copy(folder, labeled_photos) -> str:
  """Shards as data.tfds_to_tfrecord writes them (ImageNet labels, 0-based)."""
  os.makedirs(folder, exist_ok=True)
  rows = [records.serialize_labeled(fx.encode_png(fx.photo(name, (40, 36))),
                                    label) for name, label in labeled_photos]
  writers.write_records(os.path.join(folder, layout.shard_name('test', 0, 1)),
                        rows)
  return str(folder)


def test_tfds_copies_of_imagenet_a_and_c_score_like_the_trees(tmp_path):
  # data.tfds_to_tfrecord --dataset=imagenet_a / imagenet2012_corrupted/...
  # writes shards where the published trees hold class folders.
  root = _tfds_copy(tmp_path / 'a', [('chelsea', REVOLVER),
                                     ('coffee', REVOLVER),
                                     ('rocket', STINGRAY)])
  classifier = fx.constant_classifier(_imagenet_logits(c388=9.0, c763=5.0))
  results = re_.evaluate_imagenet_a(classifier, root, batch_size=2)
  assert results['top_1_accuracy'] == pytest.approx(2 / 3)
  assert results['num_images'] == 3
  for severity in rb.SEVERITIES:
    _tfds_copy(tmp_path / 'c' / 'fog' / str(severity),
               [('chelsea', STINGRAY), ('coffee', GOLDFINCH)])
  stingray = fx.constant_classifier(_imagenet_logits(c6=1.0))
  corrupted = re_.evaluate_imagenet_c(stingray, str(tmp_path / 'c'),
                                      batch_size=4)
  assert corrupted['errors'] == {'fog': {str(s): 0.5 for s in rb.SEVERITIES}}
  assert corrupted['ce']['fog'] == pytest.approx(50 / 0.819324, rel=1e-6)


def _imagenet_c_tree(root, corruptions=('fog', 'gaussian_noise')):
  for c in corruptions:
    for s in rb.SEVERITIES:
      fx.save_image(str(root / c / str(s) / WNIDS[STINGRAY] / 'a.JPEG'),
                    fx.photo('chelsea', (40, 36)))
      fx.save_image(str(root / c / str(s) / WNIDS[GOLDFINCH] / 'b.JPEG'),
                    fx.photo('coffee', (40, 36)))
  return str(root)


def test_imagenet_c_mce_with_alexnet(tmp_path):
  root = _imagenet_c_tree(tmp_path / 'c')
  classifier = fx.constant_classifier(_imagenet_logits(c6=1.0))  # stingray
  results = re_.evaluate_imagenet_c(classifier, root, batch_size=4,
                                    clean_error=0.2)
  assert results['errors'] == {c: {str(s): 0.5 for s in rb.SEVERITIES}
                               for c in ('gaussian_noise', 'fog')}
  # CE = 100 * (5 * 0.5) / (5 * AlexNet average).
  assert results['ce']['fog'] == pytest.approx(50 / 0.819324, rel=1e-6)
  assert results['ce']['gaussian_noise'] == pytest.approx(50 / 0.886428,
                                                          rel=1e-6)
  assert results['mce'] == pytest.approx((50 / 0.819324 + 50 / 0.886428) / 2,
                                         rel=1e-6)
  # Relative: 100 * 5 * (0.5 - 0.2) / (5 * (avg - 0.43478)).
  assert results['relative_ce']['fog'] == pytest.approx(
      30 / (0.819324 - 0.43478), rel=1e-6)
  assert results['baseline'] == 'alexnet' and not results['complete']
  assert results['num_images']['fog']['3'] == 2
  # Subsets, and max_images: only the stingray image is scored.
  subset = re_.evaluate_imagenet_c(classifier, root, corruptions=['fog'],
                                   severities=(2, 4), max_images=1,
                                   baseline=None)
  assert subset['errors'] == {'fog': {'2': 0.0, '4': 0.0}}
  assert 'mce' not in subset and subset['mean_error'] == 0.0


def _black_white(pattern, size=32):
  return np.stack([np.full((size, size, 3), 255 if p == 'W' else 0, np.uint8)
                   for p in pattern])


def test_imagenet_p_flip_probability_and_top5_distance(tmp_path):
  root = tmp_path / 'p'
  fx.write_video(root / 'translate' / WNIDS[STINGRAY] / 'v1.mp4',
              _black_white('WBBWWW'))
  fx.write_video(root / 'translate' / WNIDS[GOLDFINCH] / 'v2.mp4',
              _black_white('WWWWWW'))
  fx.write_video(root / 'gaussian_noise' / WNIDS[STINGRAY] / 'v.mp4',
              _black_white('WBWWBW'))
  fx.write_video(root / 'gaussian_noise_2' / WNIDS[STINGRAY] / 'v.mp4',
              _black_white('WBBBBB'))
  classifier = fx.brightness_classifier()   # white -> class 0, black -> 9
  results = re_.evaluate_imagenet_p(classifier, str(root),
                                    difficulties=(1, 2), batch_size=4)
  flips = results['flip_probability']
  # translate, consecutive frames: video 1 has 2 flips in 5 pairs, video 2 none.
  assert flips['translate']['1'] == pytest.approx((2 / 5 + 0) / 2)
  # Step 2: pairs (0,2) (2,4) (1,3) (3,5) -> 3 flips of 4.
  assert flips['translate']['2'] == pytest.approx((3 / 4 + 0) / 2)
  # Noise: every frame against frame 0.
  assert flips['gaussian_noise'] == pytest.approx({'1': 2 / 5, '2': 1.0})
  # Every flip is a full reversal of the 10-class ranking: distance 15.
  assert results['top5_distance']['translate']['1'] == pytest.approx(
      15 * 0.2)
  assert results['top5_distance']['gaussian_noise']['2'] == pytest.approx(15)
  assert results['num_videos'] == {'translate': {'1': 2, '2': 2},
                                   'gaussian_noise': {'1': 1, '2': 1}}
  # Unnormalised means over difficulties, then perturbations.
  assert results['mean_flip_probability'] == pytest.approx(
      ((0.2 + 0.375) / 2 + (0.4 + 1.0) / 2) / 2)
  third = re_.evaluate_imagenet_p(classifier, str(root),
                                  perturbations=['translate'],
                                  difficulties=(3,))
  # Step 3: (0,3) (1,4) (2,5) -> 2 flips of 3 in video 1.
  assert third['flip_probability']['translate']['3'] == pytest.approx(
      (2 / 3) / 2)
  with pytest.raises(FileNotFoundError, match='gaussian_noise_3'):
    re_.evaluate_imagenet_p(classifier, str(root), difficulties=(3,))
  # Normalised by another run (here: itself at twice the flip rate).
  baseline = {'model': 'teacher', 'flip_probability': {
      p: {d: 2 * v for d, v in t.items()} for p, t in flips.items()},
              'top5_distance': results['top5_distance']}
  normalised = re_.evaluate_imagenet_p(classifier, str(root),
                                       difficulties=(1, 2), baseline=baseline)
  assert normalised['mfr'] == pytest.approx(50.0)
  assert normalised['mt5d'] == pytest.approx(100.0)


@pytest.fixture(scope='module')
def corrupted_copy(tmp_path_factory):
  root = tmp_path_factory.mktemp('corrupted')
  images = fx.photos((40, 36))
  pattern = fx.write_labeled(str(root / 'clean'), images, [3, 1, 3, 2])
  make_corrupted.make_corrupted(pattern, str(root / 'c'),
                                corruptions=['contrast', 'spatter'],
                                severities=[1, 5])
  return pattern, str(root / 'c')


def test_evaluate_corrupted(corrupted_copy):
  pattern, root = corrupted_copy
  classifier = fx.constant_classifier(np.eye(10)[3])   # always class 3
  results = re_.evaluate_corrupted(classifier, root, 'test', batch_size=3)
  assert results['errors'] == {'contrast': {'1': 0.5, '5': 0.5},
                               'spatter': {'1': 0.5, '5': 0.5}}
  assert results['clean_error'] == 0.5                 # from the info file
  assert results['clean_file_pattern'] == pattern
  assert results['extra']['mean_error'] == 0.5         # spatter is extra
  assert 'mce' not in results                          # no baseline
  teacher = {'model': 'teacher', 'clean_error': 0.25,
             'errors': {'contrast': {'1': 1.0, '5': 1.0},
                        'spatter': {'1': 0.25, '5': 0.75}}}
  results = re_.evaluate_corrupted(classifier, root, 'test',
                                   baseline=teacher, severities=[5])
  assert results['ce'] == {'contrast': 50.0}
  assert results['extra']['ce'] == pytest.approx({'spatter': 100 * 0.5 /
                                                  0.75})
  # relative: (0.5 - 0.5) / (1.0 - 0.25) = 0.
  assert results['relative_mce'] == 0.0
  with pytest.raises(FileNotFoundError, match='dev-'):
    re_.evaluate_corrupted(classifier, root, 'dev')


def test_evaluate_fgsm_reads_tfrecords(corrupted_copy):
  pattern, _ = corrupted_copy
  classifier = fx.constant_classifier(np.eye(10)[3])
  results = re_.evaluate_fgsm(classifier, pattern, epsilons=[0, 8],
                              batch_size=3)
  # A constant model has no input gradient: the attack changes nothing.
  assert results['top_1_accuracy'] == {'0': 0.5, '8': 0.5}
  assert results['num_images'] == 4 and results['benchmark'] == 'fgsm'


def test_load_baseline(tmp_path):
  assert re_.load_baseline(None) is None
  assert re_.load_baseline('alexnet')['clean_error'] == rb.ALEXNET_CLEAN_ERROR
  with pytest.raises(FileNotFoundError, match='nope.json'):
    re_.load_baseline(str(tmp_path / 'nope.json'))
  bad = tmp_path / 'bad.json'
  bad.write_text('{"benchmark": "fgsm"}')
  with pytest.raises(ValueError, match='bad.json'):
    re_.load_baseline(str(bad))
  assert os.path.exists(bad)
