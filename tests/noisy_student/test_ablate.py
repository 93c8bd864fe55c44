"""The ablation binary: arm recipes, the summary, and a tiny end-to-end run."""

import dataclasses
import json
import os
import re
import sys

from absl import flags
import numpy as np
import pytest

from noisy_student import ablate
from noisy_student.analysis import ablation_table
from noisy_student.core import defaults
from noisy_student.drivers import ablation
from noisy_student.runtime import errors
from tests import helpers


def test_each_arm_removes_only_its_noise():
  full = defaults.DEMO_STUDENT
  assert ablation.student_recipe('full', full) == full
  none = ablation.student_recipe('no_noise', full)
  assert none.noise.augment_name is None
  assert none.noise.dropout_rate == 0.0 == none.noise.stochastic_depth_rate
  assert none.train == full.train
  data_only = ablation.student_recipe('data_noise', full)
  assert data_only.noise.augment_name == full.noise.augment_name == 'v1'
  assert data_only.noise.randaug_magnitude == full.noise.randaug_magnitude
  assert data_only.noise.dropout_rate == 0.0
  model_only = ablation.student_recipe('model_noise', full)
  assert model_only.noise.augment_name is None
  assert model_only.noise.dropout_rate == full.noise.dropout_rate == 0.2
  assert model_only.noise.stochastic_depth_rate == 0.2
  hard = ablation.student_recipe('hard_labels', full)
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
  assert cfg.arms == ablation.ARMS
  cfg = _config('--work_dir=/tmp/unused', '--teacher_steps=48',
                '--min_threshold=0.1', '--width_coefficient=0.25',
                '--larger_student_train_steps=1400')
  assert cfg.teacher.train.train_steps == 48
  steps = ablation.arm_steps(cfg)
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
  plain = ablation.student_recipe('model_noise', preset.student)  # no RA
  monkeypatch.setitem(defaults.PRESETS, 'cifar10_subset',
                      dataclasses.replace(preset, student=plain))
  cfg = _config('--work_dir=/tmp/unused', '--preset=cifar10_subset',
                f'--data_dir={digits_dir}')
  assert 'data_noise' not in cfg.arms and 'model_noise' not in cfg.arms
  assert {'full', 'no_noise'} <= set(cfg.arms)
  with pytest.raises(errors.ConfigError,
                     match='--arms=data_noise: the cifar10_subset preset has '
                     'no RandAugment'):
    _config('--work_dir=/tmp/unused', '--preset=cifar10_subset',
            f'--data_dir={digits_dir}', '--arms=no_noise,data_noise')


def test_summary_means_stds_and_paired_differences():
  per_seed = {0: {'teacher': 0.80, 'full': 0.90, 'no_noise': 0.84},
              1: {'teacher': 0.70, 'full': 0.76, 'no_noise': 0.70},
              2: {'teacher': 0.75, 'full': 0.84, 'no_noise': 0.79}}
  rows = {r['arm']: r for r in ablation_table.summarize(
      per_seed, {'teacher': 8, 'full': 7, 'no_noise': 7}, test_images=400)}
  assert list(rows) == ['teacher', 'full', 'no_noise']
  assert rows['full']['test_top1_mean'] == pytest.approx(83.333333)
  assert rows['full']['gain_mean'] == pytest.approx(8.333333)
  vs_teacher = rows['full']['vs_teacher']
  assert vs_teacher['seeds'] == [0, 1, 2] and vs_teacher['excludes_zero']
  assert vs_teacher['low'] == pytest.approx(3.1622, abs=1e-3)
  assert rows['no_noise']['vs_full']['mean'] == pytest.approx(-5.666667)
  assert rows['teacher']['vs_teacher'] is None
  table = ablation_table.markdown(list(rows.values()), 'x')
  assert ('| full | 7 | 83.33 +- 7.02 | +8.33 [+3.16, +13.50], p=0.02 | - '
          '| - | 0,1,2 | 90.00, 76.00, 84.00 |') in table
  assert 'binomial standard error of about 2.17 points' in table
  one_seed = ablation_table.markdown(ablation_table.summarize({0: per_seed[0]}), 'x')
  assert '| full | - | 90.00 | +10.00 | - | - | 0 | 90.00 |' in one_seed


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
  assert ablation.finished_results(cfg, 0) == {'teacher': 0.80, 'full': 0.90,
                                             'no_noise': 0.84,
                                             'two_rounds': 0.93}
  rows = {r['arm']: r for r in ablation.run_ablation(cfg, summarize_only=True)}
  assert rows['full']['seed_ids'] == [0, 1]
  assert rows['no_noise']['seed_ids'] == [0]  # seed 1 has not finished it
  assert rows['no_noise']['gain_mean'] == pytest.approx(4.0)
  assert not (tmp_path / 'seed_0' / 'ablation').exists()  # nothing trained
  assert '| no_noise | 700 | 84.00 | +4.00 | -6.00 | - | 0 |' in (
      tmp_path / 'ablation.md').read_text()


@pytest.mark.slow
def test_binary_runs_the_arms_and_merges_with_another_seeds_table(tmp_path):
  """One seed through the binary (two seeds cost twice as much; the table
  over several seeds is tested in-process), then `--merge` with a table of
  seed 1 recorded under the same settings, as another session would write."""
  work = tmp_path / 'ablation'
  helpers.run([sys.executable, '-m', 'noisy_student.ablate',
               f'--work_dir={work}', '--seeds=0',
               '--arms=control,full,no_noise', '--teacher_steps=48',
               '--student_steps=48', '--width_coefficient=0.1',
               '--depth_coefficient=0.1', '--min_threshold=0'], timeout=900)
  with open(work / 'ablation.json') as f:
    result = json.load(f)
  assert [r['arm'] for r in result['rows']] == ['teacher', 'control', 'full',
                                                'no_noise']
  assert set(result['per_seed']) == {'0'}
  assert result['settings']['steps']['no_noise'] == 48
  assert result['settings']['steps']['control'] == 48
  # The control is the teacher's recipe (supervised) for the student's steps.
  with open(work / 'seed_0' / 'state.json') as f:
    control = json.load(f)['ablation/control']['settings']
  assert control['train']['unlabel_ratio'] == 0.0
  assert control['data']['unlabel_data_dir'] == ''
  # Every arm's per-image test predictions, and McNemar from them.
  for arm in ('teacher', 'control', 'full', 'no_noise'):
    with np.load(work / 'predictions' / 'seed_0' / f'{arm}-test.npz') as p:
      assert len(p['label']) == len(p['predicted']) == len(p['probability'])
      assert len(p['label']) == result['settings']['test_images']
      assert ((p['probability'] > 0) & (p['probability'] <= 1)).all()
      if arm == 'full':
        accuracy = float((p['label'] == p['predicted']).mean())
        assert accuracy == pytest.approx(result['per_seed']['0']['full'],
                                         abs=1e-4)
  tests = result['mcnemar']['0']
  assert {'full-teacher', 'full-control', 'no_noise-full', 'control-teacher',
          'no_noise-teacher', 'no_noise-control'} <= set(tests)
  assert 0 <= tests['full-teacher']['p_value'] <= 1
  assert [c['name'] for c in result['claims']] == [
      'full - teacher', 'full - control', 'full - no_noise']
  assert result['runs']['0']['seconds'] > 0
  assert result['settings']['student']['noise']['dropout_rate'] == 0.2
  assert os.path.getsize(work / 'ablation.png') > 0
  assert '| no_noise |' in (work / 'ablation.md').read_text()
  # The arm shares seed 0's teacher and pseudo-labels, trains its own student.
  with open(work / 'seed_0' / 'ablation' / 'no_noise' / 'model_config.json') as f:
    assert json.load(f)['dropout_rate'] == 0.0
  other = tmp_path / 'seed1.json'
  other.write_text(json.dumps({'rows': [], 'settings': result['settings'],
                               'per_seed': {'1': {'teacher': 0.5, 'full': 0.6,
                                                  'control': 0.52,
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
  rows = ablation.merge([first, second], str(tmp_path / 'out'))
  full = next(r for r in rows if r['arm'] == 'full')
  assert full['seed_ids'] == [0, 1, 2] and full['steps'] == 4000
  assert abs(full['vs_teacher']['mean'] - 10 / 3) < 1e-9
  written = json.loads((tmp_path / 'out' / 'ablation.json').read_text())
  assert written['merged_from'] == [first, second]
  assert written['settings'] == settings
  # Merging a merged table again with a seed already in it is fine.
  ablation.merge([str(tmp_path / 'out' / 'ablation.json'), first],
               str(tmp_path / 'again'))
  other = table("c.json", [2], record=dict(
      settings, student={'noise': {'randaug': 9}}))
  with pytest.raises(errors.InputError, match=r'c.json: other settings than '
                     r'.*a.json \(student\)'):
    ablation.merge([first, other], str(tmp_path / 'bad'))
  seeds[2] = {'teacher': 0.49, 'full': 0.40}
  clash = table('d.json', [2])
  with pytest.raises(errors.InputError,
                     match=r'd.json: seed 2 has other results than in .*b.json'):
    ablation.merge([second, clash], str(tmp_path / 'bad'))
  assert not (tmp_path / 'bad').exists()


def test_pre_declared_claims_are_holm_corrected_and_spread_free_ones_have_no_interval():
  per_seed = {s: {'teacher': 0.50 + 0.01 * s, 'control': 0.53 + 0.004 * s,
                  'full': 0.60 + 0.012 * s, 'no_noise': 0.60 + 0.01 * s}
              for s in range(5)}
  per_seed[3]['full'] = 0.655
  # Pairs are stored once, either order ('no_noise-full' serves full - no_noise).
  mcnemar = {s: {'full-teacher': {'p_value': 0.001},
                 'no_noise-full': {'p_value': 0.2}} for s in range(5)}
  claims = ablation_table.claims(per_seed, mcnemar)
  assert [c['name'] for c in claims] == ['full - teacher', 'full - control',
                                         'full - no_noise']
  first = claims[0]
  assert first['confidence'] == pytest.approx(1 - 0.05 / 3)
  assert first['effect'] and first['low'] > 0
  assert first['mcnemar_p'] == [0.001] * 5
  assert claims[2]['mcnemar_p'] == [0.2] * 5
  assert first['p_holm'] == pytest.approx(min(1, 3 * first['p_value']))
  assert first['claim'].startswith('full - teacher: +') and 'Holm p' in (
      first['claim'])
  # The Bonferroni interval is wider than the plain 95% one.
  plain = ablation_table.comparison(per_seed, 'full', 'teacher')
  assert first['low'] < plain['low'] and first['high'] > plain['high']
  text = ablation_table.markdown(ablation_table.summarize(per_seed), 't',
                                 claims)
  assert 'Pre-declared claims (3 comparisons, Holm-corrected' in text
  # Every seed the same gain: no interval, no p-value, no claimed effect.
  flat = {s: {'teacher': 0.5, 'full': 0.5025} for s in range(3)}
  only = ablation_table.claims(flat)
  assert len(only) == 1 and only[0]['low'] is None
  assert not only[0]['effect'] and only[0]['p_holm'] is None
  assert 'spread not measured' in only[0]['claim']


def test_merge_refuses_a_table_with_a_result_that_is_not_a_number(tmp_path):
  path = tmp_path / 'a.json'
  path.write_text(json.dumps({'settings': {'steps': {}, 'test_images': 10},
                              'per_seed': {'0': {'teacher': 'n/a'}}}))
  with pytest.raises(errors.InputError,
                     match=r"a.json: seed 0: teacher is 'n/a', not an accuracy"):
    ablation.merge([str(path)], str(tmp_path / 'out'))


@pytest.mark.slow
def test_jobs_train_a_seeds_independent_stages_side_by_side(tmp_path):
  """--jobs=2 (the CIFAR-10-4k recipe's way to fit its budget): the teacher
  and the control in two child processes, then the pseudo-labels, then the
  student; one state.json records every stage, each job keeps its log, and
  the seed's wall time and job count are recorded."""
  work = tmp_path / 'ablation'
  result = helpers.run([sys.executable, '-m', 'noisy_student.ablate',
                        f'--work_dir={work}', '--seeds', '0', '--jobs=2',
                        '--arms=control,full', '--teacher_steps=48',
                        '--student_steps=48', '--width_coefficient=0.1',
                        '--depth_coefficient=0.1', '--min_threshold=0'],
                       timeout=900)
  assert re.search(r'^\[jobs\] teacher: started on core', result.stderr, re.M)
  assert re.search(r'^\[control\] .*\[ablation/control\] done', result.stderr,
                   re.M), result.stderr[-3000:]
  with open(work / 'ablation.json') as f:
    table = json.load(f)
  assert [r['arm'] for r in table['rows']] == ['teacher', 'control', 'full']
  assert table['runs']['0']['jobs'] == 2
  assert table['runs']['0']['wall_seconds'] > 0
  with open(work / 'seed_0' / 'state.json') as f:
    done = json.load(f)
  assert {'round_0/teacher', 'ablation/control', 'round_1/predict',
          'round_1/filter', 'round_1/student'} <= set(done)
  assert all(entry.get('finished', True) for entry in done.values())
  logs = sorted(os.listdir(work / 'seed_0' / 'logs'))
  assert logs == ['control.log', 'full.log', 'pseudo_labels.log',
                  'teacher.log']
  # The teacher's log says it trained; the full job only resumed it.
  assert '[round_0/teacher] starting' in (
      work / 'seed_0' / 'logs' / 'teacher.log').read_text()
  assert '[round_0/teacher] finished earlier; skipping' in (
      work / 'seed_0' / 'logs' / 'full.log').read_text()
  for arm in ('teacher', 'control', 'full'):
    assert (work / 'predictions' / 'seed_0' / f'{arm}-test.npz').exists()


def test_a_job_names_one_of_the_seeds_jobs(tmp_path):
  from noisy_student.drivers import ablation_jobs  # pylint: disable=g-import-not-at-top
  cfg = _config(f'--work_dir={tmp_path}', '--arms=control,full,no_noise',
                '--seeds=0')
  assert ablation_jobs.job_names(cfg.arms) == [
      'teacher', 'control', 'pseudo_labels', 'full', 'no_noise']
  with pytest.raises(errors.ConfigError, match='the jobs of these arms are '
                     'teacher, control, pseudo_labels, full, no_noise'):
    ablation_jobs.run_job(cfg, 0, 'larger_student')
  assert list(tmp_path.iterdir()) == []


def test_a_jobs_command_is_the_one_given_for_one_seed_and_job():
  from noisy_student.drivers import ablation_jobs  # pylint: disable=g-import-not-at-top
  argv = ['--work_dir=w', '--seeds', '0,1', '--jobs=2', '--arms=control,full',
          '--run_job', 'x', '--nodeterministic']
  assert ablation_jobs.child_command('noisy_student.ablate', argv, 1,
                                     'control') == [
      sys.executable, '-m', 'noisy_student.ablate', '--work_dir=w',
      '--arms=control,full', '--nodeterministic', '--seeds=1',
      '--run_job=control', '--jobs=1']
