"""runtime/job_pool.py: dependent jobs as real child processes on their cores."""

from __future__ import annotations

import os
import sys

import pytest

from noisy_student.runtime import dir_lock
from noisy_student.runtime import job_pool

Job = job_pool.Job


def _python(code: str) -> list[str]:
  return [sys.executable, '-c', code]


def _stamping(folder):
  """A child that records its start and end time, its cores and thread env."""
  def command(job):
    return _python(
        'import os, sys, time\n'
        f'path = {str(folder)!r} + "/{job.name}"\n'
        'start = time.time(); time.sleep(0.6)\n'
        'cores = sorted(os.sched_getaffinity(0))\n'
        'open(path, "w").write(repr((start, time.time(), cores, '
        'os.environ["TF_NUM_INTRAOP_THREADS"])))\n'
        f'print("{job.name} says hello")\n')
  return command


def _stamp(folder, name):
  return eval((folder / name).read_text())  # pylint: disable=eval-used


def test_jobs_wait_for_what_they_need_and_run_side_by_side(tmp_path):
  lines = []
  jobs = [Job('teacher'), Job('control'), Job('pseudo', ('teacher',)),
          Job('full', ('pseudo',)), Job('no_noise', ('pseudo',))]
  seconds = job_pool.run_jobs(jobs, _stamping(tmp_path), slots=2,
                              log_dir=str(tmp_path / 'logs'),
                              echo=lines.append, cores=[0, 0])
  assert set(seconds) == {'teacher', 'control', 'pseudo', 'full', 'no_noise'}
  stamp = {name: _stamp(tmp_path, name) for name in seconds}
  # Each started after what it waits for ended.
  assert stamp['pseudo'][0] >= stamp['teacher'][1]
  assert stamp['full'][0] >= stamp['pseudo'][1]
  assert stamp['no_noise'][0] >= stamp['pseudo'][1]
  # Independent jobs overlapped: two slots.
  assert stamp['control'][0] < stamp['teacher'][1]
  assert stamp['no_noise'][0] < stamp['full'][1]
  assert '[teacher] teacher says hello' in lines
  assert (tmp_path / 'logs' / 'full.log').read_text() == 'full says hello\n'
  assert all(s[3] == '1' for s in stamp.values())  # one core per slot


def test_each_slot_is_pinned_to_its_own_cores():
  assert job_pool.core_sets(2, [0, 1]) == [(0,), (1,)]
  assert job_pool.core_sets(2, [0, 1, 2, 3, 4]) == [(0, 1), (2, 3)]
  assert job_pool.core_sets(4, [3, 5]) == [(3,), (5,)]  # at most one per core
  assert job_pool.core_sets(1, [0, 1]) == [(0, 1)]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason='one core')
def test_children_run_on_the_cores_of_their_slot(tmp_path):
  cores = sorted(os.sched_getaffinity(0))[:2]
  job_pool.run_jobs([Job('a'), Job('b')], _stamping(tmp_path), slots=2,
                    log_dir=str(tmp_path / 'logs'), echo=lambda _: None,
                    cores=cores)
  assert sorted([_stamp(tmp_path, 'a')[2], _stamp(tmp_path, 'b')[2]]) == [
      [cores[0]], [cores[1]]]


def test_a_failed_job_stops_the_others_and_is_named_with_its_log(tmp_path):
  lines = []

  saved = tmp_path / 'slow-saved'

  def command(job):
    if job.name == 'bad':
      return _python('import sys, time; time.sleep(0.5); '
                     'print("something broke"); sys.exit(3)')
    # Ctrl-C's way: the job still running gets SIGINT (training saves).
    return _python(
        'import signal, sys, time\n'
        'def save(*_):\n'
        f'  open({str(saved)!r}, "w").write("saved"); sys.exit(0)\n'
        'signal.signal(signal.SIGINT, save)\n'
        'time.sleep(60)\n')

  with pytest.raises(job_pool.JobFailedError,
                     match=r'bad failed \(exit status 3\); its log: .*bad.log;'
                     r' last lines:\nsomething broke'):
    job_pool.run_jobs([Job('slow'), Job('bad'), Job('after', ('bad',))],
                      command, slots=2, log_dir=str(tmp_path),
                      echo=lines.append, cores=[0, 0])
  assert not any('after' in line for line in lines)
  assert any('slow: started' in line for line in lines)
  assert saved.read_text() == 'saved'


def test_jobs_that_wait_for_each_other_are_refused(tmp_path):
  with pytest.raises(ValueError, match='wait for each other: a, b'):
    job_pool.run_jobs([Job('a', ('b',)), Job('b', ('a',))], _stamping(tmp_path),
                      slots=2, log_dir=str(tmp_path), echo=lambda _: None)
  with pytest.raises(ValueError, match='unknown jobs'):
    job_pool.run_jobs([Job('a', ('z',))], _stamping(tmp_path), slots=1,
                      log_dir=str(tmp_path), echo=lambda _: None)


def test_a_child_works_in_the_folder_its_parent_holds_and_nobody_else_does(
    tmp_path):
  """The parent's lock covers its children (ablate --jobs); an unrelated
  process with the same environment is still refused."""
  folder = str(tmp_path / 'seed_0')
  enter = _python(
      'import sys\n'
      'from noisy_student.runtime import dir_lock\n'
      f'with dir_lock.exclusive({folder!r}, "ablation"):\n'
      '  print("inside")\n')
  with dir_lock.exclusive(folder, 'ablation'):
    env = dir_lock.for_children(dict(os.environ))
    job_pool.run_jobs([Job('child')], lambda job: enter, slots=1,
                      log_dir=str(tmp_path / 'logs'), echo=lambda _: None,
                      environment=env)
    assert (tmp_path / 'logs' / 'child.log').read_text() == 'inside\n'
    # A grandchild's parent is not the holder: refused.
    grandchild = _python(
        'import os, subprocess, sys\n'
        f'sys.exit(subprocess.run({enter!r}).returncode)\n')
    with pytest.raises(job_pool.JobFailedError, match='another ablation'):
      job_pool.run_jobs([Job('grandchild')], lambda job: grandchild, slots=1,
                        log_dir=str(tmp_path / 'logs'), echo=lambda _: None,
                        environment=env)


def test_a_folder_inside_one_another_process_holds_is_refused(tmp_path):
  """main --mode=train into a stage folder of a running iterate: refused,
  naming the work_dir; the holder itself trains there freely."""
  work = str(tmp_path / 'work')
  stage = os.path.join(work, 'round_0', 'teacher')
  holder = _python(
      'import sys, time\n'
      'from noisy_student.runtime import dir_lock\n'
      f'with dir_lock.exclusive({work!r}, "iterate run", flag="--work_dir"):\n'
      '  print("holding", flush=True)\n'
      f'  with dir_lock.exclusive({stage!r}, "trainer"):\n'
      '    time.sleep(30)\n')
  import subprocess  # pylint: disable=g-import-not-at-top
  process = subprocess.Popen(holder, stdout=subprocess.PIPE)
  try:
    assert process.stdout.readline() == b'holding\n'
    with pytest.raises(dir_lock.FolderInUseError,
                       match=rf'{stage}: it is inside {work}, which another '
                       r'job is writing \(pid \d+'):
      with dir_lock.exclusive(stage, 'trainer'):
        pass
  finally:
    process.kill()
    process.wait()
  with dir_lock.exclusive(stage, 'trainer'):  # free once the holder is gone
    pass
