r"""A TensorFlow Datasets image-classification dataset -> the project's shards.

    python -m data.tfds_to_tfrecord --dataset=cifar10 --output_dir=data/cifar10 \
        --splits='train[:1000]=train,train[1000:2000]=dev,train[2000:]=extra,test=test'

Each `TFDS_SPLIT=OUR_SPLIT` pair (TFDS slicing allowed) becomes shards
`<output_dir>/<split>-NNNNN-of-NNNNN` of `--examples_per_shard` records in the
TFDS order, in the schema of data/records.py; splits named in
`--unlabeled_splits` (default `extra`) are written unlabeled into
`<output_dir>/unlabeled/`, where `noisy_student.iterate --unlabel_data_dir`
expects them. `<output_dir>/dataset_info.json` (data/dataset_info.py) gets the
classes and their names, the image count per split, the image size and the
train split's mean/std RGB (measured). Without `--splits`, every TFDS split
keeps its name.

Images keep their TFDS bytes when they are RGB JPEG/PNG; grayscale (MNIST) and
other images are converted to RGB and encoded as `--image_format`.
`imagenet2012` needs `--manual_dir` (the ImageNet tars, as TFDS documents);
`imagenet2012_corrupted/<corruption>_<severity>` configs are written as
`<output_dir>/<corruption>/<severity>/<split>-*`, the layout
`eval_robustness --benchmark=imagenet_c` reads, so converting the 75 configs
into one --output_dir gives the whole ImageNet-C.

Resumable: a split already converted with the same source and complete
shards is skipped; an interrupted split is converted again (its shards only
appear, renamed from temporary files, once all are written).
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Callable, Iterator, Optional, Sequence

from absl import flags
from absl import logging
# First: the binaries' entry filters TensorFlow's start-up banner.
from noisy_student.runtime import entry
import tensorflow as tf

from data import layout
from data import dataset_info
from noisy_student.runtime import errors
from data import image_codec
from noisy_student.runtime import progress as progress_lib
from data import records
from data import writers

CORRUPTED_PREFIX = 'imagenet2012_corrupted/'
# Datasets whose classes change under a horizontal flip.
NO_FLIP_DATASETS = ('mnist', 'svhn_cropped', 'emnist', 'kmnist', 'binarized_mnist')


@dataclasses.dataclass(frozen=True)
class SplitMapping:
  """One TFDS split (or slice) written as one of our splits.

  Attributes:
    tfds_split: TFDS split spec, e.g. 'train[:1000]'.
    split: our split name, the shards' file prefix.
    labeled: write labeled records (else unlabeled).
    directory: folder under the output dir ('' or 'unlabeled', or
      '<corruption>/<severity>' for ImageNet-C).
  """
  tfds_split: str
  split: str
  labeled: bool
  directory: str = ''

  @property
  def key(self) -> str:
    """The split's key in dataset_info.json."""
    return f'{self.directory}/{self.split}' if '/' in self.directory else self.split


@dataclasses.dataclass(frozen=True)
class TfdsConfig:
  """What one run converts (built from the flags by `config_from_flags`)."""
  dataset: str
  output_dir: str
  splits: tuple[SplitMapping, ...] = ()
  data_dir: Optional[str] = None
  manual_dir: Optional[str] = None
  download: bool = True
  examples_per_shard: int = 1024
  image_key: Optional[str] = None
  label_key: Optional[str] = None
  image_format: str = 'png'
  jpeg_quality: int = image_codec.DEFAULT_JPEG_QUALITY
  flip: Optional[bool] = None
  overwrite: bool = False

  @property
  def name(self) -> str:
    """The dataset's name without its version."""
    return self.dataset.split(':')[0]


def corruption_directory(dataset: str) -> str:
  """'<corruption>/<severity>' of an imagenet2012_corrupted config, else ''."""
  if not dataset.startswith(CORRUPTED_PREFIX):
    return ''
  config = dataset[len(CORRUPTED_PREFIX):].split(':')[0]
  match = re.fullmatch(r'(?P<corruption>[a-z_]+)_(?P<severity>[1-5])', config)
  if not match:
    raise errors.ConfigError(
        f'--dataset={dataset}: expected {CORRUPTED_PREFIX}<corruption>_<1-5>')
  return f'{match["corruption"]}/{match["severity"]}'


def parse_splits(spec: str, unlabeled: Sequence[str],
                 directory: str = '') -> tuple[SplitMapping, ...]:
  """'train[:1000]=train,train[1000:]=extra' -> SplitMappings; errors name --splits."""
  mappings = []
  for part in [p.strip() for p in spec.split(',') if p.strip()]:
    tfds_split, sep, split = part.partition('=')
    split = (split if sep else re.sub(r'\W', '_', tfds_split)).strip()
    if not tfds_split.strip() or not re.fullmatch(r'[A-Za-z0-9_.]+', split):
      raise errors.ConfigError(
          f'--splits: {part!r} is not TFDS_SPLIT=OUR_SPLIT (e.g. '
          'train[:1000]=train)')
    is_unlabeled = split in unlabeled
    mappings.append(SplitMapping(
        tfds_split.strip(), split, labeled=not is_unlabeled,
        directory=directory or (layout.UNLABELED_SUBDIR if is_unlabeled
                                else '')))
  keys = [m.key for m in mappings]
  if len(set(keys)) != len(keys):
    raise errors.ConfigError(f'--splits={spec}: a split is written twice')
  return tuple(mappings)


# Exceptions (by class name, anywhere in the chain) of an unreachable network.
_NETWORK_ERRORS = ('ConnectionError', 'NameResolutionError', 'MaxRetryError',
                   'NewConnectionError', 'URLError', 'gaierror', 'Timeout',
                   'ConnectTimeout', 'ReadTimeout', 'ConnectTimeoutError')


def _chain(error: BaseException) -> Iterator[BaseException]:
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    yield error
    error = error.__cause__ or error.__context__


def _first_line(error: BaseException) -> str:
  text = str(error).strip()
  return text.splitlines()[0][:300] if text else type(error).__name__


def download_error(dataset: str, error: BaseException) -> errors.NoisyStudentError:
  """The one-line error of a failed download_and_prepare: the network, a
  missing module, or the dataset's own problem, named as such."""
  for cause in _chain(error):
    if type(cause).__name__ in _NETWORK_ERRORS:
      return errors.InputError(
          f'--dataset={dataset}: the download needs the network, which is not '
          f'reachable from here ({type(cause).__name__}: {_first_line(cause)}'
          '); download it once where there is a network and pass its '
          '--data_dir with --nodownload')
    if isinstance(cause, ModuleNotFoundError):
      return errors.ConfigError(
          f'--dataset={dataset}: TensorFlow Datasets needs the Python module '
          f'{cause.name!r}, which is not installed (pip install '
          f'"noisy-student[tfds]" installs what it needs)')
  return errors.InputError(
      f'--dataset={dataset}: cannot download or prepare it '
      f'({type(error).__name__}: {_first_line(error)}); check --data_dir and '
      '--manual_dir (imagenet2012)')


# Where TFDS downloads from first (its prepared copies); resolved to fail fast
# offline instead of after TFDS's ~3 minutes of retries.
NETWORK_PROBE_HOST = 'storage.googleapis.com'


def check_network(dataset: str, host: str = NETWORK_PROBE_HOST,
                  timeout_s: float = 10.0) -> None:
  """Raises the download's one-line network error unless `host` resolves."""
  import concurrent.futures  # pylint: disable=g-import-not-at-top
  import socket  # pylint: disable=g-import-not-at-top
  pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
  try:
    pool.submit(socket.getaddrinfo, host, 443).result(timeout=timeout_s)
  except (OSError, concurrent.futures.TimeoutError) as err:
    raise download_error(dataset, ConnectionError(
        f'cannot resolve {host} ({type(err).__name__}: {err})')) from None
  finally:
    pool.shutdown(wait=False)


def _builder(config: TfdsConfig,
             probe_network: Callable[[str], None] | None = check_network):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    builder = tfds.builder(config.dataset, data_dir=config.data_dir)
  except Exception as err:  # DatasetNotFoundError and friends
    raise errors.ConfigError(f'--dataset={config.dataset}: '
                             f'{_first_line(err)}') from None
  if config.download:
    if probe_network is not None and not builder.is_prepared():
      probe_network(config.dataset)
    download_config = tfds.download.DownloadConfig(manual_dir=config.manual_dir)
    try:
      builder.download_and_prepare(download_config=download_config)
    except Exception as err:  # pylint: disable=broad-except
      raise download_error(config.dataset, err) from None
  return builder


def _feature_keys(builder, config: TfdsConfig) -> tuple[str, str]:
  """(image key, label key): the flags, else the only Image / ClassLabel."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  features = builder.info.features
  images = [k for k, f in features.items() if isinstance(f, tfds.features.Image)]
  labels = [k for k, f in features.items()
            if isinstance(f, tfds.features.ClassLabel)]
  if not images and not config.image_key:
    raise errors.ConfigError(
        f'--dataset={config.dataset}: not an image dataset (its features: '
        f'{", ".join(sorted(features))}; none is an image)')
  if not labels and not config.label_key:
    raise errors.ConfigError(
        f'--dataset={config.dataset}: not a classification dataset (its '
        f'features: {", ".join(sorted(features))}; none is a class label)')
  image_key = config.image_key or (images[0] if len(images) == 1 else None)
  label_key = config.label_key or (labels[0] if len(labels) == 1 else None)
  if image_key not in features or label_key not in features:
    raise errors.ConfigError(
        f'--dataset={config.dataset}: pass --image_key (one of {images}) and '
        f'--label_key (one of {labels}); features: {sorted(features)}')
  return image_key, label_key


def _examples(builder, mapping: SplitMapping, image_key: str, label_key: str
              ) -> Iterator[tuple[bytes, int]]:
  """(encoded image, label) of a TFDS split, in the TFDS order."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    dataset = builder.as_dataset(
        split=mapping.tfds_split, shuffle_files=False,
        decoders={image_key: tfds.decode.SkipDecoding()})
  except (ValueError, KeyError, AssertionError) as err:
    raise errors.ConfigError(
        f'--splits: {mapping.tfds_split!r} of {builder.info.full_name}: '
        f'{str(err).splitlines()[0][:300]}') from None
  for example in dataset.as_numpy_iterator():
    yield example[image_key], int(example[label_key])


def _source(config: TfdsConfig, builder, mapping: SplitMapping) -> dict:
  return {'tfds': builder.info.full_name, 'tfds_split': mapping.tfds_split,
          'image_format': config.image_format,
          'examples_per_shard': config.examples_per_shard}


def _split_done(config: TfdsConfig, info: Optional[dict], mapping: SplitMapping,
                source: dict) -> bool:
  entry_ = (info or {}).get('splits', {}).get(mapping.key)
  if config.overwrite or entry_ is None or entry_.get('source') != source:
    return False
  try:
    dataset_info.check_shards(config.output_dir, info, splits=[mapping.key])
  except dataset_info.DatasetInfoError:
    return False
  return True


def _remove_old_shards(directory: str, split: str) -> None:
  if tf.io.gfile.isdir(directory):
    for name in tf.io.gfile.listdir(directory):
      if layout.is_shard_name(name, split):
        tf.io.gfile.remove(os.path.join(directory, name))


def write_split(config: TfdsConfig, examples, mapping: SplitMapping,
                stats: Optional[dataset_info.PixelStats]) -> dict:
  """Writes one split's shards (renamed into place at the end); returns its entry."""
  directory = os.path.join(config.output_dir, mapping.directory)
  tf.io.gfile.makedirs(directory)
  temps, sizes, label_counts = [], set(), {}
  writer, count, reencoded = None, 0, 0
  progress = progress_lib.Progress(mapping.key, None)
  try:
    for encoded, label in examples:
      if count % config.examples_per_shard == 0:
        if writer is not None:
          writer.close()
        temps.append(writers.temp_path(os.path.join(directory, mapping.split)))
        writer = tf.io.TFRecordWriter(temps[-1])
      source = f'{config.dataset} {mapping.tfds_split} example {count}'
      data, was_reencoded, rgb = image_codec.storable_image(
          encoded, image_format=config.image_format,
          quality=config.jpeg_quality, source=source)
      reencoded += int(was_reencoded)
      if len(sizes) < 2:
        sizes.add(rgb.shape[:2])
      if stats is not None:
        stats.add(rgb)
      if mapping.labeled:
        writer.write(records.serialize_labeled(data, label))
        label_counts[label] = label_counts.get(label, 0) + 1
      else:
        writer.write(records.serialize_unlabeled(data, label))
      count += 1
      progress.update()
    if writer is not None:
      writer.close()
      writer = None
    if not count:
      raise errors.ConfigError(f'--splits: {mapping.tfds_split!r} of '
                               f'{config.dataset} has no examples')
    _remove_old_shards(directory, mapping.split)
    for index, temp in enumerate(temps):
      tf.io.gfile.rename(temp, os.path.join(directory, layout.shard_name(
          mapping.split, index, len(temps))), overwrite=True)
  finally:
    if writer is not None:
      writer.close()
    for temp in temps:
      if tf.io.gfile.exists(temp):
        tf.io.gfile.remove(temp)
  progress.finish()
  entry_ = dataset_info.split_entry(num_examples=count, num_shards=len(temps),
                                    labeled=mapping.labeled,
                                    directory=mapping.directory,
                                    num_reencoded=reencoded,
                                    image_size=dataset_info.common_size(sizes))
  if mapping.directory and '/' in mapping.directory:
    entry_['split'] = mapping.split
  if mapping.labeled:
    entry_['label_counts'] = [label_counts.get(c, 0)
                              for c in range(max(label_counts) + 1)]
  return entry_


def convert(config: TfdsConfig,
            probe_network: Callable[[str], None] | None = check_network
            ) -> dict:
  """Converts every mapped split (skipping finished ones); returns the info.

  `probe_network(dataset)` runs before a download to fail fast offline; None
  skips it (tests under `tfds.testing.mock_data`, which never downloads).
  """
  builder = _builder(config, probe_network)
  image_key, label_key = _feature_keys(builder, config)
  label_feature = builder.info.features[label_key]
  if not config.splits and not builder.info.splits:
    raise errors.ConfigError(
        f'--dataset={config.dataset}: its split information is not available '
        'here (the dataset is not prepared in --data_dir); pass --splits, '
        'e.g. --splits=train=train,test=test')
  mappings = config.splits or parse_splits(
      ','.join(builder.info.splits), ('extra',),
      corruption_directory(config.dataset))
  flip = (config.flip if config.flip is not None
          else config.name not in NO_FLIP_DATASETS)
  written = kept = 0
  info = dataset_info.read(config.output_dir)
  for mapping in mappings:
    source = _source(config, builder, mapping)
    if _split_done(config, info, mapping, source):
      logging.info('%s: already converted; skipping', mapping.key)
      kept += 1
      continue
    stats = dataset_info.PixelStats() if mapping.split == 'train' else None
    entry_ = write_split(config, _examples(builder, mapping, image_key,
                                           label_key), mapping, stats)
    entry_['source'] = source
    if len(entry_.get('label_counts', ())) > label_feature.num_classes:
      raise errors.ConfigError(f'{config.dataset}: labels beyond its '
                               f'{label_feature.num_classes} classes')
    info = dataset_info.update(
        config.output_dir,
        dataset_info.description(
            name=config.name.split('/')[0],
            num_classes=label_feature.num_classes,
            class_names=list(label_feature.names),
            image_size=entry_['image_size'],
            pixel_stats=stats, flip=flip),
        {mapping.key: entry_})
    written += 1
  return dict(info or {}, splits_written=written, splits_kept=kept)


def define_flags(fv: flags.FlagValues = flags.FLAGS) -> None:
  flags.DEFINE_string('dataset', None, 'TFDS name[:version], e.g. cifar10, '
                      'svhn_cropped, mnist, imagenet2012, imagenet_a, '
                      'imagenet2012_corrupted/gaussian_noise_3.', flag_values=fv)
  flags.DEFINE_string('output_dir', None, 'Where the shards and '
                      'dataset_info.json go.', flag_values=fv)
  flags.DEFINE_string('splits', '', 'Comma-separated TFDS_SPLIT=OUR_SPLIT, '
                      'e.g. "train[:1000]=train,train[1000:]=extra,test=test"; '
                      'default: every TFDS split under its own name.',
                      flag_values=fv)
  flags.DEFINE_list('unlabeled_splits', ['extra'], 'Our splits written as '
                    'unlabeled records, into <output_dir>/unlabeled/.',
                    flag_values=fv)
  flags.DEFINE_string('data_dir', None, 'TFDS data_dir (default: TFDS\'s, '
                      '~/tensorflow_datasets).', flag_values=fv)
  flags.DEFINE_string('manual_dir', None, 'TFDS manual_dir (imagenet2012: the '
                      'folder with the ImageNet tars).', flag_values=fv)
  flags.DEFINE_bool('download', True, 'Download and prepare the dataset '
                    'first (needs the network once); false: it must already '
                    'be in --data_dir.', flag_values=fv)
  flags.DEFINE_integer('examples_per_shard', 1024, 'Records per shard file.',
                       flag_values=fv)
  flags.DEFINE_string('image_key', None, 'The image feature (default: the '
                      'only Image feature).', flag_values=fv)
  flags.DEFINE_string('label_key', None, 'The label feature (default: the '
                      'only ClassLabel feature).', flag_values=fv)
  flags.DEFINE_enum('image_format', 'png', list(image_codec.FORMATS),
                    'Format of images that must be re-encoded (grayscale, '
                    'palette, ...); RGB JPEG/PNG keep their bytes.',
                    flag_values=fv)
  flags.DEFINE_integer('jpeg_quality', image_codec.DEFAULT_JPEG_QUALITY,
                       'JPEG quality of re-encoded images.', flag_values=fv)
  flags.DEFINE_bool('flip', None, 'Horizontal flips keep the label (default: '
                    'true except for digit datasets).', flag_values=fv)
  flags.DEFINE_bool('overwrite', False, 'Convert finished splits again.',
                    flag_values=fv)


def check_split_spec(spec: str) -> None:
  """Raises ConfigError naming --splits unless TFDS can parse `spec`."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError:
    return  # convert() says what is missing
  try:
    tfds.core.ReadInstruction.from_spec(spec)
  except (ValueError, AssertionError) as err:
    raise errors.ConfigError(
        f'--splits: {spec!r} is not a TFDS split ({_first_line(err)})'
    ) from None


def config_from_flags(fv: flags.FlagValues) -> TfdsConfig:
  for name in ('dataset', 'output_dir'):
    if not fv[name].value:
      raise errors.ConfigError(f'--{name} is required')
  if fv.examples_per_shard <= 0:
    raise errors.ConfigError('--examples_per_shard must be positive, received: '
                             f'{fv.examples_per_shard}')
  directory = corruption_directory(fv.dataset)
  splits = (parse_splits(fv.splits, fv.unlabeled_splits, directory)
            if fv.splits else ())
  for mapping in splits:
    check_split_spec(mapping.tfds_split)
  return entry.dataclass_from_flags(TfdsConfig, fv, splits=splits)


def main(argv: Sequence[str]) -> None:
  del argv
  config = config_from_flags(flags.FLAGS)
  info = convert(config)
  counts = {key: s['num_examples'] for key, s in info['splits'].items()}
  print(f'{config.output_dir}: {counts} ({info["splits_written"]} splits '
        f'written, {info["splits_kept"]} kept)')


def run():
  entry.run('tfds_to_tfrecord', main, define_flags)


if __name__ == '__main__':
  run()
