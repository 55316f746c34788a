"""Runs an experiment: ``python -m experiments.main --config=experiments/configs/<task>.py``.

One run of the config; ``--grid=FIELD=V1,V2 [--grid=...] --seeds=S`` runs every cell x seed
here instead (a sweep; ``python -m experiments.sweep`` runs them as processes). With no flags:
the 1-D density chasm at sigma = 1e-3, NCE beside N^2CE (M = 100) over three seeds, in about a
minute on a laptop CPU. Any field of the config can be overridden, e.g.
``--config.objective.magnitude=1000``; a field the task does not read is not in its config and
is refused. Exits with status 143 after saving a checkpoint on SIGTERM; rerun the
same command to resume. A work directory holds one config: another is refused unless
``--force``. ``--distributed`` (or ``NNCE_DISTRIBUTED=1``) joins a multi-process run through
``jax.distributed.initialize``; see ``launch/`` and ``docs/scaling.md``.
"""

import logging as python_logging
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from experiments.core import cli, compilation_cache
from experiments.core.checks import ConfigError
from experiments.run.training import run
from experiments.run.workdir import DIVERGED_FILE, WorkdirConflict, open_workdir, record_divergence
from experiments.sweep import InProcess, run_sweep
from experiments.sweep.grid import parse_grid_flags
from nnce_jax.parallel import initialize_multihost
from nnce_jax.train import Preempted

PREEMPTED_EXIT_CODE = 143  # 128 + SIGTERM, what schedulers expect of a terminated job

_DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), 'configs', 'density_chasm.py')
try:  # ml_collections applies --config.FIELD=... to the default config here, at definition
  _CONFIG = config_flags.DEFINE_config_file('config', _DEFAULT_CONFIG, 'Experiment config file.')
except (AttributeError, KeyError) as error:
  cli.refuse_override(error, sys.argv)
_GRID = flags.DEFINE_multi_string('grid', [], 'FIELD=V1,V2,...; repeat for a product grid: every cell x '
                                  'seed runs here, side by side on the same seeds.')
_SEEDS = flags.DEFINE_integer('seeds', 1, 'With --grid: seeds config.seed .. config.seed + seeds - 1 '
                              'per cell.')
# No flags at all: NCE beside N^2CE on the default config's seeds 0, 1, 2.
DEMONSTRATION = (['objective.name=nce,noisier_nce'], 3)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory (default ./runs/<config name>).')
_COMPILATION_CACHE = flags.DEFINE_string(
    'compilation_cache', compilation_cache.DEFAULT_DIR, "JAX's persistent compilation cache, shared by "
    'every run (default $NNCE_COMPILATION_CACHE or ~/.cache/nnce_jax/xla); empty: none.')
_FORCE = flags.DEFINE_bool('force', False, 'Run in a workdir that holds a run of another config.')
_DISTRIBUTED = flags.DEFINE_bool('distributed', os.environ.get('NNCE_DISTRIBUTED') == '1',
                                 'Join a multi-process run (jax.distributed.initialize).')
_COORDINATOR = flags.DEFINE_string('coordinator_address', None, 'host:port of process 0 '
                                   '(default $JAX_COORDINATOR_ADDRESS, or detected on TPU/SLURM).')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Default $JAX_NUM_PROCESSES, or detected.')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'Default $JAX_PROCESS_ID, or detected.')
# Orbax's barriers through the coordination service (timeout 300 s), not through a collective:
# the first collective of a process group gives the others 30 s to join, which a process that
# loads or compiles slower on a busy machine misses.
flags.FLAGS.set_default('experimental_orbax_use_distributed_barrier', True)


def _own_info_only(record) -> bool:
  """Keeps INFO lines from this project; Orbax and XLA log several per checkpoint."""
  own = any(part in record.pathname for part in ('/nnce_jax/', '/experiments/'))
  return record.levelno >= python_logging.WARNING or own  # absl's WARNING is -1


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  # ABSLHandler.handle delegates to its python_handler, bypassing its own filters.
  logging.get_absl_handler().python_handler.addFilter(_own_info_only)
  import jax  # after flag parsing: --jax_* flags may configure the backend

  compilation_cache.enable(_COMPILATION_CACHE.value)
  if _DISTRIBUTED.value:
    initialize_multihost(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  try:
    config = _CONFIG.value
    config.task  # noqa: B018 (a config file that failed to load raises here)
  except OSError as error:
    sys.exit(f'Invalid --config: {str(error).splitlines()[-1].strip()}')
  config_name = os.path.splitext(os.path.basename(config_flags.get_config_filename(flags.FLAGS["config"])))[0]
  workdir = _WORKDIR.value or os.path.join('runs', config_name)
  given = _GRID.value or flags.FLAGS['config'].present
  grid_flags, seeds = (_GRID.value, _SEEDS.value) if given else DEMONSTRATION
  lock = None
  try:
    grid = parse_grid_flags(config, grid_flags)
    lock = open_workdir(config, workdir, num_devices=jax.device_count(), num_processes=jax.process_count(),
                        force=_FORCE.value, write=jax.process_index() == 0)
  except (ConfigError, WorkdirConflict, OSError) as error:
    sys.exit(f'Invalid config: {error}' if isinstance(error, ConfigError) else
             f'Cannot use --workdir={workdir}: {error}' if isinstance(error, OSError) else str(error))
  logging.info('task %s, workdir %s, %d device(s)', config.task, workdir, jax.device_count())
  if lock is not None and os.path.exists(os.path.join(workdir, DIVERGED_FILE)):
    os.remove(os.path.join(workdir, DIVERGED_FILE))  # asked to run again: a new attempt

  try:
    if grid:  # a sweep, here in this process
      result = run_sweep(config, grid, seeds=seeds, workdir=workdir, executor=InProcess())
      print(f'{result.table}\nTable, plots and per-run summaries in {workdir}/')
    else:
      summary = run(config, workdir)
      print(summary['table'] if 'table' in summary else
            {k: summary[k] for k in ('objective', 'steps', 'final', 'truth') if k in summary})
  except Preempted as stop:
    logging.warning('%s', stop)
    sys.exit(PREEMPTED_EXIT_CODE)
  except FileNotFoundError as error:  # a dataset or a teacher run not there: the error says how to make it
    sys.exit(f'Missing input: {error}')
  except ConfigError as error:  # what only the task's inputs can tell (a teacher of another shape)
    sys.exit(f'Invalid config: {error}')
  except FloatingPointError as error:  # a non-finite loss or model: the message says what to change
    if lock is not None and not grid:
      record_divergence(workdir, str(error))  # a sweep reports it from now on; delete it to retry
    sys.exit(f'Diverged: {error}')
  finally:
    if lock is not None:
      lock.release()


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
