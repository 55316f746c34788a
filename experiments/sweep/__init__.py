"""Sweeps: a grid of config values x seeds, each an ordinary run, aggregated into a table and plots.

``grid`` (cells as data), ``runner`` (in-process or subprocess executors), ``results`` (the
aggregate). ``python -m experiments.sweep`` is the command line.
"""

from experiments.sweep.grid import Grid, cells
from experiments.sweep.results import Run, SweepResult
from experiments.sweep.runner import InProcess, RunFailed, Subprocesses, run_sweep

__all__ = ['Grid', 'InProcess', 'Run', 'RunFailed', 'Subprocesses', 'SweepResult', 'cells', 'run_sweep']
