"""A work directory belongs to one config and to one run at a time.

``W/config.json`` records the config, and a run of a different config in ``W`` is refused
(unless forced) before anything is compiled or written. Fields that only say how long or
where to run may change on resume: more steps (unless a magnitude or learning-rate schedule spans the run),
another device count, other logging intervals. ``W/lock`` is held while a run lives
(:class:`WorkdirLock`): a second run in ``W``, such as a requeued job overlapping its
predecessor, is refused instead of interleaving its steps with the first one's.
"""

import fcntl
import json
import os
import socket
import time

from experiments.core.files import write_json_atomically
from experiments.run.training import check_config

CONFIG_FILE = 'config.json'
DIVERGED_FILE = 'diverged.txt'  # why a run of this config diverged: a sweep reports it, not reruns it
RESUMABLE = ('train.num_steps', 'train.log_every', 'train.eval_every', 'train.checkpoint_every',
             'train.sync_every', 'train.steps_per_dispatch', 'train.max_checkpoints',
             'parallel.backend', 'parallel.num_devices', 'noise.cache_dir')


class WorkdirConflict(Exception):
  """``W`` holds a run of another config."""


LOCK_FILE = 'lock'


class WorkdirLock:
  """``W/lock`` held for the life of a run, so two runs never share a work directory.

  The holder keeps an exclusive ``flock`` on the file and writes its pid, host and start time
  in it. The kernel drops the lock when the holder exits or dies (SIGKILL included), so a
  lock left by a dead process is simply taken over; a live holder's is refused, naming it.
  """

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, LOCK_FILE)
    self._fd = None

  def acquire(self) -> 'WorkdirLock':
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      holder = os.read(fd, 4096).decode(errors='replace')
      os.close(fd)
      try:
        who = json.loads(holder)
        who = f'pid {who["pid"]} on {who["host"]} (started {who["started"]})'
      except (ValueError, KeyError, TypeError):
        who = 'another process'
      raise WorkdirConflict(f'{os.path.dirname(self.path)} is in use by {who}; wait for that run to '
                            'end or stop it, or use another --workdir') from None
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({'pid': os.getpid(), 'host': socket.gethostname(),
                             'started': time.strftime('%Y-%m-%d %H:%M:%S')}).encode())
    self._fd = fd
    return self

  def release(self) -> None:
    if self._fd is not None:
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()


def _flat(tree: dict, prefix: str = '') -> dict:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flat(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat


def config_record(config) -> dict:
  """The config as JSON would store it (tuples become lists), flattened to dotted fields."""
  return _flat(json.loads(json.dumps(config.to_dict(), default=str)))


def differences(workdir: str, config) -> list[str]:
  """``field: stored -> now`` for every field (outside :data:`RESUMABLE`) in which ``config``
  differs from the one recorded in ``workdir``; empty when none is recorded."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    stored = _flat(json.load(f))
  now = config_record(config)
  resumable = set(RESUMABLE)
  schedules = ('objective.magnitude_schedule', 'optimizer.schedule')
  if any(now.get(field, 'constant') != 'constant' for field in schedules):
    resumable.discard('train.num_steps')  # a schedule spans the run: more steps, another M(t) or rate
  return [f'{field}: {stored.get(field, "(absent)")!r} -> {now.get(field, "(absent)")!r}'
          for field in sorted(set(stored) | set(now))
          if field not in resumable and stored.get(field) != now.get(field)]


def record_divergence(workdir: str, message: str) -> None:
  """Keeps why the run in ``workdir`` diverged: the same config diverges again (runs are
  deterministic), so a sweep reports it instead of training it anew (:func:`divergence`)."""
  with open(os.path.join(workdir, DIVERGED_FILE), 'w') as f:
    f.write(message + '\n')


def divergence(workdir: str) -> str | None:
  """The recorded divergence of the run in ``workdir``, or None."""
  path = os.path.join(workdir, DIVERGED_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return f.read().strip()


def open_workdir(config, workdir: str, *, num_devices: int, num_processes: int = 1, force: bool = False,
                 write: bool = True) -> WorkdirLock | None:
  """Checks ``config`` (:class:`~experiments.core.checks.ConfigError`) and that ``workdir``
  holds no run of another config (:class:`WorkdirConflict`, unless ``force``), then takes its
  lock and records the config. A bad config or a conflict leaves the directory untouched.
  Only the writer (process 0 of several) locks and writes; it gets the held lock back."""
  check_config(config, num_devices, num_processes)
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise WorkdirConflict(f'--workdir={workdir} is a file, not a directory')
  _refuse_other_config(workdir, config, force)
  if not write:
    return None
  os.makedirs(workdir, exist_ok=True)
  lock = WorkdirLock(workdir).acquire()
  try:
    _refuse_other_config(workdir, config, force)  # again: the previous holder may have just written
    # Whole or absent, never half-written: the other processes of a multi-process run read it
    # (_refuse_other_config) while process 0 writes it.
    write_json_atomically(os.path.join(workdir, CONFIG_FILE), config.to_dict(), indent=2, default=str)
  except BaseException:
    lock.release()
    raise
  return lock


def _refuse_other_config(workdir: str, config, force: bool) -> None:
  if (diff := differences(workdir, config)) and not force:
    raise WorkdirConflict(
        f'{workdir} holds a run of another config ({len(diff)} field(s) differ: ' + '; '.join(diff[:8])
        + ('; ...' if len(diff) > 8 else '') + '). Use another --workdir, or --force to resume it '
        'under the new config.')
