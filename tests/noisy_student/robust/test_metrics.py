"""noisy_student/robust/metrics.py metrics against hand-computed values."""

import numpy as np
import pytest

from noisy_student.robust import metrics as rb


# ---------------------------------------------------------------------------
# Constants.
# ---------------------------------------------------------------------------
def test_corruption_order_matches_imagecorruptions():
  from imagecorruptions import get_corruption_names
  assert rb.CORRUPTIONS == tuple(get_corruption_names('common'))
  assert rb.EXTRA_CORRUPTIONS == tuple(get_corruption_names('validation'))
  assert len(rb.ALL_CORRUPTIONS) == 19


def test_alexnet_average_is_the_mean_of_the_severities():
  assert set(rb.ALEXNET_ERRORS) == set(rb.ALL_CORRUPTIONS)
  for name, errors in rb.ALEXNET_ERRORS.items():
    assert len(errors) == 5
    assert np.mean(errors) == pytest.approx(rb.ALEXNET_AVERAGE_ERRORS[name],
                                            abs=1e-6)


def test_imagenet_a_indices():
  indices = rb.IMAGENET_A_INDICES
  assert len(indices) == 200 == len(set(indices))
  assert list(indices) == sorted(indices)
  assert indices[:3] == (6, 11, 13) and indices[-1] == 988
  assert 763 in indices and 388 not in indices   # revolver yes, panda no


def test_perturbation_sets():
  assert len(rb.PERTURBATIONS) == 10 and len(rb.EXTRA_PERTURBATIONS) == 4
  assert [p for p in rb.ALL_PERTURBATIONS if rb.is_noise_perturbation(p)] == [
      'gaussian_noise', 'shot_noise', 'speckle_noise']


# ---------------------------------------------------------------------------
# Top-k and ImageNet-A.
# ---------------------------------------------------------------------------
def test_top_k():
  logits = np.array([[0.1, 0.5, 0.2, 0.0, -1, -2],
                     [3.0, 0.0, 1.0, 2.0, -1, -2],
                     [0.0, 0.0, 0.0, 0.0, 0.0, 9.0]])
  labels = [1, 2, 4]
  assert rb.top_k_correct(logits, labels, 1).tolist() == [True, False, False]
  assert rb.top_k_correct(logits, labels, 3).tolist() == [True, True, False]
  assert rb.top_k_error(logits, labels, 1) == pytest.approx(2 / 3)
  # Ties go to the lower class index (label 4 is 6th among the zeros + 9).
  assert rb.top_k_correct(logits, labels, 5).tolist() == [True, True, False]
  with pytest.raises(ValueError, match='labels'):
    rb.top_k_error(logits, [1, 2])


def test_imagenet_a_scores_only_its_200_classes():
  logits = np.zeros((3, 1000), np.float32)
  logits[0, 388] = 9.0   # panda, not in ImageNet-A: ignored
  logits[0, 763] = 5.0   # revolver
  logits[1, 6] = 1.0
  logits[2, 999] = 3.0   # nothing in the 200 is positive -> first (6) wins
  predictions = rb.imagenet_a_predictions(logits)
  assert predictions.tolist() == [763, 6, 6]
  assert rb.imagenet_a_correct(logits, [763, 6, 999]).tolist() == [
      True, True, False]
  assert np.argmax(logits[0]) == 388  # the 1000-way argmax would be wrong


# ---------------------------------------------------------------------------
# ImageNet-C.
# ---------------------------------------------------------------------------
def _model_errors(names=rb.CORRUPTIONS):
  # 0.1, 0.2, ..., 0.5 at severities 1..5: sum 1.5 per corruption.
  return {c: {str(s): 0.1 * s for s in rb.SEVERITIES} for c in names}


def test_corruption_error_by_hand():
  alexnet = dict(zip(rb.SEVERITIES, rb.ALEXNET_ERRORS['gaussian_noise']))
  errors = {s: 0.1 * s for s in rb.SEVERITIES}
  # 100 * 1.5 / (0.69528 + 0.82542 + 0.93554 + 0.98138 + 0.99452)
  assert rb.corruption_error(errors, alexnet) == pytest.approx(
      150 / 4.43214)
  assert rb.corruption_error(errors, alexnet) == pytest.approx(33.84369, 1e-6)
  # Two severities only: (0.1 + 0.2) / (0.69528 + 0.82542).
  assert rb.corruption_error({1: 0.1, '2': 0.2}, alexnet) == pytest.approx(
      100 * 0.3 / 1.5207)
  with pytest.raises(ValueError, match='severities'):
    rb.corruption_error({6: 0.1}, alexnet)


def test_mce_with_alexnet_constants():
  summary = rb.summarize_corruptions(_model_errors(), rb.alexnet_baseline(),
                                     clean_error=0.2)
  expected_ce = {c: 150 / (5 * rb.ALEXNET_AVERAGE_ERRORS[c])
                 for c in rb.CORRUPTIONS}
  assert summary['ce'] == pytest.approx(expected_ce, rel=1e-6)
  assert summary['mce'] == pytest.approx(np.mean(list(expected_ce.values())),
                                         rel=1e-6)
  assert summary['mce'] == pytest.approx(38.8035, abs=1e-4)
  assert summary['mean_error'] == pytest.approx(0.3)
  assert summary['complete'] and summary['missing'] == []
  assert summary['baseline'] == 'alexnet'
  # Relative: sum_s (E_s - 0.2) = 0.5; sum_s (A_s - 0.43478).
  expected_rel = {c: 100 * 0.5 / (5 * rb.ALEXNET_AVERAGE_ERRORS[c] -
                                  5 * 0.43478) for c in rb.CORRUPTIONS}
  assert summary['relative_ce'] == pytest.approx(expected_rel, rel=1e-6)
  assert summary['relative_mce'] == pytest.approx(
      np.mean(list(expected_rel.values())), rel=1e-6)
  # The extra corruptions are absent here and reported separately.
  assert summary['extra']['mean_error'] is None
  assert summary['extra']['ce'] == {}


def test_extra_corruptions_are_reported_separately():
  errors = _model_errors(rb.CORRUPTIONS[:2] + ('spatter',))
  summary = rb.summarize_corruptions(errors, rb.alexnet_baseline())
  assert set(summary['ce']) == {'gaussian_noise', 'shot_noise'}
  assert summary['extra']['ce'] == pytest.approx(
      {'spatter': 150 / (5 * 0.717512)}, rel=1e-6)
  assert summary['extra']['mce'] == pytest.approx(150 / (5 * 0.717512),
                                                  rel=1e-6)
  assert not summary['complete'] and len(summary['missing']) == 13
  assert 'relative_mce' not in summary  # no clean error given


def test_any_model_as_baseline_and_undefined_ce():
  teacher = {'model': 'teacher', 'clean_error': 0.3,
             'errors': {'fog': {'1': 0.4, '2': 0.6},
                        'snow': {'1': 0.2, '2': 0.3}}}
  student = {'fog': {'1': 0.3, '2': 0.4}, 'snow': {'1': 0.2, '2': 0.2}}
  summary = rb.summarize_corruptions(student, teacher, clean_error=0.1)
  assert summary['baseline'] == 'teacher'
  assert summary['ce'] == pytest.approx({'fog': 70.0, 'snow': 80.0})
  assert summary['mce'] == pytest.approx(75.0)
  # fog: (0.2 + 0.3) / (0.1 + 0.3) = 125%; snow: the teacher's snow error does
  # not exceed its clean error, so the relative CE is undefined.
  assert summary['relative_ce']['fog'] == pytest.approx(125.0)
  assert summary['relative_ce']['snow'] is None
  assert summary['relative_mce'] is None


def test_unnormalised_without_baseline_and_unknown_names():
  summary = rb.summarize_corruptions({'fog': {'3': 0.25}})
  assert summary['corruption_error'] == {'fog': 0.25}
  assert summary['mean_error'] == 0.25 and 'mce' not in summary
  with pytest.raises(ValueError, match='fgo'):
    rb.summarize_corruptions({'fgo': {'1': 0.2}})


# ---------------------------------------------------------------------------
# ImageNet-P.
# ---------------------------------------------------------------------------
def test_reference_pairs():
  assert rb.reference_pairs(4, noise=True) == [(0, 1), (0, 2), (0, 3)]
  assert rb.reference_pairs(4, noise=True, difficulty=3) == [
      (0, 1), (0, 2), (0, 3)]
  assert rb.reference_pairs(4, noise=False) == [(0, 1), (1, 2), (2, 3)]
  assert rb.reference_pairs(6, noise=False, difficulty=2) == [
      (0, 2), (2, 4), (1, 3), (3, 5)]
  assert rb.reference_pairs(6, noise=False, difficulty=3) == [
      (0, 3), (1, 4), (2, 5)]


def test_flip_probability_by_hand():
  video = [0, 1, 1, 1, 1, 1]
  # Noise: every frame against frame 0 -> 5 flips of 5.
  assert rb.video_flip_rate(video, noise=True) == 1.0
  assert rb.video_flip_rate(video, noise=True, difficulty=2) == 1.0
  # Non-noise, consecutive frames: one flip (0->1) of 5 pairs.
  assert rb.video_flip_rate(video, noise=False) == pytest.approx(0.2)
  # Difficulty 2: pairs (0,2) (2,4) (1,3) (3,5) -> 1 flip of 4.
  assert rb.video_flip_rate(video, noise=False, difficulty=2) == 0.25
  # Difficulty 3: pairs (0,3) (1,4) (2,5) -> 1 flip of 3.
  assert rb.video_flip_rate(video, noise=False,
                            difficulty=3) == pytest.approx(1 / 3)
  other = [2, 2, 0, 2, 0, 2]
  assert rb.video_flip_rate(other, noise=True) == pytest.approx(2 / 5)
  assert rb.video_flip_rate(other, noise=False) == pytest.approx(4 / 5)
  # Mean over videos, each video weighing the same.
  assert rb.flip_probability([video, other], noise=False) == pytest.approx(
      (0.2 + 0.8) / 2)
  assert rb.flip_probability([video, other], noise=True) == pytest.approx(
      (1.0 + 0.4) / 2)
  with pytest.raises(ValueError, match='no frame pairs'):
    rb.video_flip_rate([1, 1], noise=False, difficulty=3)


def test_top5_distance_by_hand():
  reference = np.arange(10, 0, -1, dtype=np.float32)  # ranks classes 0..9
  assert rb.top5_rank_distance(reference, reference) == 0
  swapped = reference.copy()
  swapped[[0, 5]] = swapped[[5, 0]]   # class 0 drops to rank 6
  assert rb.top5_rank_distance(reference, swapped) == 5
  swapped = reference.copy()
  swapped[[1, 2]] = swapped[[2, 1]]   # two top-5 classes swap places
  assert rb.top5_rank_distance(reference, swapped) == 2
  swapped = reference.copy()
  swapped[[6, 7]] = swapped[[7, 6]]   # change outside the top 5
  assert rb.top5_rank_distance(reference, swapped) == 0
  # Full reversal: |0-5| + |1-5| + |2-5| + |3-5| + |4-5| = 15.
  assert rb.top5_rank_distance(reference, -reference) == 15
  assert rb.zipf_rank_distance(reference, reference) == 0
  assert rb.zipf_rank_distance(reference, -reference) > 0


def test_video_top5_distance_reference_rules():
  up = np.arange(10, 0, -1, dtype=np.float32)
  # Frames: up, down, down, up.
  video = np.stack([up, -up, -up, up])
  # Noise: vs frame 0 -> 15, 15, 0.
  assert rb.video_top5_distance(video, noise=True) == pytest.approx(10.0)
  # Consecutive: 15, 0, 15.
  assert rb.video_top5_distance(video, noise=False) == pytest.approx(10.0)
  # Difficulty 2: (0,2) = 15, (1,3) = 15.
  assert rb.video_top5_distance(video, noise=False, difficulty=2) == 15.0
  # Difficulty 3: (0,3) = 0.
  assert rb.video_top5_distance(video, noise=False, difficulty=3) == 0.0
  assert rb.top5_distance([video, video[:2]], noise=True) == pytest.approx(
      (10.0 + 15.0) / 2)


def test_summarize_perturbations():
  flips = {'translate': {'1': 0.1, '2': 0.3}, 'gaussian_noise': {'1': 0.2},
           'shear': {'1': 0.5}}
  dists = {'translate': {'1': 1.0, '2': 2.0}, 'gaussian_noise': {'1': 4.0},
           'shear': {'1': 1.0}}
  summary = rb.summarize_perturbations(flips, dists)
  assert summary['mean_flip_probability'] == pytest.approx((0.2 + 0.2) / 2)
  assert summary['mean_top5_distance'] == pytest.approx((1.5 + 4.0) / 2)
  assert summary['extra']['mean_flip_probability'] == pytest.approx(0.5)
  assert 'mfr' not in summary and not summary['complete']
  baseline = {'model': 'teacher',
              'flip_probability': {'translate': {'1': 0.2, '2': 0.6},
                                   'gaussian_noise': {'1': 0.8}},
              'top5_distance': {'translate': {'1': 2.0, '2': 2.0},
                                'gaussian_noise': {'1': 2.0}}}
  summary = rb.summarize_perturbations(flips, dists, baseline)
  # translate: (0.1 + 0.3) / (0.2 + 0.6) = 50%; gaussian_noise: 25%.
  assert summary['fr'] == pytest.approx({'translate': 50.0,
                                         'gaussian_noise': 25.0})
  assert summary['mfr'] == pytest.approx(37.5)
  assert summary['t5d'] == pytest.approx({'translate': 75.0,
                                          'gaussian_noise': 200.0})
  assert summary['mt5d'] == pytest.approx(137.5)
  assert summary['extra']['fr'] == {}  # no shear in the baseline
  with pytest.raises(ValueError, match='wobble'):
    rb.summarize_perturbations({'wobble': {'1': 0.1}}, {})
