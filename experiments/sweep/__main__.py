"""Grid sweeps from the command line: every cell x seed an ordinary run, aggregated into a table.

``python -m experiments.sweep --config=experiments/configs/density_chasm.py --seeds=5 --workdir=W
[--grid=objective.magnitude=1,10,100 --grid=objective.name=nce,noisier_nce] [--jobs=2]
[--config.FIELD=VALUE ...]``

Without ``--grid`` the config file's ``get_sweep()`` gives the grid. Each cell x seed runs
``python -m experiments.main`` in ``W/<cell>/seed_<s>`` (``--config.*`` overrides pass
through); finished runs are reused. Writes ``W/sweep.{csv,md}`` and ``W/sweep_*.png``.
"""

import importlib.util
import sys

from absl import app, flags
from ml_collections import config_flags

from experiments.core import cli
from experiments.core.checks import ConfigError, get_field
from experiments.sweep import Subprocesses, run_sweep
from experiments.sweep.grid import parse_grid_flags

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.')
_GRID = flags.DEFINE_multi_string('grid', [], 'FIELD=V1,V2,...; repeat for a product grid (default: '
                                  "the config file's get_sweep()).")
_SEEDS = flags.DEFINE_integer('seeds', 1, 'Seeds config.seed .. config.seed + seeds - 1 per cell.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Sweep directory.', required=True)
_JOBS = flags.DEFINE_integer('jobs', 1, 'Runs in parallel (processes).')


def _file_sweep(path: str) -> dict:
  spec = importlib.util.spec_from_file_location('sweep_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, 'get_sweep'):
    raise ConfigError(f'{path} has no get_sweep(); pass --grid=FIELD=V1,V2,...')
  return module.get_sweep()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  config, config_file = _CONFIG.value, config_flags.get_config_filename(flags.FLAGS['config'])
  fields = [a.removeprefix('--config.').partition('=')[0] for a in sys.argv[1:] if a.startswith('--config.')]
  try:
    grid = parse_grid_flags(config, _GRID.value) if _GRID.value else _file_sweep(config_file)
    overrides = {field: get_field(config, field) for field in fields}
    result = run_sweep(config, grid, seeds=_SEEDS.value, workdir=_WORKDIR.value,
                       executor=Subprocesses(config_file, overrides, _JOBS.value))
  except ConfigError as error:
    sys.exit(f'Invalid sweep: {error}')
  print(result.table)


if __name__ == '__main__':
  app.run(main, flags_parser=cli.parse_flags)
