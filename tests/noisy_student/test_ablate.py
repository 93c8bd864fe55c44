"""The ablation binary: arm recipes, the summary, and a tiny end-to-end run."""

import dataclasses
import json
import os
import sys

from absl import flags
import pytest

from noisy_student import ablate
from noisy_student.core import defaults
from tests import helpers


def test_each_arm_removes_only_its_noise():
  full = defaults.DEMO_STUDENT
  assert ablate.student_recipe('full', full) == full
  none = ablate.student_recipe('no_noise', full)
  assert none.noise.augment_name is None
  assert none.noise.dropout_rate == 0.0 == none.noise.stochastic_depth_rate
  assert none.train == full.train
  data_only = ablate.student_recipe('data_noise', full)
  assert data_only.noise.augment_name == full.noise.augment_name == 'v1'
  assert data_only.noise.randaug_magnitude == full.noise.randaug_magnitude
  assert data_only.noise.dropout_rate == 0.0
  model_only = ablate.student_recipe('model_noise', full)
  assert model_only.noise.augment_name is None
  assert model_only.noise.dropout_rate == full.noise.dropout_rate == 0.2
  assert model_only.noise.stochastic_depth_rate == 0.2
  hard = ablate.student_recipe('hard_labels', full)
  assert hard.train.teacher_softmax_temp == -1.0 and hard.noise == full.noise


def _config(*argv):
  fv = flags.FlagValues()
  ablate.define_flags(fv)
  fv(['ablate', *argv])
  return ablate.config_from_flags(fv)


def test_demo_preset_is_the_default():
  cfg = _config('--work_dir=/tmp/unused')
  assert (cfg.teacher, cfg.student) == (defaults.DEMO_TEACHER,
                                        defaults.DEMO_STUDENT)
  assert cfg.min_threshold == defaults.ITERATE_MIN_THRESHOLD
  assert cfg.arms == ablate.ARMS
  cfg = _config('--work_dir=/tmp/unused', '--teacher_steps=48',
                '--min_threshold=0.1', '--width_coefficient=0.25',
                '--larger_student_train_steps=1400')
  assert cfg.teacher.train.train_steps == 48
  steps = ablate.arm_steps(cfg)
  assert steps['teacher'] == 48 and steps['larger_student'] == 1400
  assert steps['full'] == steps['no_noise'] == 700
  assert cfg.student.train.train_steps == defaults.DEMO_STUDENT.train.train_steps
  assert (cfg.min_threshold, cfg.width_coefficient,
          cfg.depth_coefficient) == (0.1, 0.25, 0.5)


def test_cifar_preset_takes_its_recipe(digits_dir):
  cfg = _config('--work_dir=/tmp/unused', '--preset=cifar10_subset',
                f'--data_dir={digits_dir}', '--unlabel_data_dir=/tmp/extra')
  preset = defaults.PRESETS['cifar10_subset']
  assert (cfg.teacher, cfg.student) == (preset.teacher, preset.student)
  assert cfg.teacher.train.train_steps == 2000 and cfg.min_threshold == 0.5
  assert cfg.student.train.train_steps == 4000
  assert cfg.unlabel_data_dir == '/tmp/extra'
  # Its student has RandAugment, so every noise arm differs from the others.
  assert {'no_noise', 'data_noise', 'model_noise'} <= set(cfg.arms)


def test_without_randaugment_the_data_noise_arms_are_left_out(
    digits_dir, monkeypatch):
  preset = defaults.PRESETS['cifar10_subset']
  plain = ablate.student_recipe('model_noise', preset.student)  # no RA
  monkeypatch.setitem(defaults.PRESETS, 'cifar10_subset',
                      dataclasses.replace(preset, student=plain))
  cfg = _config('--work_dir=/tmp/unused', '--preset=cifar10_subset',
                f'--data_dir={digits_dir}')
  assert 'data_noise' not in cfg.arms and 'model_noise' not in cfg.arms
  assert {'full', 'no_noise'} <= set(cfg.arms)
  with pytest.raises(ablate.errors.ConfigError,
                     match='--arms=data_noise: the cifar10_subset preset has '
                     'no RandAugment'):
    _config('--work_dir=/tmp/unused', '--preset=cifar10_subset',
            f'--data_dir={digits_dir}', '--arms=no_noise,data_noise')


def test_summary_means_stds_and_paired_differences():
  per_seed = {0: {'teacher': 0.80, 'full': 0.90, 'no_noise': 0.84},
              1: {'teacher': 0.70, 'full': 0.76, 'no_noise': 0.70},
              2: {'teacher': 0.75, 'full': 0.84, 'no_noise': 0.79}}
  rows = {r['arm']: r for r in ablate.summarize(
      per_seed, {'teacher': 8, 'full': 7, 'no_noise': 7}, test_images=400)}
  assert list(rows) == ['teacher', 'full', 'no_noise']
  assert rows['full']['test_top1_mean'] == pytest.approx(83.333333)
  assert rows['full']['gain_mean'] == pytest.approx(8.333333)
  vs_teacher = rows['full']['vs_teacher']
  assert vs_teacher['seeds'] == [0, 1, 2] and vs_teacher['excludes_zero']
  assert vs_teacher['low'] == pytest.approx(3.1622, abs=1e-3)
  assert rows['no_noise']['vs_full']['mean'] == pytest.approx(-5.666667)
  assert rows['teacher']['vs_teacher'] is None
  table = ablate.markdown(list(rows.values()), 'x')
  assert ('| full | 7 | 83.33 +- 7.02 | +8.33 [+3.16, +13.50], p=0.02 | - '
          '| 0,1,2 | 90.00, 76.00, 84.00 |') in table
  assert 'binomial standard error of about 2.17 points' in table
  one_seed = ablate.markdown(ablate.summarize({0: per_seed[0]}), 'x')
  assert '| full | - | 90.00 | +10.00 | - | 0 | 90.00 |' in one_seed


def test_partial_ablation_is_summarized_from_state_without_training(tmp_path):
  cfg = _config(f'--work_dir={tmp_path}', '--seeds=0,1')
  finished = {0: {'round_0/teacher': 0.80, 'round_1/student': 0.90,
                  'ablation/no_noise': 0.84, 'round_2/student': 0.93,
                  'round_1/predict': None},
              1: {'round_0/teacher': 0.70, 'round_1/student': 0.76}}
  for seed, stages in finished.items():
    (tmp_path / f'seed_{seed}').mkdir()
    (tmp_path / f'seed_{seed}' / 'state.json').write_text(json.dumps(
        {name: {'result': {'test': test} if test else {}, 'settings': {}}
         for name, test in stages.items()}))
  assert ablate.finished_results(cfg, 0) == {'teacher': 0.80, 'full': 0.90,
                                             'no_noise': 0.84,
                                             'two_rounds': 0.93}
  rows = {r['arm']: r for r in ablate.run_ablation(cfg, summarize_only=True)}
  assert rows['full']['seed_ids'] == [0, 1]
  assert rows['no_noise']['seed_ids'] == [0]  # seed 1 has not finished it
  assert rows['no_noise']['gain_mean'] == pytest.approx(4.0)
  assert not (tmp_path / 'seed_0' / 'ablation').exists()  # nothing trained
  assert '| no_noise | 700 | 84.00 | +4.00 | -6.00 | 0 |' in (
      tmp_path / 'ablation.md').read_text()


@pytest.mark.slow
def test_binary_runs_the_arms_and_merges_with_another_seeds_table(tmp_path):
  """One seed through the binary (two seeds cost twice as much; the table
  over several seeds is tested in-process), then `--merge` with a table of
  seed 1 recorded under the same settings, as another session would write."""
  work = tmp_path / 'ablation'
  helpers.run([sys.executable, '-m', 'noisy_student.ablate',
               f'--work_dir={work}', '--seeds=0',
               '--arms=full,no_noise', '--teacher_steps=48',
               '--student_steps=48', '--width_coefficient=0.1',
               '--depth_coefficient=0.1', '--min_threshold=0'], timeout=900)
  with open(work / 'ablation.json') as f:
    result = json.load(f)
  assert [r['arm'] for r in result['rows']] == ['teacher', 'full', 'no_noise']
  assert set(result['per_seed']) == {'0'}
  assert result['settings']['steps']['no_noise'] == 48
  assert result['settings']['student']['noise']['dropout_rate'] == 0.2
  assert os.path.getsize(work / 'ablation.png') > 0
  assert '| no_noise |' in (work / 'ablation.md').read_text()
  # The arm shares seed 0's teacher and pseudo-labels, trains its own student.
  with open(work / 'seed_0' / 'ablation' / 'no_noise' / 'model_config.json') as f:
    assert json.load(f)['dropout_rate'] == 0.0
  other = tmp_path / 'seed1.json'
  other.write_text(json.dumps({'rows': [], 'settings': result['settings'],
                               'per_seed': {'1': {'teacher': 0.5, 'full': 0.6,
                                                  'no_noise': 0.55}}}))
  merged = helpers.run([sys.executable, '-m', 'noisy_student.ablate',
                        f'--merge={work}/ablation.json,{other}',
                        f'--work_dir={tmp_path}/merged'])
  assert '| full | 48 |' in merged.stdout
  with open(tmp_path / 'merged' / 'ablation.json') as f:
    rows = json.load(f)['rows']
  assert all(r['seeds'] == 2 and r['seed_ids'] == [0, 1] for r in rows)


def test_merge_summarises_seeds_run_separately_and_refuses_other_settings(
    tmp_path):
  """Seeds of one ablation run in several sessions make one table."""
  import json  # pylint: disable=g-import-not-at-top
  from noisy_student import ablate  # pylint: disable=g-import-not-at-top
  from noisy_student.runtime import errors  # pylint: disable=g-import-not-at-top
  settings = {'dataset': 'cifar10_1k', 'steps': {'teacher': 2000, 'full': 4000},
              'test_images': 932, 'student': {'noise': {'randaug': 5}}}
  seeds = {0: {'teacher': 0.46, 'full': 0.50}, 1: {'teacher': 0.45, 'full': 0.48},
           2: {'teacher': 0.49, 'full': 0.52}}

  def table(name, chosen, record=settings):
    path = tmp_path / name
    path.write_text(json.dumps({'rows': [], 'settings': record, 'per_seed': {
        str(s): seeds[s] for s in chosen}}))
    return str(path)

  first, second = table('a.json', [0]), table('b.json', [1, 2])
  rows = ablate.merge([first, second], str(tmp_path / 'out'))
  full = next(r for r in rows if r['arm'] == 'full')
  assert full['seed_ids'] == [0, 1, 2] and full['steps'] == 4000
  assert abs(full['vs_teacher']['mean'] - 10 / 3) < 1e-9
  written = json.loads((tmp_path / 'out' / 'ablation.json').read_text())
  assert written['merged_from'] == [first, second]
  assert written['settings'] == settings
  # Merging a merged table again with a seed already in it is fine.
  ablate.merge([str(tmp_path / 'out' / 'ablation.json'), first],
               str(tmp_path / 'again'))
  other = table("c.json", [2], record=dict(
      settings, student={'noise': {'randaug': 9}}))
  with pytest.raises(errors.InputError, match=r'c.json: other settings than '
                     r'.*a.json \(student\)'):
    ablate.merge([first, other], str(tmp_path / 'bad'))
  seeds[2] = {'teacher': 0.49, 'full': 0.40}
  clash = table('d.json', [2])
  with pytest.raises(errors.InputError,
                     match=r'd.json: seed 2 has other results than in .*b.json'):
    ablate.merge([second, clash], str(tmp_path / 'bad'))
  assert not (tmp_path / 'bad').exists()
