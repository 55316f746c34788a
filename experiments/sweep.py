"""Grid sweeps: every cell an ordinary run in its own workdir, aggregated into a table.

``python -m experiments.sweep --config=experiments/configs/density_chasm.py
--grid=objective.magnitude=1,10,100,1000 --grid=objective.name=nce,noisier_nce --seeds=3
--workdir=W --jobs=2 [--config.FIELD=VALUE ...]``

Each cell x seed runs ``python -m experiments.main`` in ``W/<cell>/seed_<s>`` (``--config.*``
overrides pass through); finished runs (with ``summary.json``) are skipped, so rerunning a
sweep resumes it. ``--jobs`` runs that many processes at once. Writes ``W/sweep.csv`` (a
row per run), ``W/sweep.md`` (mean ± std over seeds per cell) and plots: the first table
metric against steps per cell, and the final metrics against ``M`` when it is swept.
"""

import sys

from absl import app, flags
from ml_collections import config_flags

from experiments.sweep_runner import run_sweep

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.')
_GRID = flags.DEFINE_multi_string('grid', [], 'FIELD=V1,V2,...; repeat for a product grid.')
_SEEDS = flags.DEFINE_integer('seeds', 1, 'Seeds config.seed .. config.seed + seeds - 1 per cell.')
_WORKDIR = flags.DEFINE_string('workdir', None, 'Sweep directory.', required=True)
_JOBS = flags.DEFINE_integer('jobs', 1, 'Runs in parallel (processes).')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  overrides = [a for a in sys.argv[1:] if a.startswith('--config.')]
  config_file = config_flags.get_config_filename(flags.FLAGS['config'])
  result = run_sweep(_CONFIG.value, config_file, _GRID.value, seeds=_SEEDS.value,
                    workdir=_WORKDIR.value, jobs=_JOBS.value, overrides=overrides)
  print(result.table)


if __name__ == '__main__':
  app.run(main)
