r"""Writes ImageNet-P-style perturbation videos of any labeled TFRecord set.

    python -m data.make_perturbed --input_pattern='/data/digits/test-*' \
        --output_dir=/data/digits-p --perturbations=gaussian_noise,translate

Each image of `--input_pattern` (labeled schema) becomes one short video per
perturbation (`data/perturbations.py` lists them, their frame counts and
parameters), written in the ImageNet-P layout

    <out>/<perturbation>/<class>/<split>_<index>.mp4
    <out>/<perturbation>_<d>/<class>/<split>_<index>.mp4   (noise, d = 2, 3)

so `eval_robustness --benchmark=imagenet_p --label_map=numeric` measures flip
probabilities on small datasets too. Videos are H.264 with the lossless RGB
encoder (`libx264rgb`, qp 0) by default, so the frames decode bit-exactly;
`--codec=libx264` gives ordinary (lossy, yuv420p, even sizes only) files.
Seeded, idempotent (existing videos are kept), atomic;
`<out>/perturbed_info.json` records what was made.
"""

from __future__ import annotations

import io
import os
from typing import Sequence

from absl import flags
from absl import logging
import numpy as np
# First: the binaries' entry filters TensorFlow's start-up banner.
from noisy_student.runtime import entry
import tensorflow as tf

from data import corruptions as corruptions_lib
from noisy_student.runtime import errors
from data import label_maps
from data import make_corrupted
from data import perturbations as perturbations_lib
from noisy_student.runtime import progress as progress_lib
from data import writers

INFO_FILE = 'perturbed_info.json'
CODECS = {'libx264rgb': ('rgb24', {'qp': '0'}), 'libx264': ('yuv420p', {})}


def encode_mp4(frames: np.ndarray, codec: str = 'libx264rgb',
               fps: int = 30) -> bytes:
  """uint8 [frames, H, W, 3] RGB -> .mp4 bytes.

  'libx264rgb' (default) is lossless; 'libx264' is the usual lossy yuv420p
  and needs an even height and width.
  """
  import av  # pylint: disable=g-import-not-at-top

  frames = np.asarray(frames)
  if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
    raise ValueError(f'expected uint8 [frames, H, W, 3], got {frames.dtype} '
                     f'{frames.shape}')
  if codec not in CODECS:
    raise errors.ConfigError(f'codec must be one of {sorted(CODECS)}, received: '
                     f'{codec!r}')
  pix_fmt, options = CODECS[codec]
  height, width = frames.shape[1:3]
  if pix_fmt == 'yuv420p' and (height % 2 or width % 2):
    raise ValueError(f'{codec} needs even sizes, the frames are '
                     f'{height}x{width}')
  buffer = io.BytesIO()
  with av.open(buffer, 'w', format='mp4') as container:
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
    stream.options = dict(options)
    for frame in frames:
      for packet in stream.encode(av.VideoFrame.from_ndarray(frame,
                                                             format='rgb24')):
        container.mux(packet)
    for packet in stream.encode():
      container.mux(packet)
  return buffer.getvalue()


def _folders(perturbations: Sequence[str],
             difficulties: Sequence[int]) -> list[tuple[str, int, str]]:
  """(perturbation, difficulty, folder name) to write."""
  out = []
  for name in perturbations:
    if name in perturbations_lib.NOISE_PERTURBATIONS:
      out += [(name, d, name if d == 1 else f'{name}_{d}')
              for d in difficulties]
    else:
      out.append((name, 1, name))
  return out


def make_perturbed(file_pattern: str, output_dir: str, *, split: str = 'test',
                   perturbations: Sequence[str] = (
                       perturbations_lib.PERTURBATION_NAMES),
                   difficulties: Sequence[int] = (1,),
                   max_images: int | None = None, seed: int = 0,
                   label_map: str | None = 'numeric',
                   codec: str = 'libx264rgb', overwrite: bool = False) -> dict:
  """Writes perturbation videos of a labeled TFRecord set; returns the info.

  Args:
    file_pattern: glob of the clean labeled TFRecords.
    output_dir: root of the ImageNet-P-style tree.
    split: file-name prefix of the videos.
    perturbations: names from `data.perturbations.PERTURBATION_NAMES`.
    difficulties: noise difficulties to write (1-3); `_<d>` folders for d > 1.
    max_images: use only the first N images.
    seed: noise seed; each video's generator derives from (seed,
      perturbation, difficulty, image index).
    label_map: class folder names (`data.label_maps`), default the label.
    codec: 'libx264rgb' (lossless) or 'libx264'.
    overwrite: rewrite videos that exist.
  """
  for name in perturbations:
    if name not in perturbations_lib.PERTURBATION_NAMES:
      raise errors.ConfigError(f'unknown perturbation {name!r}; expected names from '
                       f'{perturbations_lib.PERTURBATION_NAMES}')
  for d in difficulties:
    if d not in (1, 2, 3):
      raise errors.ConfigError(f'difficulties must be 1-3, received: {d}')
  if codec not in CODECS:
    raise errors.ConfigError(f'codec must be one of {sorted(CODECS)}, received: '
                     f'{codec!r}')
  images, labels, sources = make_corrupted.read_source(file_pattern,
                                                       max_images)
  label_map_obj = label_maps.load_label_map(label_map)
  folders = _folders(perturbations, difficulties)
  progress = progress_lib.Progress('make_perturbed',
                                   len(folders) * len(images), unit='videos')
  written = 0
  for name, difficulty, folder in folders:
    index_base = perturbations_lib.PERTURBATION_NAMES.index(name)
    for index, (encoded, label, source) in enumerate(zip(images, labels,
                                                         sources)):
      path = os.path.join(output_dir, folder, label_map_obj.name(label),
                          f'{split}_{index:06d}.mp4')
      if overwrite or not tf.io.gfile.exists(path):
        rng = np.random.default_rng([seed, index_base, difficulty, index])
        try:
          frames = perturbations_lib.perturbation_sequence(
              corruptions_lib.decode(encoded), name, difficulty, rng)
          video = encode_mp4(frames, codec)
        except ValueError as err:
          raise errors.NoisyStudentError(f'{source}: {err}') from err
        with writers.atomic_output(path) as f:
          f.write(video)
        written += 1
      progress.update(1, folder)
  seconds = progress.finish()
  info = {
      'source_file_pattern': file_pattern, 'split': split,
      'num_images': len(images), 'seed': seed, 'codec': codec,
      'label_map': label_map, 'folders': [f for _, _, f in folders],
      'videos_written': written, 'seconds': round(seconds, 2),
  }
  writers.write_json(os.path.join(output_dir, INFO_FILE), info)
  return info


# ---------------------------------------------------------------------------
# Binary.
# ---------------------------------------------------------------------------
FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  """Defines the binary's flags (called only when run as a binary)."""
  flags.DEFINE_string('input_pattern', None, 'Glob of the clean labeled '
                      'TFRecords, e.g. "/data/digits/test-*".', required=True, flag_values=fv)
  flags.DEFINE_string('output_dir', None, 'Root of the ImageNet-P-style tree.',
                      required=True, flag_values=fv)
  flags.DEFINE_string('split', 'test', 'File-name prefix of the videos.', flag_values=fv)
  flags.DEFINE_list('perturbations',
                    list(perturbations_lib.PERTURBATION_NAMES),
                    'Perturbations to write.', flag_values=fv)
  flags.DEFINE_list('difficulties', ['1'], 'Noise difficulties (1-3) to '
                    'write; non-noise perturbations have one sequence.', flag_values=fv)
  flags.DEFINE_integer('max_images', None,
                       'Use only the first N images (bounds demo time).', flag_values=fv)
  flags.DEFINE_integer('seed', 0, 'Seed of the noise perturbations.', flag_values=fv)
  flags.DEFINE_string('label_map', 'numeric', 'Class folder names: "numeric" '
                      '(the label), "imagenet" (wnids) or a .txt/.json file.', flag_values=fv)
  flags.DEFINE_enum('codec', 'libx264rgb', sorted(CODECS),
                    'libx264rgb (lossless RGB H.264) or libx264 (yuv420p).', flag_values=fv)
  flags.DEFINE_bool('overwrite', False, 'Rewrite videos that exist.', flag_values=fv)


def main(argv: Sequence[str]) -> None:
  del argv
  try:
    difficulties = [int(d) for d in FLAGS.difficulties]
  except ValueError as err:
    raise errors.ConfigError(f'--difficulties must be integers 1-3, received: '
                         f'{FLAGS.difficulties}') from err
  info = make_perturbed(
      FLAGS.input_pattern, FLAGS.output_dir, split=FLAGS.split,
      perturbations=FLAGS.perturbations, difficulties=difficulties,
      max_images=FLAGS.max_images, seed=FLAGS.seed, label_map=FLAGS.label_map,
      codec=FLAGS.codec, overwrite=FLAGS.overwrite)
  logging.info('%d videos written under %s', info['videos_written'],
               FLAGS.output_dir)


def run():
  entry.run('make_perturbed', main, define_flags)


if __name__ == '__main__':
  run()
