"""The filter_unlabel binary: original flags, both passes, errors naming the flag."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

import pytest

from noisy_student.runtime import errors
from tests import helpers
from tests.noisy_student.pseudo import filter_inputs as fi


def test_binary_flags_run_both_passes(tmp_path):
  root = str(tmp_path)
  fi.write_inputs(root)
  common = [sys.executable, '-m', 'noisy_student.filter_unlabel',
            f'--input_dir={root}/unl', f'--prediction_dir={root}/pred',
            f'--info_dir={root}/info', f'--output_dir={root}/out',
            f'--prelim_stats_dir={root}/ps', f'--num_shards={fi.NUM_SHARDS}',
            f'--num_label_classes={fi.NUM_CLASSES}', '--file_prefix=extra',
            '--min_threshold=0.5', '--num_image=20', '--task=0']
  for stats, shards in (('1', '0-1'), ('1', '2'), ('0', 'all')):
    result = subprocess.run(common + [f'--only_get_stats={stats}',
                                      f'--shard_id={shards}'],
                            cwd=helpers.REPO_ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
  final = json.load(open(f'{root}/out/stats/final_stats.json'))
  assert final['per_class'] == [20] * fi.NUM_CLASSES
  bad = subprocess.run(common + ['--shard_id=5'], cwd=helpers.REPO_ROOT,
                       capture_output=True, text=True, timeout=300)
  assert bad.returncode != 0 and '--shard_id=5' in bad.stderr


def test_classes_come_from_the_unlabeled_folders_dataset_info(tmp_path):
  from absl import flags  # pylint: disable=g-import-not-at-top

  from data import dataset_info  # pylint: disable=g-import-not-at-top
  from noisy_student import filter_unlabel  # pylint: disable=g-import-not-at-top
  root = str(tmp_path)
  fi.write_inputs(root)
  dataset_info.update(root, dataset_info.description(
      name='mine', num_classes=fi.NUM_CLASSES), {})

  def settings(*extra):
    fv = flags.FlagValues()
    filter_unlabel.define_flags(fv)
    fv(['filter_unlabel', f'--input_dir={root}/unl', f'--prediction_dir={root}/pred',
        f'--info_dir={root}/info', f'--output_dir={root}/out',
        '--file_prefix=extra', *extra])
    return filter_unlabel.config_from_flags(fv)[0].settings

  assert settings().num_label_classes == fi.NUM_CLASSES  # the parent's file
  assert settings('--num_label_classes=7').num_label_classes == 7  # the flag wins


def test_the_help_recipe_runs_as_printed(tmp_path):
  """The two commands of the binary's docstring (its --help), on written
  predictions: only the paths and sizes are this fixture's."""
  from noisy_student import filter_unlabel  # pylint: disable=g-import-not-at-top
  recipe = [shlex.split(c.replace('\\\n', ' ')) for c in re.findall(
      r'^  (python -m noisy_student\.filter_unlabel .*?)(?=\n  #|\n\n)',
      filter_unlabel.__doc__, re.M | re.S)]
  assert len(recipe) == 2, filter_unlabel.__doc__
  root = str(tmp_path)
  fi.write_inputs(root)
  ours = {'data/unlabeled': f'{root}/unl', 'pred/predict_label': f'{root}/pred',
          'pred/info': f'{root}/info', 'pred/prelim_stats': f'{root}/ps',
          'pred/filter_data': f'{root}/out'}
  sizes = {'num_shards': fi.NUM_SHARDS, 'num_label_classes': fi.NUM_CLASSES,
           'num_image': 20}
  for command in recipe:
    assert command[:3] == ['python', '-m', 'noisy_student.filter_unlabel']
    arguments = []
    for argument in command[3:]:
      name, _, value = argument[2:].partition('=')
      value = str(sizes.get(name, ours.get(value, value)))
      arguments.append(f'--{name}={value}')
    helpers.run([sys.executable, '-m', 'noisy_student.filter_unlabel',
                 *arguments])
  final = json.load(open(f'{root}/out/stats/final_stats.json'))
  assert final['num_written'] > 0


def test_shard_count_prefix_and_info_dir_come_from_the_folders(tmp_path):
  """Without --num_shards, --file_prefix and --info_dir the filter reads the
  unlabeled folder (its shards and dataset_info.json) and predict's layout
  (`<prediction_dir>/info`), not the original's 128 / train."""
  import os  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top

  from data import dataset_info  # pylint: disable=g-import-not-at-top
  from noisy_student import filter_unlabel  # pylint: disable=g-import-not-at-top
  root = str(tmp_path)
  fi.write_inputs(root)
  os.rename(f'{root}/info', f'{root}/pred/info')
  dataset_info.update(f'{root}/unl', dataset_info.description(
      name='mine', num_classes=fi.NUM_CLASSES), {
          'extra': dataset_info.split_entry(
              num_examples=fi.NUM_SHARDS * fi.PER_SHARD,
              num_shards=fi.NUM_SHARDS, labeled=False)})
  fv = flags.FlagValues()
  filter_unlabel.define_flags(fv)
  fv(['filter_unlabel', f'--input_dir={root}/unl',
      f'--prediction_dir={root}/pred', f'--output_dir={root}/out',
      '--shard_id=all'])
  config, units = filter_unlabel.config_from_flags(fv)
  assert (config.num_shards, config.file_prefix) == (fi.NUM_SHARDS, 'extra')
  assert config.info_dir == f'{root}/pred/info'
  assert len(units) == fi.NUM_SHARDS
  assert '128' in fv['num_shards'].help  # the original's, named in --help
  fv['file_prefix'].parse('train')  # a prefix the folder does not have
  with pytest.raises(errors.InputError, match=r'/unl: expected shards '
                     r'train-00000-of-N .*found none \(--file_prefix=train: '
                     r'pass the shards\' --file_prefix'):
    filter_unlabel.config_from_flags(fv)


def test_keeping_no_record_is_an_error(tmp_path):
  """As in iterate: a threshold no prediction reaches ends with exit 2 and
  the reason, not an empty pseudo-labeled set and exit 0."""
  root = str(tmp_path)
  fi.write_inputs(root)
  common = [sys.executable, '-m', 'noisy_student.filter_unlabel',
            f'--input_dir={root}/unl', f'--prediction_dir={root}/pred',
            f'--info_dir={root}/info', f'--output_dir={root}/out',
            '--file_prefix=extra', '--shard_id=all', '--min_threshold=1.0',
            '--num_image=20', f'--num_label_classes={fi.NUM_CLASSES}']
  helpers.run(common + ['--only_get_stats=1'])
  result = subprocess.run(common + ['--only_get_stats=0'],
                          cwd=helpers.REPO_ROOT, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 2, result.stderr[-2000:]
  assert re.search(r'filter_unlabel: error: \S+final_stats.json: the filter '
                   r'kept no pseudo-labels: none of the 150 teacher '
                   r'predictions has a top-1 probability >= '
                   r'--min_threshold=1.0', result.stderr), result.stderr


def test_upsampling_past_the_kept_images_is_said_in_one_line(tmp_path,
                                                             caplog):
  root = str(tmp_path)
  fi.write_inputs(root)
  with caplog.at_level('WARNING'):
    fi.run_both(fi.filter_config(root, num_image=30))
  lines = [r.getMessage() for r in caplog.records
           if r.getMessage().startswith('upsampling:')]
  assert len(lines) == 1, caplog.text
  assert re.match(r'upsampling: [1-3] of 4 classes have fewer than num_image=30 '
                  r'eligible images \(fewest \d+\), so their images are '
                  r'repeated up to 30 each: \d+ eligible images become 120 '
                  r'records\. Pass a smaller num_image, or upsample=false',
                  lines[0]), lines[0]
  caplog.clear()
  fi.write_inputs(f'{root}/again')
  with caplog.at_level('WARNING'):
    fi.run_both(fi.filter_config(f'{root}/again', num_image=30,
                                 upsample=False))
  assert 'upsampling:' not in caplog.text
