"""Runs the project's binaries for the tests without paying TensorFlow's import each time.

Every `python -m noisy_student.main ...` of a test would spend 6-9 s of its
2-core budget importing TensorFlow, Keras and the project before the first
line of the binary runs. A launcher server imports them once (no op run,
no flag defined) and, for each command, forks a child that becomes the
command: it takes the caller's stdin/stdout/stderr (passed over a UNIX
socket), environment, working folder and `sys.argv`, and runs the module as
`python -m` would (`runpy.run_module(..., run_name='__main__')`), so the
binary's own `run()` defines and parses its flags, logs and exits as usual.

What this does not test, by design: the interpreter start-up itself (the
banner filter, the package-conflict check, console-script wiring). Tests of
those start a real process (`helpers.run(..., fresh=True)` or subprocess).

Shims (`shim_dir()`): `python` (project modules through the server,
anything else to the real interpreter) and one script per console script of
pyproject.toml, so shell scripts (`PYTHON=...`) and the docs' commands
(`PATH=...`) use the server too. Without a server (NS_TEST_LAUNCHER unset)
the shims run the real thing.

  python -m tests.launcher --serve SOCKET   # the server (started by start())
"""

from __future__ import annotations

import atexit
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Optional, Sequence

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SOCKET_ENV = 'NS_TEST_LAUNCHER'
PROJECT_PACKAGES = ('noisy_student', 'data', 'efficientnet', 'benchmarks')
# Imported by the server before it forks (the rest loads in the child, fast
# once TensorFlow is in).
PRELOAD = ('tensorflow', 'keras', 'noisy_student.main', 'noisy_student.iterate',
           'data.images_to_tfrecord', 'data.prepare_digits')


def is_project_module(name: str) -> bool:
  return name.split('.')[0] in PROJECT_PACKAGES


# ---------------------------------------------------------------- the server


def _child(conn: socket.socket, request: dict, fds: list[int]) -> None:
  """In the forked child: become the command, report its exit status."""
  code = 1
  try:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.setpgid(0, 0)  # the caller kills the command and its own children
    conn.sendall(json.dumps({'pid': os.getpid()}).encode() + b'\n')
    for target, fd in enumerate(fds):
      os.dup2(fd, target)
      os.close(fd)
    os.chdir(request['cwd'])
    os.environ.clear()
    os.environ.update(request['env'])
    module = request['module']
    sys.argv = [module, *request['args']]
    sys.path[0] = request['cwd']  # `python -m`: the working folder first
    import runpy  # pylint: disable=g-import-not-at-top
    import warnings  # pylint: disable=g-import-not-at-top
    # The module was imported by the server; runpy runs it again as __main__.
    warnings.filterwarnings('ignore', message='.* found in sys.modules after '
                            'import of package', category=RuntimeWarning)
    try:
      runpy.run_module(module, run_name='__main__', alter_sys=True)
      code = 0
    except SystemExit as done:
      code = (done.code if isinstance(done.code, int)
              else (0 if done.code is None else 1))
      if not isinstance(done.code, (int, type(None))):
        print(done.code, file=sys.stderr)
    except BaseException:  # pylint: disable=broad-except
      import traceback  # pylint: disable=g-import-not-at-top
      traceback.print_exc()
      code = 1
    import atexit as child_atexit  # pylint: disable=g-import-not-at-top,reimported
    child_atexit._run_exitfuncs()  # pylint: disable=protected-access
  finally:
    for stream in (sys.stdout, sys.stderr):
      try:
        stream.flush()
      except Exception:  # pylint: disable=broad-except
        pass
    try:
      conn.sendall(json.dumps({'status': code}).encode() + b'\n')
    except OSError:
      pass
    os._exit(code)  # pylint: disable=protected-access


def serve(path: str) -> None:
  for name in PRELOAD:
    __import__(name)
  signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reap themselves
  server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
  server.bind(path + '.tmp')
  os.rename(path + '.tmp', path)  # ready: clients wait for this name
  server.listen(16)
  parent = os.getppid()
  server.settimeout(5)
  while True:
    try:
      conn, _ = server.accept()
    except socket.timeout:
      if os.getppid() != parent:  # the test process is gone
        return
      continue
    conn.settimeout(None)
    message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    while not message.endswith(b'\n'):
      message += conn.recv(1 << 20)
    sys.stdout.flush()
    sys.stderr.flush()
    if os.fork() == 0:
      server.close()
      _child(conn, json.loads(message), fds)
    for fd in fds:
      os.close(fd)
    conn.close()


# ---------------------------------------------------------------- the client


def run_module(path: str, module: str, args: Sequence[str], *,
               env: dict, cwd: str, stdin: int = 0, stdout: int = 1,
               stderr: int = 2, timeout: Optional[float] = None) -> int:
  """Runs `python -m module args` through the server; its exit status.

  Raises:
    subprocess.TimeoutExpired: after `timeout` s (the command is killed).
  """
  conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
  conn.connect(path)
  request = {'module': module, 'args': list(args), 'env': dict(env),
             'cwd': os.path.abspath(cwd)}
  socket.send_fds(conn, [json.dumps(request).encode() + b'\n'],
                  [stdin, stdout, stderr])
  reader = conn.makefile('r')
  pid = json.loads(reader.readline())['pid']

  def kill(signum=signal.SIGKILL):
    try:
      os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
      pass

  if timeout is not None:
    conn.settimeout(timeout)
  previous = {}
  if threading_is_main():
    for signum in (signal.SIGINT, signal.SIGTERM):
      previous[signum] = signal.signal(
          signum, lambda s, _: kill(s))
  try:
    line = reader.readline()
  except (socket.timeout, TimeoutError):
    kill()
    raise subprocess.TimeoutExpired([module, *args], timeout)
  finally:
    for signum, handler in previous.items():
      signal.signal(signum, handler)
    conn.close()
  return json.loads(line)['status'] if line else -signal.SIGKILL


def threading_is_main() -> bool:
  import threading  # pylint: disable=g-import-not-at-top
  return threading.current_thread() is threading.main_thread()


# ---------------------------------------------------------------- for tests

_SERVER: dict = {}


def console_scripts() -> dict[str, str]:
  """{console script: its module} of pyproject.toml."""
  text = (REPO_ROOT / 'pyproject.toml').read_text()
  section = text.split('[project.scripts]', 1)[1].split('\n[', 1)[0]
  return {name: target.split(':')[0] for name, target in
          re.findall(r'^([\w-]+) = "([\w.:]+)"', section, re.M)}


def _write_shims(directory: pathlib.Path, path: str) -> None:
  python = sys.executable
  client = f'{python} -S {pathlib.Path(__file__).resolve()}'
  (directory / 'python').write_text(
      '#!/bin/bash\n'
      '# Project modules through the tests\' launcher server, else Python.\n'
      f'if [[ "$1" == -m && -n "${{{SOCKET_ENV}:-}}" ]] && '
      '[[ "$2" =~ ^(noisy_student|data|efficientnet|benchmarks)(\\.|$) ]]; '
      f'then m="$2"; shift 2; exec {client} --client "$m" "$@"; fi\n'
      f'exec {python} "$@"\n')
  for name, module in console_scripts().items():
    (directory / name).write_text(
        '#!/bin/bash\n'
        f'if [[ -n "${{{SOCKET_ENV}:-}}" ]]; then '
        f'exec {client} --client {module} "$@"; fi\n'
        f'exec {python} -m {module} "$@"\n')
  for shim in directory.iterdir():
    shim.chmod(0o755)
  (directory / 'python3').symlink_to('python')


def start() -> tuple[str, pathlib.Path]:
  """The server of this test process (started once): (socket, shim dir)."""
  if _SERVER.get('pid') == os.getpid():
    return _SERVER['socket'], _SERVER['shims']
  home = pathlib.Path(tempfile.mkdtemp(prefix='ns-launcher-'))
  path = str(home / 'socket')
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2',
             PYTHONPATH=str(REPO_ROOT))
  server = subprocess.Popen(
      [sys.executable, '-m', 'tests.launcher', '--serve', path],
      cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
      stdout=subprocess.DEVNULL, stderr=open(home / 'server.log', 'w'))
  deadline = time.monotonic() + 120
  while not os.path.exists(path):
    if server.poll() is not None or time.monotonic() > deadline:
      raise RuntimeError('the test launcher did not start: '
                         + (home / 'server.log').read_text()[-2000:])
    time.sleep(0.05)
  shims = home / 'bin'
  shims.mkdir()
  _write_shims(shims, path)
  atexit.register(server.kill)
  _SERVER.update(pid=os.getpid(), socket=path, shims=shims, server=server)
  return path, shims


def shim_env(env: Optional[dict] = None) -> dict:
  """`env` (default: os.environ) with the shims first on PATH, PYTHON set to
  the shim and the server's socket: commands of shell scripts and docs
  blocks run through the server."""
  path, shims = start()
  env = dict(os.environ if env is None else env)
  # The shims, then this interpreter's folder (an activated venv's
  # saved_model_cli, tensorboard, ...).
  env['PATH'] = (f'{shims}:{os.path.dirname(sys.executable)}:'
                 f'{env.get("PATH", "")}')
  env['PYTHON'] = str(shims / 'python')
  env[SOCKET_ENV] = path
  return env


def run(module: str, args: Sequence[str], *, env: dict, cwd: str,
        timeout: Optional[float]) -> subprocess.CompletedProcess:
  """`python -m module args` through this process's server, output captured."""
  path, _ = start()
  with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
      open(os.devnull) as devnull:
    status = run_module(path, module, args, env=env, cwd=cwd,
                        stdin=devnull.fileno(), stdout=out.fileno(),
                        stderr=err.fileno(), timeout=timeout)
    out.seek(0)
    err.seek(0)
    return subprocess.CompletedProcess(
        [sys.executable, '-m', module, *args], status,
        out.read().decode(errors='replace'),
        err.read().decode(errors='replace'))


def _main(argv: list[str]) -> None:
  if argv[:1] == ['--serve']:
    serve(argv[1])
  elif argv[:1] == ['--client']:
    status = run_module(os.environ[SOCKET_ENV], argv[1], argv[2:],
                        env=dict(os.environ), cwd=os.getcwd())
    sys.exit(status if status >= 0 else 128 - status)
  else:
    sys.exit('usage: launcher.py --serve SOCKET | --client MODULE ARGS...')


if __name__ == '__main__':
  _main(sys.argv[1:])
