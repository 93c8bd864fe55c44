"""Input pipeline stages on real TFRecords: files, hosts, seeds, eval padding, resume."""

import os

import numpy as np
import pytest
import tensorflow as tf

from data import layout
from data import image_codec
from data import records
from data import writers
from noisy_student.runtime import errors
from noisy_student.training import input_pipeline
from tests import helpers


def _write_split(directory, split, num_shards, per_shard, label_offset=0):
  """Labeled shards of 8x8 images whose pixel value is the record's index."""
  index = 0
  for shard in range(num_shards):
    rows = []
    for _ in range(per_shard):
      image = np.full((8, 8, 3), index, np.uint8)
      rows.append(records.serialize_labeled(
          image_codec.encode(image, 'png'), (index + label_offset) % 10))
      index += 1
    writers.write_records(os.path.join(
        directory, layout.shard_name(split, shard, num_shards)), rows)
  return index


def test_list_files_sorted_over_dirs_without_hidden_temp_files(tmp_path):
  a, b = tmp_path / 'a', tmp_path / 'b'
  _write_split(str(a), 'train', 2, 3)
  _write_split(str(b), 'train', 1, 3)
  (a / '.train-00009-of-00010.tmp-1234abcd').write_bytes(b'half')
  (a / 'train-summary.json').write_text('{}')  # a converter's report
  (a / 'train-skipped.txt').write_text('')
  files = input_pipeline.list_files(f'{a};{b}', ['train'])
  assert files == sorted(files) and len(files) == 3
  assert all(os.path.basename(f).startswith('train-0000') for f in files)
  assert input_pipeline.list_files(str(a), ['train'], max_files=1) == files[:1]
  with pytest.raises(errors.InputError, match=r'dev-\*-of-\*'):
    input_pipeline.list_files(str(a), ['dev'])


def test_host_files_splits_whole_files_between_hosts():
  files = [f'f{i}' for i in range(5)]
  contexts = [tf.distribute.InputContext(num_input_pipelines=2,
                                         input_pipeline_id=i) for i in (0, 1)]
  shares = [input_pipeline.host_files(files, c) for c in contexts]
  assert shares == [['f0', 'f2', 'f4'], ['f1', 'f3']]
  assert input_pipeline.host_files(files, None) == files
  with pytest.raises(errors.InputError, match='5 hosts'):
    input_pipeline.host_files(files[:3], tf.distribute.InputContext(
        num_input_pipelines=5, input_pipeline_id=0))


def test_element_seeds_differ_per_stream_and_index():
  seeds = {tuple(input_pipeline.element_seed(3, stream, i).numpy())
           for stream in (0, 1) for i in range(4)}
  assert len(seeds) == 8
  assert (input_pipeline.element_seed(3, 0, 2).numpy()
          == input_pipeline.element_seed(3, 0, 2).numpy()).all()


def test_eval_dataset_pads_to_full_batches_and_masks_the_padding(tmp_path):
  total = _write_split(str(tmp_path), 'test', 2, 5)  # 10 records
  files = input_pipeline.list_files(str(tmp_path), ['test'])
  assert input_pipeline.count_examples(files) == total
  batches = list(input_pipeline.make_eval_dataset(
      files, image_size=8, small_image=True, global_batch=4))
  assert len(batches) == 3 and all(b['image'].shape[0] == 4 for b in batches)
  mask = np.concatenate([b['mask'].numpy() for b in batches])
  np.testing.assert_array_equal(mask, [1] * 10 + [0] * 2)
  # In file order, labels 0-based, pixels unchanged for small images.
  pixels = np.concatenate([b['image'].numpy()[:, 0, 0, 0] for b in batches])
  np.testing.assert_array_equal(pixels[:10], np.arange(10))
  labels = np.concatenate([b['label'].numpy() for b in batches])
  np.testing.assert_array_equal(labels[:10], np.arange(10) % 10)


def _data_config(digits_dir, **changes):
  return helpers.experiment('/unused', digits_dir, data_changes=changes).data


def _first_labels(dataset, steps):
  return [b['label'].numpy().tolist() for b in dataset.take(steps)]


def test_deterministic_stream_repeats_per_seed_and_resumes_exactly(digits_dir):
  cfg = _data_config(digits_dir, deterministic=True)
  full = input_pipeline.make_train_dataset(cfg, labeled_batch=8,
                                           unlabeled_batch=0)
  stream = list(full.take(6))
  again = list(input_pipeline.make_train_dataset(cfg, labeled_batch=8,
                                                 unlabeled_batch=0).take(6))
  for a, b in zip(stream, again):
    np.testing.assert_array_equal(a['image'].numpy(), b['image'].numpy())
  # A run resumed after 4 steps continues with the 5th and 6th batches.
  resumed = list(input_pipeline.make_train_dataset(
      cfg, labeled_batch=8, unlabeled_batch=0, start_step=4).take(2))
  for a, b in zip(stream[4:], resumed):
    np.testing.assert_array_equal(a['label'].numpy(), b['label'].numpy())
    np.testing.assert_array_equal(a['image'].numpy(), b['image'].numpy())
  other = input_pipeline.make_train_dataset(
      _data_config(digits_dir, deterministic=True, seed=1), labeled_batch=8,
      unlabeled_batch=0)
  assert _first_labels(other, 3) != [s['label'].numpy().tolist()
                                     for s in stream[:3]]


def test_train_batches_zip_labeled_and_pseudo_labeled_streams(digits_dir,
                                                               tmp_path):
  pseudo = tmp_path / 'pseudo'
  probs = np.full(10, 0.05, np.float32)
  probs[3] = 0.55
  png = image_codec.encode(np.zeros((32, 32, 3), np.uint8), 'png')
  writers.write_records(str(pseudo / 'train-0-00000-of-00001'),
                        [records.serialize_pseudo_labeled(png, probs)] * 20)
  cfg = _data_config(digits_dir, unlabel_data_dir=str(pseudo),
                     unlabel_prefixes=('train',), pseudo_labels_stored=True)
  batch = next(iter(input_pipeline.make_train_dataset(
      cfg, labeled_batch=4, unlabeled_batch=12)))
  assert batch['image'].shape == (4, 32, 32, 3)
  assert batch['unl_image'].shape == (12, 32, 32, 3)
  np.testing.assert_allclose(batch['unl_probs'].numpy()[0], probs)
  assert (batch['unl_label'].numpy() == 3).all()
  with pytest.raises(errors.InputError, match='unlabel_data_dir'):
    input_pipeline.make_train_dataset(_data_config(digits_dir), labeled_batch=4,
                                      unlabeled_batch=12)
