"""Runs a sweep: every cell x seed an ordinary run in ``W/<cell>/seed_<s>``, in this process
or as ``python -m experiments.main`` subprocesses, then the aggregate.

A finished run (``summary.json`` with the steps asked for) is reused, so rerunning a sweep
resumes it; every run's config is checked before the first one starts.
"""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time

from experiments.run.training import check_config
from experiments.run.workdir import DIVERGED_FILE, WorkdirConflict, differences, divergence, open_workdir
from experiments.sweep.grid import Grid, cell_config, cell_dir, cells, check_grid, flag_value
from experiments.sweep.results import Run, SweepResult, aggregate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class RunFailed(RuntimeError):
  """A run of the sweep exited with an error; its siblings were stopped."""


@dataclasses.dataclass
class InProcess:
  """Runs one after another in this process (the devices are this process's)."""

  def execute(self, pending: list[Run], log) -> None:
    import jax

    from experiments.run.training import run
    for i, item in enumerate(pending):
      lock = open_workdir(item.config, item.run_dir, num_devices=jax.device_count())
      try:
        log(f'== {cell_dir(item.cell)} seed {item.seed} ({i + 1}/{len(pending)})')
        run(item.config, item.run_dir)
      finally:
        lock.release()


@dataclasses.dataclass
class Subprocesses:
  """``jobs`` runs at a time, each ``python -m experiments.main --config=<config_file>`` with
  ``overrides`` (``{field: value}``), the cell's values and the seed as ``--config.*`` flags;
  its output goes to ``<run_dir>/log.txt``. A failing run stops its running siblings (SIGTERM:
  they save a checkpoint) and raises :class:`RunFailed` naming it; so does SIGTERM to this
  process, whose runs would otherwise go on orphaned and hold their work directories."""
  config_file: str
  overrides: dict = dataclasses.field(default_factory=dict)
  jobs: int = 1

  def command(self, item: Run) -> list[str]:
    values = {**self.overrides, **item.cell, 'seed': item.seed}
    return ([sys.executable, '-m', 'experiments.main', f'--config={self.config_file}']
            + [f'--config.{k}={flag_value(v)}' for k, v in values.items()] + [f'--workdir={item.run_dir}'])

  def execute(self, pending: list[Run], log) -> None:
    started, active, queue, finished = time.perf_counter(), [], list(pending), 0
    previous = None
    if threading.current_thread() is threading.main_thread():
      previous = signal.signal(signal.SIGTERM, _raise_stopped)
    try:
      while queue or active:
        while queue and len(active) < self.jobs:
          item = queue.pop(0)
          os.makedirs(item.run_dir, exist_ok=True)
          out = open(os.path.join(item.run_dir, 'log.txt'), 'w')
          active.append((subprocess.Popen(self.command(item), cwd=REPO, stdout=out, stderr=subprocess.STDOUT),
                         out, item))
        time.sleep(0.2)
        for entry in [a for a in active if a[0].poll() is not None]:
          process, out, item = entry
          out.close()
          active.remove(entry)
          if process.returncode != 0:
            raise RunFailed(f'run {item.run_dir} failed with exit code {process.returncode}: '
                            f'{_last_line(item.run_dir)} (whole log: {item.run_dir}/log.txt)')
          finished += 1
          elapsed = time.perf_counter() - started
          eta = (len(queue) + len(active)) * elapsed / finished  # runs left x observed rate
          log(f'sweep: {finished}/{len(pending)} runs done, {elapsed:.0f} s elapsed, ETA {eta:.0f} s '
              f'({item.run_dir})')
    finally:
      _stop(active, log)
      if previous is not None:
        signal.signal(signal.SIGTERM, previous)


class Stopped(RuntimeError):
  """The sweep got SIGTERM; its running runs were stopped (each saved a checkpoint)."""


def _raise_stopped(*_):
  raise Stopped('SIGTERM: the running runs were stopped and saved; rerun the sweep to resume')


def _stop(active, log) -> None:
  """SIGTERM to the runs still going (they checkpoint and exit 143), SIGKILL after 60 s."""
  for process, _, item in active:
    log(f'sweep: stopping {item.run_dir}')
    process.send_signal(signal.SIGTERM)
  for process, out, _ in active:
    try:
      process.wait(timeout=60)
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()
    out.close()


def _last_line(run_dir: str) -> str:
  with open(os.path.join(run_dir, 'log.txt'), errors='replace') as f:
    lines = [line.strip() for line in f if line.strip()]
  return lines[-1] if lines else '(no output)'


def run_sweep(config, grid: Grid, *, seeds: int, workdir: str, executor, log=print) -> SweepResult:
  """Runs every cell of ``grid`` x seeds ``config.seed .. config.seed + seeds - 1`` not yet
  finished (a finished run asked for more steps resumes) and returns the aggregate."""
  import jax
  check_grid(config, grid)
  runs = []
  for cell in cells(grid):
    for seed in range(config.seed, config.seed + seeds):
      run_config = cell_config(config, cell, seed)
      run_dir = os.path.join(workdir, cell_dir(cell), f'seed_{seed}')
      check_config(run_config, jax.device_count())  # all, before any run
      if diff := differences(run_dir, run_config):  # a finished run of another config is no reuse
        raise WorkdirConflict(f'{run_dir} holds a run of another config ({"; ".join(diff[:4])}); '
                              'sweep into another --workdir')
      runs.append(Run(cell, seed, run_dir, {}, run_config))
  os.makedirs(workdir, exist_ok=True)
  # A run of the same config that diverged diverges again: reported below, not rerun.
  pending = [r for r in runs
             if _steps_done(r.run_dir) < r.config.train.num_steps and not divergence(r.run_dir)]
  log(f'sweep: {len(runs) // seeds} cells x {seeds} seeds = {len(runs)} runs, '
      f'{len(runs) - len(pending)} done')
  started = time.perf_counter()
  executor.execute(pending, log)
  for run in runs:
    if (message := divergence(run.run_dir)) and _steps_done(run.run_dir) < run.config.train.num_steps:
      raise RunFailed(f'run {run.run_dir} diverged before ({DIVERGED_FILE}; delete it to run again): '
                      f'Diverged: {message} (whole log: {run.run_dir}/log.txt)')
  for run in runs:
    with open(os.path.join(run.run_dir, 'summary.json')) as f:
      run.summary = {**json.load(f), 'run_dir': run.run_dir}
  result = aggregate(runs, workdir)
  result.wall_s, result.wall_measured = _wall_time(workdir, time.perf_counter() - started if pending else 0.0,
                                                   result, getattr(executor, 'jobs', 1))
  return result


def _steps_done(run_dir) -> int:
  path = os.path.join(run_dir, 'summary.json')
  if not os.path.exists(path):
    return 0
  with open(path) as f:
    return json.load(f)['steps']


def _wall_time(workdir, seconds, result, jobs) -> tuple[float, bool]:
  """Seconds this sweep's runs have cost, summed over invocations in ``W/timing.json``, so a
  regenerated report still knows; a sweep finished before timing was kept falls back to the
  runs' own clocks summed and divided by ``jobs`` (returns ``measured=False``)."""
  path = os.path.join(workdir, 'timing.json')
  if not os.path.exists(path) and not seconds:
    return sum(r.summary['wall_time_s'] for r in result.runs) / jobs, False
  total = seconds
  if os.path.exists(path):
    with open(path) as f:
      total += json.load(f)['wall_s']
  with open(path, 'w') as f:
    json.dump({'wall_s': total}, f)
  return total, True
