"""Robustness evaluations: ImageNet-A/-C/-P, corrupted copies, FGSM.

Each `evaluate_*` function reads its data (`robustness_data`), runs the model
in inference mode and returns a JSON-ready results dict with every number
(`robustness` documents the units: errors are fractions, normalised CE / FR
are percentages). `robustness_report.write_report` turns one or several such
dicts into JSON + markdown + a bar chart.

Preprocessing is injectable: `preprocess_fn(uint8 [H, W, 3]) -> float32
[S, S, 3]` in 0-255; the default is a bicubic resize to the model's
`image_size` (`readers.resize_preprocess`).
"""

from __future__ import annotations

import json
import os
from typing import Iterable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from data import layout
from data import label_maps
from noisy_student.runtime import progress as progress_lib
from data import records
from noisy_student.runtime import errors
from noisy_student.models import classifier as classifier_lib
from noisy_student.robust import fgsm
from noisy_student.robust import metrics
from noisy_student.robust import readers

Classifier = classifier_lib.Classifier
CORRUPTED_INFO_FILE = 'corrupted_info.json'  # written by data.make_corrupted


def _preprocess(classifier: Classifier, preprocess_fn):
  return preprocess_fn or readers.resize_preprocess(
      classifier.image_size)


def _header(benchmark: str, classifier: Classifier, data: str,
            preprocess_fn) -> dict:
  """The identifying fields every results dict starts with."""
  if preprocess_fn is None:
    preprocess = f'bicubic resize to {classifier.image_size}'
  else:
    preprocess = getattr(preprocess_fn, '__name__', repr(preprocess_fn))
  return {'benchmark': benchmark, 'model': classifier.name, 'data_dir': data,
          'image_size': classifier.image_size, 'preprocess': preprocess}


def _label_map(label_map) -> label_maps.LabelMap:
  if isinstance(label_map, label_maps.LabelMap):
    return label_map
  return label_maps.load_label_map(label_map)


def _count(total: int, max_images: int | None) -> int:
  return total if max_images is None else min(total, max_images)


def _num_records(files: Sequence[str], max_images: int | None) -> int:
  return _count(sum(records.count_records(f) for f in files), max_images)


def score_batches(classifier: Classifier,
                  batches: Iterable[tuple[np.ndarray, np.ndarray]],
                  progress: progress_lib.Progress | None = None,
                  imagenet_a: bool = False) -> dict:
  """Top-1 / top-5 error over (images, labels) batches.

  With `imagenet_a` the top-1 prediction is the argmax over ImageNet-A's 200
  logits (`metrics.imagenet_a_predictions`) and no top-5 is reported.
  """
  top1 = top5 = total = 0
  for images, labels in batches:
    logits = classifier.predict_logits(images, batch_size=len(images))
    if imagenet_a:
      top1 += int(metrics.imagenet_a_correct(logits, labels).sum())
    else:
      top1 += int(metrics.top_k_correct(logits, labels, 1).sum())
      k = min(5, logits.shape[1])
      top5 += int(metrics.top_k_correct(logits, labels, k).sum())
    total += len(labels)
    if progress is not None:
      progress.update(len(labels))
  if not total:
    raise errors.InputError('no images were evaluated')
  out = {'top_1_error': 1.0 - top1 / total, 'num_images': total}
  if not imagenet_a:
    out['top_5_error'] = 1.0 - top5 / total
  return out


def load_baseline(spec: str | Mapping | None) -> dict | None:
  """A baseline for normalisation: None, 'alexnet', a results dict or JSON path.

  Raises:
    FileNotFoundError / ValueError naming the file.
  """
  if spec is None or isinstance(spec, Mapping):
    return dict(spec) if spec is not None else None
  if spec == 'alexnet':
    return metrics.alexnet_baseline()
  if not tf.io.gfile.exists(spec):
    raise errors.MissingFileError(f'{errors.field_name("baseline_results")} {spec!r}: no such file '
                            '(expected "alexnet" or a results JSON)')
  with tf.io.gfile.GFile(spec) as f:
    try:
      results = json.load(f)
    except json.JSONDecodeError as err:
      raise errors.InputError(f'{spec}: not a results JSON: {err}') from err
  if not isinstance(results, Mapping) or not (
      'errors' in results or 'flip_probability' in results):
    raise errors.InputError(f'{spec}: a baseline needs the `errors` (ImageNet-C / '
                     'corrupted) or `flip_probability` (ImageNet-P) of a '
                     'results JSON written by eval_robustness')
  return dict(results)


# ---------------------------------------------------------------------------
# ImageNet-A.
# ---------------------------------------------------------------------------
def evaluate_imagenet_a(classifier: Classifier, root: str, *,
                        batch_size: int = 64, preprocess_fn=None,
                        max_images: int | None = None,
                        label_map=None) -> dict:
  """ImageNet-A top-1 accuracy: argmax over the 200 classes' logits.

  Args:
    classifier: a 1000-class ImageNet model.
    root: `<root>/<wnid>/*.jpg`, or the shards of the TFDS copy
      (`data.tfds_to_tfrecord --dataset=imagenet_a`).
    preprocess_fn: default: the standard evaluation centre crop + bicubic
      resize (`readers.eval_crop_preprocess`).
  """
  preprocess_fn = preprocess_fn or readers.eval_crop_preprocess(
      classifier.image_size)
  preprocess = _preprocess(classifier, preprocess_fn)
  files = readers.shards_in(root)
  if files:  # a TFDS copy (data.tfds_to_tfrecord --dataset=imagenet_a)
    count = _num_records(files, max_images)
    batches = readers.tfrecord_batches(files, preprocess, batch_size,
                                       max_images)
  else:
    samples = readers.imagenet_a_samples(root, _label_map(label_map))
    count = _count(len(samples), max_images)
    batches = readers.image_batches(samples, preprocess, batch_size,
                                    max_images)
  progress = progress_lib.Progress('imagenet_a', count)
  scores = score_batches(classifier, batches, progress, imagenet_a=True)
  progress.finish()
  return {
      **_header('imagenet_a', classifier, root, preprocess_fn),
      'top_1_accuracy': 1.0 - scores['top_1_error'],
      'top_1_error': scores['top_1_error'],
      'num_images': scores['num_images'],
  }


# ---------------------------------------------------------------------------
# ImageNet-C and corrupted TFRecord copies.
# ---------------------------------------------------------------------------
def _corruption_results(header: dict, table: Mapping, clean: dict | None,
                        baseline: dict | None) -> dict:
  top_1_errors = {c: {s: v['top_1_error'] for s, v in sev.items()}
                  for c, sev in table.items()}
  clean_error = clean['top_1_error'] if clean else None
  results = {
      **header,
      'errors': top_1_errors,
      'top_5_errors': {c: {s: v['top_5_error'] for s, v in sev.items()}
                       for c, sev in table.items()},
      'num_images': {c: {s: v['num_images'] for s, v in sev.items()}
                     for c, sev in table.items()},
      'clean_error': clean_error,
      'clean_top_5_error': clean['top_5_error'] if clean else None,
  }
  results.update(metrics.summarize_corruptions(top_1_errors, baseline,
                                               clean_error))
  return results


def evaluate_imagenet_c(classifier: Classifier, root: str, *,
                        corruptions: Sequence[str] | None = None,
                        severities: Sequence[int] = metrics.SEVERITIES,
                        batch_size: int = 64, preprocess_fn=None,
                        max_images: int | None = None, label_map=None,
                        baseline='alexnet',
                        clean_error: float | None = None) -> dict:
  """ImageNet-C errors per corruption and severity, mCE and relative mCE.

  Args:
    root: `<root>/<corruption>/<severity>/<wnid>/*`, or the TFDS copy's
      `<root>/<corruption>/<severity>/<split>-*` shards
      (`data.tfds_to_tfrecord --dataset=imagenet2012_corrupted/...`).
    corruptions: default all corruptions present under `root`.
    max_images: per (corruption, severity).
    baseline: 'alexnet' (default), another run's results (dict / JSON path)
      or None (unnormalised only).
    clean_error: the model's clean ImageNet top-1 error (fraction), for the
      relative mCE.
  """
  corruptions = list(corruptions or readers.corruption_dirs(root))
  label_map = _label_map(label_map)
  baseline = load_baseline(baseline)
  preprocess = _preprocess(classifier, preprocess_fn)
  plan = []
  for corruption in corruptions:
    for severity in severities:
      files = readers.shards_in(readers.severity_dir(root, corruption, severity))
      if files:  # a TFDS copy (data.tfds_to_tfrecord, imagenet2012_corrupted)
        plan.append((corruption, severity, _num_records(files, max_images),
                     lambda f=files: readers.tfrecord_batches(
                         f, preprocess, batch_size, max_images)))
      else:
        samples = readers.imagenet_c_samples(root, corruption, severity,
                                             label_map)
        plan.append((corruption, severity, _count(len(samples), max_images),
                     lambda s=samples: readers.image_batches(
                         s, preprocess, batch_size, max_images)))
  progress = progress_lib.Progress('imagenet_c',
                                   sum(count for _, _, count, _ in plan))
  table: dict = {}
  for corruption, severity, _, batches in plan:
    table.setdefault(corruption, {})[str(severity)] = score_batches(
        classifier, batches(), progress)
  progress.finish()
  clean = ({'top_1_error': clean_error, 'top_5_error': None}
           if clean_error is not None else None)
  return _corruption_results(
      _header('imagenet_c', classifier, root, preprocess_fn), table, clean,
      baseline)


def _corrupted_severities(root: str, corruption: str) -> list[int]:
  directory = os.path.join(root, corruption)
  names = [n.rstrip('/') for n in tf.io.gfile.listdir(directory)]
  return sorted(int(n) for n in names if n.isdigit())


def evaluate_corrupted(classifier: Classifier, corrupted_root: str,
                       split: str, *, batch_size: int = 64,
                       preprocess_fn=None, max_images: int | None = None,
                       corruptions: Sequence[str] | None = None,
                       severities: Sequence[int] | None = None,
                       baseline=None,
                       clean_file_pattern: str | None = None) -> dict:
  """Scores a TFRecord corrupted copy written by `data.make_corrupted`.

  Reads `<corrupted_root>/<corruption>/<severity>/<split>-*`. The clean error
  (for the relative mCE) comes from `clean_file_pattern`, else from the
  source files recorded in `corrupted_info.json` when they still exist.

  Args:
    corruptions / severities: default all present.
    max_images: per (corruption, severity) and for the clean set.
    baseline: None (default: unnormalised errors), another model's results
      dict / JSON path (e.g. the teacher's), or 'alexnet' for ImageNet copies.

  Returns:
    The results dict (`benchmark: 'corrupted'`), shaped like ImageNet-C's.
  """
  corruptions = list(corruptions or
                     readers.corruption_dirs(corrupted_root))
  baseline = load_baseline(baseline)
  preprocess = _preprocess(classifier, preprocess_fn)
  plan = []
  for corruption in corruptions:
    for severity in (severities or
                     _corrupted_severities(corrupted_root, corruption)):
      directory = readers.severity_dir(corrupted_root, corruption,
                                               severity)
      plan.append((corruption, severity,
                   readers.split_files(directory, split)))
  if clean_file_pattern is None:
    info_path = os.path.join(corrupted_root, CORRUPTED_INFO_FILE)
    if tf.io.gfile.exists(info_path):
      with tf.io.gfile.GFile(info_path) as f:
        pattern = json.load(f).get('source_file_pattern')
      if pattern and layout.glob_user_records(pattern):
        clean_file_pattern = pattern
  clean_files = (layout.glob_user_records(clean_file_pattern)
                 if clean_file_pattern else [])
  if clean_file_pattern and not clean_files:
    raise errors.MissingFileError(f'{clean_file_pattern}: no clean TFRecords match')

  total = sum(_num_records(files, max_images) for _, _, files in plan)
  if clean_files:
    total += _num_records(clean_files, max_images)
  progress = progress_lib.Progress('corrupted', total)
  table: dict = {}
  clean = None
  if clean_files:
    clean = score_batches(classifier, readers.tfrecord_batches(
        clean_files, preprocess, batch_size, max_images), progress)
  for corruption, severity, files in plan:
    table.setdefault(corruption, {})[str(severity)] = score_batches(
        classifier, readers.tfrecord_batches(
            files, preprocess, batch_size, max_images), progress)
  progress.finish()
  results = _corruption_results(
      _header('corrupted', classifier, corrupted_root, preprocess_fn), table,
      clean, baseline)
  results['split'] = split
  results['clean_file_pattern'] = clean_file_pattern
  return results


# ---------------------------------------------------------------------------
# ImageNet-P.
# ---------------------------------------------------------------------------
def evaluate_imagenet_p(classifier: Classifier, root: str, *,
                        perturbations: Sequence[str] | None = None,
                        difficulties: Sequence[int] = (1,),
                        batch_size: int = 64, preprocess_fn=None,
                        max_videos: int | None = None, label_map=None,
                        baseline=None) -> dict:
  """Flip probability and top-5 distance per perturbation and difficulty.

  Noise perturbations read `<name>` (d = 1) or `<name>_<d>` and compare every
  frame with frame 0; the others read `<name>` once and compare frames
  `difficulty` apart (`metrics.reference_pairs`).

  Args:
    root: `<root>/<perturbation>[_<d>]/<wnid>/*.mp4`.
    perturbations: default all present under `root`.
    difficulties: subset of 1..3.
    max_videos: per perturbation folder.
    baseline: None (unnormalised: no AlexNet -P constants are available) or
      another run's results dict / JSON path, for mFR and mT5D.
  """
  perturbations = list(perturbations or
                       readers.perturbation_dirs(root))
  label_map = _label_map(label_map)
  baseline = load_baseline(baseline)
  preprocess = _preprocess(classifier, preprocess_fn)
  plan = []  # (perturbation, difficulties scored from this folder, samples)
  for name in perturbations:
    if metrics.is_noise_perturbation(name):
      plan += [(name, [d], readers.imagenet_p_samples(
          root, name, d, label_map)) for d in difficulties]
    else:
      plan.append((name, list(difficulties),
                   readers.imagenet_p_samples(root, name, 1,
                                                      label_map)))
  progress = progress_lib.Progress(
      'imagenet_p', sum(_count(len(s), max_videos) for _, _, s in plan),
      unit='videos')
  flips: dict = {}
  distances: dict = {}
  counts: dict = {}
  for name, folder_difficulties, samples in plan:
    noise = metrics.is_noise_perturbation(name)
    per_video = {d: ([], []) for d in folder_difficulties}
    samples = samples[:max_videos]
    decoded = readers.parallel_map(
        lambda sample: readers.video_frames(sample[0], preprocess),
        samples, num_threads=4)
    for (path, _), frames in zip(samples, decoded):
      logits = classifier.predict_logits(frames, batch_size)
      predictions = np.argmax(logits, axis=-1)
      for d in folder_difficulties:
        try:
          per_video[d][0].append(metrics.video_flip_rate(
              predictions, noise=noise, difficulty=d))
          per_video[d][1].append(metrics.video_top5_distance(
              logits, noise=noise, difficulty=d))
        except ValueError as err:
          raise errors.InputError(f'{path}: {err}') from err
      progress.update(1, name)
    for d, (flip, dist) in per_video.items():
      flips.setdefault(name, {})[str(d)] = float(np.mean(flip))
      distances.setdefault(name, {})[str(d)] = float(np.mean(dist))
      counts.setdefault(name, {})[str(d)] = len(flip)
  progress.finish()
  results = {
      **_header('imagenet_p', classifier, root, preprocess_fn),
      'flip_probability': flips, 'top5_distance': distances,
      'num_videos': counts,
  }
  results.update(metrics.summarize_perturbations(flips, distances,
                                                    baseline))
  return results


# ---------------------------------------------------------------------------
# FGSM.
# ---------------------------------------------------------------------------
def evaluate_fgsm(classifier: Classifier, file_pattern: str, *,
                  epsilons: Sequence[float] = (0, 1, 2, 4, 8, 16),
                  batch_size: int = 64, preprocess_fn=None,
                  max_images: int | None = None) -> dict:
  """Top-1 accuracy under one-step FGSM (epsilon in 0-255 pixel units).

  Args:
    file_pattern: clean labeled TFRecords, e.g. `<dir>/validation-*`.
    epsilons: the sweep; 0 gives the clean accuracy.
  """
  files = layout.glob_user_records(file_pattern)
  if not files:
    raise errors.MissingFileError(f'{file_pattern}: no TFRecords match')
  progress = progress_lib.Progress('fgsm', _num_records(files, max_images))
  results = fgsm.fgsm_accuracy(
      classifier, readers.tfrecord_batches(
          files, _preprocess(classifier, preprocess_fn), batch_size,
          max_images), epsilons, progress=progress.update)
  progress.finish()
  results.update(_header('fgsm', classifier, file_pattern, preprocess_fn))
  results['epsilon_units'] = '0-255 pixels'
  return results
