"""The sweep: grid cells x seeds as subprocess runs, progress, and the aggregate table."""

import csv
import dataclasses
import itertools
import json
import os
import subprocess
import sys
import time

import numpy as np

from experiments.config_checks import ConfigError, check_config, parse_value, set_field
from experiments.workdir import WorkdirConflict, differences
from experiments.writers import markdown_table, mean_std

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass
class SweepResult:
  """The aggregate (markdown) and every run's summary, keyed by cell: a tuple of
  ``(field, value)`` pairs in grid order."""
  table: str
  cells: dict[tuple, list[dict]]
  wall_s: float = 0.0  # seconds spent running this sweep's runs, summed over invocations
  wall_measured: bool = True  # False: estimated from the runs' own clocks (see _wall_time)

  def select(self, **fixed) -> dict[tuple, list[dict]]:
    """The cells whose fields (named by their last component: ``magnitude=10``) hold
    ``fixed``, keyed by ``((name, value), ...)``."""
    out = {}
    for key, summaries in self.cells.items():
      named = tuple((f.split('.')[-1], v) for f, v in key)
      if all(dict(named).get(k) == v for k, v in fixed.items()):
        out[named] = summaries
    return out

  def cell(self, **values) -> list[dict]:
    """The summaries of the one cell that :meth:`select` finds for ``values``."""
    found = self.select(**values)
    if len(found) != 1:
      raise KeyError(f'{len(found)} cells match {values}')
    return next(iter(found.values()))


def parse_grid(config, grid: list[str]) -> list[tuple[str, list]]:
  """``['objective.magnitude=1,10']`` -> ``[('objective.magnitude', [1.0, 10.0])]``, each value
  converted to the type the config holds; unknown fields fail naming the field."""
  axes = []
  for item in grid:
    field, sep, values = item.partition('=')
    if not sep or not values:
      raise ConfigError(f'--grid={item!r} is invalid; expected FIELD=V1,V2,...')
    axes.append((field, [parse_value(config, field, v) for v in values.split(',')]))
  return axes


def cell_name(assignment: dict) -> str:
  return ','.join(f'{k.split(".")[-1]}={v:g}' if isinstance(v, float) else f'{k.split(".")[-1]}={v}'
                  for k, v in assignment.items()) or 'base'


def cell_config(config, assignment: dict, seed: int):
  c = config.copy_and_resolve_references()
  for field, value in assignment.items():
    set_field(c, field, value)
  c.seed, c.compare = seed, ''
  return c


def run_sweep(config, config_file, grid, *, seeds, workdir, jobs=1, overrides=(), log=print):
  """Runs every cell x seed not yet finished (or finished with fewer steps than asked: those
  resume); returns the aggregate."""
  import jax
  axes = parse_grid(config, grid)
  cells = [dict(zip([f for f, _ in axes], values)) for values in itertools.product(*[v for _, v in axes])]
  runs = []
  for assignment in cells:
    for seed in range(config.seed, config.seed + seeds):
      run_config, run_dir = cell_config(config, assignment, seed), os.path.join(
          workdir, cell_name(assignment), f'seed_{seed}')
      check_config(run_config, jax.local_device_count())  # all, before any run
      if diff := differences(run_dir, run_config):  # a finished run of another config is no reuse
        raise WorkdirConflict(f'{run_dir} holds a run of another config ({"; ".join(diff[:4])}); '
                              'sweep into another --workdir')
      runs.append((assignment, seed, run_dir))
  os.makedirs(workdir, exist_ok=True)
  # A finished run asked for more steps resumes from its last checkpoint.
  pending = [r for r in runs if _steps_done(r[2]) < config.train.num_steps]
  log(f'sweep: {len(cells)} cells x {seeds} seeds = {len(runs)} runs, {len(runs) - len(pending)} done')
  started = time.perf_counter()
  _execute(pending, config_file, overrides, jobs, len(runs) - len(pending), len(runs), log)
  result = aggregate(runs, axes, workdir)
  result.wall_s, result.wall_measured = _wall_time(workdir, time.perf_counter() - started if pending else 0.0,
                                                   result, jobs)
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
    clocks = sum(s['wall_time_s'] for group in result.cells.values() for s in group)
    return clocks / jobs, False
  total = seconds
  if os.path.exists(path):
    with open(path) as f:
      total += json.load(f)['wall_s']
  with open(path, 'w') as f:
    json.dump({'wall_s': total}, f)
  return total, True


def _command(config_file, overrides, assignment, seed, run_dir):
  return ([sys.executable, '-m', 'experiments.main', f'--config={config_file}', *overrides]
          + [f'--config.{k}={v}' for k, v in assignment.items()]
          + [f'--config.seed={seed}', '--config.compare=', f'--workdir={run_dir}'])


def _execute(pending, config_file, overrides, jobs, done, total, log):
  started, active, queue = time.perf_counter(), [], list(pending)
  finished_here = 0
  while queue or active:
    while queue and len(active) < jobs:
      assignment, seed, run_dir = queue.pop(0)
      os.makedirs(run_dir, exist_ok=True)
      out = open(os.path.join(run_dir, 'log.txt'), 'w')
      process = subprocess.Popen(_command(config_file, overrides, assignment, seed, run_dir),
                                 cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
      active.append((process, out, run_dir))
    time.sleep(0.2)
    for entry in [a for a in active if a[0].poll() is not None]:
      process, out, run_dir = entry
      out.close()
      active.remove(entry)
      if process.returncode != 0:
        raise RuntimeError(f'run {run_dir} failed with exit code {process.returncode}; '
                           f'see {run_dir}/log.txt')
      finished_here += 1
      elapsed = time.perf_counter() - started
      eta = (len(queue) + len(active)) * elapsed / finished_here  # runs left x observed rate
      log(f'sweep: {done + finished_here}/{total} runs done, {elapsed:.0f} s elapsed, '
          f'ETA {eta:.0f} s ({run_dir})')


def aggregate(runs, axes, workdir) -> SweepResult:
  """Writes ``sweep.csv``, ``sweep.md`` and the plots."""
  summaries = []
  for assignment, seed, run_dir in runs:
    with open(os.path.join(run_dir, 'summary.json')) as f:
      summaries.append((assignment, seed, run_dir, {**json.load(f), 'run_dir': run_dir}))
  metrics = summaries[0][3]['table_metrics']
  has_steps = 'steps_to_tolerance' in summaries[0][3]
  fields = [f for f, _ in axes]
  with open(os.path.join(workdir, 'sweep.csv'), 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(fields + ['seed'] + metrics + (['steps_to_tolerance'] if has_steps else [])
                    + ['wall_time_s'])
    for assignment, seed, _, s in summaries:
      writer.writerow([assignment[k] for k in fields] + [seed] + [s['final'][m] for m in metrics]
                      + ([s['steps_to_tolerance']] if has_steps else []) + [f'{s["wall_time_s"]:.2f}'])

  short = [f.split('.')[-1] for f in fields]
  header = ([f if short.count(s) > 1 else s for f, s in zip(fields, short)] + metrics
            + (['steps to tolerance'] if has_steps else []) + ['wall s'])
  truth = summaries[0][3]['truth']
  rows = [['truth'] + [''] * (len(fields) - 1) + [f'{truth[m]:.4g}' if m in truth else '' for m in metrics]
          + ([''] if has_steps else []) + ['']] if fields else []
  cells = {}
  for entry in summaries:
    cells.setdefault(tuple(entry[0].items()), []).append(entry[3])
  for key, group in cells.items():
    rows.append([str(v) for _, v in key] + [mean_std([s['final'][m] for s in group]) for m in metrics]
                + ([mean_std([s['steps_to_tolerance'] for s in group])] if has_steps else [])
                + [f'{np.mean([s["wall_time_s"] for s in group]):.1f}'])
  seeds = len(next(iter(cells.values())))
  table = markdown_table(header, rows)
  table = (f'{summaries[0][3]["task"]}: {len(cells)} cells x {seeds} seeds, mean ± std over seeds\n\n'
           + table + '\n')
  with open(os.path.join(workdir, 'sweep.md'), 'w') as f:
    f.write(table)
  _plot_curves(cells, summaries, metrics[0], workdir)
  if 'objective.magnitude' in fields:
    _plot_against_magnitude(cells, fields, metrics, workdir)
  return SweepResult(table, cells)


def _plot_curves(cells, summaries, metric, workdir):
  import matplotlib
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt

  from experiments.writers import read_metrics
  fig, ax = plt.subplots(figsize=(6, 4))
  for key in cells:
    curves, steps = [], None
    for assignment, _, run_dir, _ in summaries:
      if tuple(assignment.items()) == key:
        records = [r for r in read_metrics(run_dir) if f'eval_{metric}' in r]
        curves.append([r[f'eval_{metric}'] for r in records])
        steps = [r['step'] for r in records]
    length = min(len(c) for c in curves)
    mean = np.mean([c[:length] for c in curves], 0)
    ax.plot(steps[:length], mean, label=', '.join(f'{k.split(".")[-1]}={v}' for k, v in key))
  ax.set_xlabel('step')
  ax.set_ylabel(metric)
  if len(cells) <= 12:
    ax.legend(fontsize=7)
  fig.savefig(os.path.join(workdir, 'sweep_curves.png'), dpi=100, bbox_inches='tight')
  plt.close(fig)


def _plot_against_magnitude(cells, fields, metrics, workdir):
  import matplotlib
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt
  fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.6), squeeze=False)
  others = {}
  for key, group in cells.items():
    assignment = dict(key)
    label = ', '.join(f'{k.split(".")[-1]}={v}' for k, v in key if k != 'objective.magnitude') or 'M'
    others.setdefault(label, []).append((assignment['objective.magnitude'], group))
  for ax, metric in zip(axes[0], metrics):
    for label, points in others.items():
      points.sort(key=lambda p: p[0])
      values = [[s['final'][metric] for s in g] for _, g in points]
      ax.errorbar([m for m, _ in points], [np.mean(v) for v in values], yerr=[np.std(v) for v in values],
                  marker='o', capsize=3, label=label)
    ax.set_xscale('log')
    ax.set_xlabel('M')
    ax.set_ylabel(metric)
  axes[0][-1].legend(fontsize=7)
  fig.savefig(os.path.join(workdir, 'sweep_vs_magnitude.png'), dpi=100, bbox_inches='tight')
  plt.close(fig)
