r"""Converts an EfficientNet checkpoint into a `.keras` file (and a SavedModel).

  python -m efficientnet.convert_checkpoint \
    --model_name=efficientnet-b0 \
    --checkpoint=/ckpts/noisy_student_efficientnet-b0/model.ckpt \
    --output=/models/noisy_student_efficientnet-b0.keras

--checkpoint is an original TF1 checkpoint, or a timm `tf_efficientnet_*`
state dict saved as `.safetensors` (e.g. timm's
`tf_efficientnet_b0.ns_jft_in1k/model.safetensors`; read without torch; the
size is inferred from it and checked against --model_name). The `.keras`
model maps float 0-255 images to logits and normalises with
--mean_rgb/--stddev_rgb inside (ImageNet statistics by default; `none` for
none). It is built from Keras layers only (`efficientnet.to_portable`):
`keras.saving.load_model(path)` loads it without this project.
Without --image_size the model takes images of any size ([N, None, None, 3],
like keras.applications); --image_size=S fixes the input at S x S.
--saved_model_dir also writes a SavedModel with the training export's
signatures (efficientnet/saved_model.py, docs/serving.md): `serving_default`
(images -> probabilities, classes, logits) and `serving_bytes` (encoded
images of any size, resized to the model's size, or for a model of any size
to its native evaluation resolution, 32 with --small_image), with the
ImageNet class names (wnids: `class_names` outputs and
`assets/class_names.txt`) for a 1000-class head.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Optional, Union

from absl import flags

# First: the binaries' entry filters TensorFlow's start-up banner.
from noisy_student.runtime import entry
from data import label_maps
from data import layout
from data import writers
from noisy_student.runtime import errors
from efficientnet import model as model_lib
from efficientnet import params
from efficientnet import portable
from efficientnet import safetensors_file
from efficientnet import tf1_checkpoint
from efficientnet import timm_weights

TIMM_SUFFIX = '.safetensors'

_IMAGENET_MEAN = ','.join(f'{v:g}' for v in params.IMAGENET_MEAN_RGB)
_IMAGENET_STDDEV = ','.join(f'{v:g}' for v in params.IMAGENET_STDDEV_RGB)


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines this binary's flags on `flag_values`.

  Called only when the module runs as a binary, so importing it (tests, or
  a process whose other binaries use the same flag names) defines nothing.
  """
  def define(kind, name, default, help_text):
    getattr(flags, f'DEFINE_{kind}')(name, default, help_text,
                                     flag_values=flag_values)

  define('string', 'model_name', None,
         f'EfficientNet size, one of {params.list_models()}; for a '
         f'{TIMM_SUFFIX} checkpoint default: the size the file holds.')
  define('string', 'checkpoint', None,
         'TF1 checkpoint prefix (.../model.ckpt), a directory with a '
         '`checkpoint` state file, or a timm tf_efficientnet_* state dict '
         f'ending in {TIMM_SUFFIX}.')
  define('string', 'output', None,
         'Where to write the model; must end in .keras. Written atomically.')
  define('string', 'saved_model_dir', None,
         'Also write a SavedModel folder here (serving_default: images -> '
         'probabilities, classes, logits; serving_bytes: encoded images; '
         'ImageNet class names for 1000 classes). Replaced whole, '
         'atomically.')
  define('integer', 'num_classes', 1000, 'Classes of the checkpoint head.')
  define('integer', 'image_size', None,
         'Fixed input size of the saved model in pixels; default: any size '
         '(like keras.applications; the SavedModel\'s serving_bytes resizes '
         'to the model\'s eval resolution, 32 with --small_image). Weights '
         'do not depend on it.')
  define('bool', 'small_image', False,
         'The 32x32 small-image variant (noisystudent --small_image_model).')
  define('bool', 'use_ema', True,
         'TF1 only: load the /ExponentialMovingAverage shadows when present.')
  define('string', 'scope', None,
         'TF1 only: variable scope, e.g. teacher_model/efficientnet-b7; '
         'default: detected from the checkpoint.')
  define('string', 'mean_rgb', _IMAGENET_MEAN,
         'Comma-separated R,G,B means on 0-255 pixels, applied inside the '
         'model; "none" for no normalisation.')
  define('string', 'stddev_rgb', _IMAGENET_STDDEV,
         'Comma-separated R,G,B standard deviations on 0-255 pixels; "none" '
         'together with --mean_rgb=none.')
  define('float', 'width_coefficient', None,
         'Override the width coefficient of --model_name (custom sizes).')
  define('float', 'depth_coefficient', None,
         'Override the depth coefficient of --model_name (custom sizes).')


@dataclasses.dataclass(frozen=True)
class ConvertConfig:
  """Arguments of `convert` (see the flags of the same names).

  `model_name` None: inferred from a timm checkpoint (`resolve_model_name`).
  """
  model_name: Optional[str]
  checkpoint: str
  output: str
  saved_model_dir: Optional[str] = None
  num_classes: int = 1000
  image_size: Optional[int] = None
  small_image: bool = False
  use_ema: bool = True
  scope: Optional[str] = None
  mean_rgb: Optional[tuple[float, float, float]] = params.IMAGENET_MEAN_RGB
  stddev_rgb: Optional[tuple[float, float, float]] = (
      params.IMAGENET_STDDEV_RGB)
  width_coefficient: Optional[float] = None
  depth_coefficient: Optional[float] = None

  @property
  def is_timm(self) -> bool:
    """Whether `checkpoint` is a timm state dict (`.safetensors`)."""
    return self.checkpoint.endswith(TIMM_SUFFIX)


def parse_rgb(value: str, flag: str) -> Optional[tuple[float, float, float]]:
  """'123.7,116.3,103.5' -> a 3-tuple; 'none' -> None."""
  if value.strip().lower() == 'none':
    return None
  try:
    values = tuple(float(v) for v in value.split(','))
  except ValueError:
    values = ()
  if len(values) != 3:
    raise errors.ConfigError(f'--{flag} must be three comma-separated numbers or '
                         f'"none", received: {value!r}')
  return values


def config_from_flags(values: flags.FlagValues) -> ConvertConfig:
  """Validates the flags; errors name the flag and the value received."""
  for name in ('checkpoint', 'output'):
    if not values[name].value:
      raise errors.ConfigError(f'--{name} is required')
  is_timm = values.checkpoint.endswith(TIMM_SUFFIX)
  if not values.model_name and not is_timm:
    raise errors.ConfigError('--model_name is required (it is inferred only '
                             f'for a {TIMM_SUFFIX} --checkpoint)')
  if values.model_name:
    try:
      params.get_spec(values.model_name)
    except ValueError as e:
      raise errors.ConfigError(f'--model_name: {e}') from None
  if is_timm:
    for name, given in (('scope', values.scope is not None),
                        ('use_ema', not values.use_ema)):
      if given:
        raise errors.ConfigError(
            f'--{name} applies to TF1 checkpoints only, not to the timm '
            f'state dict --checkpoint={values.checkpoint}')
  if not layout.is_keras_file(values.output):
    raise errors.ConfigError(f'--output must end in .keras, received: '
                         f'{values.output!r}')
  if values.image_size is not None and values.image_size < 1:
    raise errors.ConfigError(
        f'--image_size must be >= 1 (unset: any size), received: '
        f'{values.image_size}')
  mean = parse_rgb(values.mean_rgb, 'mean_rgb')
  stddev = parse_rgb(values.stddev_rgb, 'stddev_rgb')
  if (mean is None) != (stddev is None):
    raise errors.ConfigError('--mean_rgb and --stddev_rgb must both be numbers '
                         f'or both "none", received: {values.mean_rgb!r}, '
                         f'{values.stddev_rgb!r}')
  return ConvertConfig(
      model_name=values.model_name or None, checkpoint=values.checkpoint,
      output=values.output, saved_model_dir=values.saved_model_dir or None,
      num_classes=values.num_classes,
      image_size=values.image_size, small_image=values.small_image,
      use_ema=values.use_ema, scope=values.scope, mean_rgb=mean,
      stddev_rgb=stddev, width_coefficient=values.width_coefficient,
      depth_coefficient=values.depth_coefficient)


def resolve_model_name(config: ConvertConfig) -> str:
  """--model_name, checked against (or inferred from) a timm checkpoint.

  A TF1 checkpoint is checked when it loads. A timm file's stem/head widths
  and blocks per stage must be those of --model_name (with
  --width/depth_coefficient when given), and its classes --num_classes.

  Raises:
    MissingFileError / SafetensorsError for a missing or malformed file;
    ConfigError naming --model_name (or --num_classes) and the file.
  """
  if not config.is_timm:
    return config.model_name
  infos, _ = safetensors_file.read_header(config.checkpoint)
  shapes = safetensors_file.shapes_of(infos)
  found = timm_weights.state_dict_architecture(shapes)
  guesses = timm_weights.guess_model_names(shapes)
  where = f'--checkpoint={config.checkpoint}'
  name = config.model_name
  if name is None:
    if len(guesses) != 1:
      raise errors.ConfigError(
          f'--model_name is required: {where} ({found}) fits '
          f'{" and ".join(guesses) or "no known size"}')
    name = guesses[0]
  expected = timm_weights.spec_architecture(
      name, width_coefficient=config.width_coefficient,
      depth_coefficient=config.depth_coefficient)
  if not expected.same_size(found):
    custom = (' with the given --width_coefficient/--depth_coefficient'
              if config.width_coefficient or config.depth_coefficient
              else '')
    raise errors.ConfigError(
        f'--model_name={name} does not fit {where}: the file has {found} '
        f'({" or ".join(guesses) or "no known size"}), {name}{custom} has '
        f'{expected}')
  if found.num_classes is not None and found.num_classes != (
      config.num_classes):
    raise errors.ConfigError(
        f'--num_classes={config.num_classes} does not fit {where}, whose '
        f'classifier has {found.num_classes} classes')
  return name


def convert(config: ConvertConfig
            ) -> Union[tf1_checkpoint.LoadReport, timm_weights.LoadReport]:
  """Builds the model, loads the checkpoint, writes `config.output`.

  Also writes `config.saved_model_dir` when set. Nothing is written when
  the checkpoint does not fit.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  start = time.time()
  # The source checkpoint (a prefix, a file or a folder) and the .keras
  # output must survive the SavedModel's folder replacement.
  protect = [config.checkpoint, config.output]
  if config.saved_model_dir:
    writers.check_replaceable_dir(config.saved_model_dir, protect,
                                  name='--saved_model_dir')
  model_name = resolve_model_name(config)
  model = model_lib.build_model(
      model_name, config.num_classes, config.image_size,
      small_image=config.small_image, mean_rgb=config.mean_rgb,
      stddev_rgb=config.stddev_rgb,
      width_coefficient=config.width_coefficient,
      depth_coefficient=config.depth_coefficient,
      any_size=config.image_size is None)
  size = (f'{config.image_size}px' if config.image_size
          else 'of any size')
  print(f'built {model.name} ({model.count_params():,} weights, input '
        f'{size}) in {time.time() - start:.1f}s', flush=True)
  if config.is_timm:
    report = timm_weights.load_timm_weights(model, config.checkpoint)
  else:
    report = tf1_checkpoint.load_tf1_checkpoint(
        model, config.checkpoint, use_ema=config.use_ema, scope=config.scope)
  print(report, flush=True)

  model = portable.to_portable(model)  # one network for both files
  with writers.atomic_path(config.output, suffix=layout.KERAS_SUFFIX) as tmp:
    model.save(tmp)
  size_mb = tf.io.gfile.stat(config.output).length / 2**20
  print(f'wrote {config.output} ({size_mb:.1f} MiB) in '
        f'{time.time() - start:.1f}s', flush=True)
  if config.saved_model_dir:
    from efficientnet import saved_model  # pylint: disable=g-import-not-at-top
    saved_model.export_saved_model(
        model, config.saved_model_dir, protect,
        serving_size=serving_size(config, model_name),
        small_image=config.small_image,
        class_names=class_names(config.num_classes), name='--saved_model_dir')
    print(f'wrote SavedModel {config.saved_model_dir} in '
          f'{time.time() - start:.1f}s total', flush=True)
  return report


def serving_size(config: ConvertConfig, model_name: str) -> int:
  """The side serving_bytes resizes images to: --image_size, else the
  model's native evaluation resolution (32 for the small-image variant)."""
  if config.image_size:
    return config.image_size
  if config.small_image:
    return model_lib.SMALL_IMAGE_SIZE
  return params.default_image_size(model_name, for_eval=True)


def class_names(num_classes: int) -> Optional[tuple[str, ...]]:
  """ImageNet's class names (wnids, in class order) for a 1000-class head,
  else None: a checkpoint records no names."""
  if num_classes != len(label_maps.imagenet_wnids()):
    return None
  return label_maps.imagenet_wnids()


def main(argv):
  del argv
  convert(config_from_flags(flags.FLAGS))


def run():
  entry.run('convert_checkpoint', main, define_flags)


if __name__ == '__main__':
  run()
