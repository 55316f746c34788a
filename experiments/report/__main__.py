"""The reproduction report: the benchmarks as sweeps, the claims judged on them, ``docs/results.md``.

``python -m experiments.report [--quick] [--only=a,c] [--workdir=runs/report] [--output=docs/results.md]``

Every study (:mod:`experiments.report.benchmarks`) is a sweep of an ordinary config, so any
cell can be rerun alone; finished runs are reused. ``--quick`` shrinks steps, seeds and grids
to check the pipeline end to end in minutes; its numbers mean nothing.
"""

import json
import os
import shutil
import time

from absl import app, flags

from experiments.configs import gradient_alignment
from experiments.core.checks import set_fields
from experiments.report import benchmarks, claims, driver, figures, render
from experiments.report.study import Study, restrict, run_all
from experiments.run.training import run

_ONLY = flags.DEFINE_list('only', [], 'Sections to run (default all): ' + ','.join(benchmarks.TITLES))


def main(argv):
  del argv
  quick, jobs = driver.QUICK.value, driver.JOBS.value
  workdir, output = driver.paths('report', 'docs/results.md')
  only = set(_ONLY.value) or set(benchmarks.TITLES)
  started, alignment = time.perf_counter(), None
  if 'a' in only:
    config = set_fields(gradient_alignment.get_config(), benchmarks.alignment_overrides(quick))
    alignment = run(config, os.path.join(workdir, 'alignment'))
    alignment['wall_s'] = time.perf_counter() - started
  results = run_all([s for s in benchmarks.studies(quick) if s.section in only], quick, workdir, jobs)
  # Each d's best MI cell, picked on seed 0, is judged on seeds 1..: no best-of-many selection.
  for group in (benchmarks.MI_STUDIES[:1] if quick else benchmarks.MI_STUDIES) if 'd' in only else ():
    ran = [s for s in group.studies(quick) if s in results]
    study, cell = claims.best_mutual_information_cell(results, ran)
    if study.seeds_for(quick) > 1:  # its sweep ran the seeds already
      results[group] = results[study].subset(cell, first_seed=1)
    else:
      confirmation = restrict(study, cell, 1, benchmarks.CONFIRMATION_SEEDS,
                              f'{group.baselines.name}_confirmation')
      results[group] = confirmation.run(quick, workdir, jobs)
  verdicts = claims.judge(alignment, results)
  studies = [s for s in results if isinstance(s, Study)]
  plots = {f'{s.name}/{os.path.basename(path)}': _publish(path, output, f'{s.name}_{os.path.basename(path)}')
           for s in studies for path in _plots(os.path.join(workdir, s.name))}
  if alignment:
    plots['alignment'] = _publish(alignment['plot'], output, 'gradient_alignment.png')
  for section, path in figures.draw(results, os.path.join(workdir, 'figures')).items():
    plots[f'section/{section}'] = _publish(path, output, os.path.basename(path))
  with open(output, 'w') as f:
    f.write(render.report(verdicts, alignment, results, plots, quick=quick, jobs=jobs, workdir=workdir))
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
