"""The reproduction report: the benchmarks as sweeps, the claims judged on them, ``docs/results.md``.

``python -m experiments.report [--quick] [--only=a,c] [--workdir=runs/report] [--output=docs/results.md]``

Every benchmark (:mod:`experiments.report.benchmarks`) is a sweep of an ordinary config, so any
cell can be rerun alone; finished runs are reused. ``--quick`` shrinks steps, seeds and grids
to check the pipeline end to end in minutes; its numbers mean nothing.
"""

import importlib
import json
import os
import shutil
import time

from absl import app, flags

from experiments.core.checks import set_fields
from experiments.report import benchmarks, claims, driver, figures, render
from experiments.run.training import run
from experiments.sweep import Subprocesses, run_sweep

_ONLY = flags.DEFINE_list('only', [], 'Sections to run (default all): ' + ','.join(benchmarks.TITLES))


def load_config(module: str, fields: dict):
  return set_fields(importlib.import_module(f'experiments.configs.{module}').get_config(), fields)


def run_benchmark(benchmark, quick: bool, workdir: str, jobs: int, *, seed_start=None, seeds=None, grid=None):
  fields = {**benchmark.fields(quick), **({} if seed_start is None else {'seed': seed_start})}
  return run_sweep(load_config(benchmark.config, fields), grid or benchmark.grid,
                   seeds=seeds or benchmark.seeds, workdir=workdir,
                   executor=Subprocesses(benchmark.config_file, fields, jobs))


def main(argv):
  del argv
  quick, jobs = driver.QUICK.value, driver.JOBS.value
  workdir, output = driver.paths('report', 'docs/results.md')
  only = set(_ONLY.value) or set(benchmarks.TITLES)
  started, results, alignment = time.perf_counter(), {}, None
  if 'a' in only:
    alignment = run(load_config('gradient_alignment', benchmarks.alignment_overrides(quick)),
                    os.path.join(workdir, 'alignment'))
    alignment['wall_s'] = time.perf_counter() - started
  chosen = {b.name: b for b in benchmarks.benchmarks(quick) if b.section in only}
  for benchmark in chosen.values():
    sweep_dir = os.path.join(workdir, benchmark.name)
    results[benchmark.name] = run_benchmark(benchmark, quick, sweep_dir, jobs)
  # Each d's best MI cell, picked on seed 0, is judged on seeds 1..: no best-of-many selection.
  for d, _ in benchmarks.mutual_information_pairs(quick) if 'd' in only else ():
    candidates = claims.mutual_information_benchmarks(chosen, d)
    name, cell = claims.best_mutual_information_cell(results, candidates)
    if chosen[name].seeds > 1:  # its sweep ran the seeds already
      results[f'mi{d}_confirmation'] = results[name].subset(cell, first_seed=1)
      continue
    results[f'mi{d}_confirmation'] = run_benchmark(
        chosen[name], quick, os.path.join(workdir, f'mi{d}_confirmation'), jobs, seed_start=1,
        seeds=benchmarks.CONFIRMATION_SEEDS, grid={k: [v] for k, v in cell.items()})
  verdicts = claims.judge(alignment, results)
  plots = {f'{name}/{os.path.basename(path)}': _publish(path, output, f'{name}_{os.path.basename(path)}')
           for name in results for path in _plots(os.path.join(workdir, name))}
  if alignment:
    plots['alignment'] = _publish(alignment['plot'], output, 'gradient_alignment.png')
  for section, path in figures.draw(results, os.path.join(workdir, 'figures')).items():
    plots[f'section/{section}'] = _publish(path, output, os.path.basename(path))
  with open(output, 'w') as f:
    f.write(render.report(verdicts, alignment, results, chosen, plots, quick=quick, jobs=jobs,
                          workdir=workdir))
  with open(os.path.join(os.path.dirname(os.path.abspath(output)), 'results', 'claims.json'), 'w') as f:
    json.dump(render.verdicts_as_data(verdicts), f, indent=2, default=str)
  total = sum(r.wall_s for r in results.values()) + (alignment['wall_s'] if alignment else 0.0)
  print(f'report: {output} ({time.perf_counter() - started:.0f} s now; {total:.0f} s of runs in all)')


def _plots(sweep_dir: str) -> list[str]:
  return [os.path.join(sweep_dir, png) for png in ('sweep_curves.png', 'sweep_vs_magnitude.png')
          if os.path.exists(os.path.join(sweep_dir, png))]


def _publish(path, output, name):
  """Copies a plot beside the report (run directories are not committed); returns its link."""
  target = os.path.join(os.path.dirname(os.path.abspath(output)), 'results', name)
  os.makedirs(os.path.dirname(target), exist_ok=True)
  shutil.copyfile(path, target)
  return f'results/{name}'


if __name__ == '__main__':
  app.run(main)
