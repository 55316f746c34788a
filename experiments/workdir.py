"""A work directory belongs to one config: ``W/config.json`` records it, and a run of a
different config in ``W`` is refused (unless forced) before anything is compiled or written.

Fields that only say how long or where to run may change on resume: more steps (unless a
magnitude schedule spans the run), another device count, other logging intervals.
"""

import json
import os

from experiments.config_checks import check_config

CONFIG_FILE = 'config.json'
RESUMABLE = ('train.num_steps', 'train.log_every', 'train.eval_every', 'train.checkpoint_every',
             'train.sync_every', 'train.steps_per_dispatch', 'train.max_checkpoints',
             'parallel.backend', 'parallel.num_devices')


class WorkdirConflict(Exception):
  """``W`` holds a run of another config."""


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
  if now.get('objective.magnitude_schedule', 'constant') != 'constant':
    resumable.discard('train.num_steps')  # the schedule spans the run: more steps, another M(t)
  return [f'{field}: {stored.get(field, "(absent)")!r} -> {now.get(field, "(absent)")!r}'
          for field in sorted(set(stored) | set(now))
          if field not in resumable and stored.get(field) != now.get(field)]


def claim(workdir: str, config, *, force: bool = False, write: bool = True) -> None:
  """Raises :class:`WorkdirConflict` if ``workdir`` holds a run of another config (unless
  ``force``), else records ``config`` there (when ``write``: process 0 of several)."""
  if (diff := differences(workdir, config)) and not force:
    raise WorkdirConflict(
        f'{workdir} holds a run of another config ({len(diff)} field(s) differ: ' + '; '.join(diff[:8])
        + ('; ...' if len(diff) > 8 else '') + '). Use another --workdir, or --force to resume it '
        'under the new config.')
  if write:
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, CONFIG_FILE), 'w') as f:
      json.dump(config.to_dict(), f, indent=2, default=str)


def open_workdir(config, workdir: str, *, num_devices: int, num_processes: int = 1, force: bool = False,
                 write: bool = True) -> None:
  """Checks ``config`` (:class:`~experiments.config_checks.ConfigError`), then claims
  ``workdir``: a bad config leaves the directory untouched."""
  check_config(config, num_devices, num_processes)
  claim(workdir, config, force=force, write=write)
