"""Few-step samplers fine-tuned by DxMI with each energy loss, against the teacher they are cut from.

``python -m experiments.report.samplers [--quick] [--datasets=8gaussians,checkerboard]
[--num_steps=4,10] [--losses=dxmi,nce,noisier_nce] [--seeds=5]``

For each dataset the teacher DDPM is trained once (``ddpm_toy2d.py``), then for each ``T`` the
``T``-step sampler cut from it is fine-tuned with each energy loss on the same seeds and
iterations (``dxmi_toy2d.py``). Each run is an ordinary run of ``experiments.main``; finished
runs are reused. Writes docs/samplers.md: the teacher before fine-tuning, each loss at
the end and at its best evaluation, iterations to two thresholds (the teacher's 100-step
quality, the paper's bar, and halfway to it), the paired comparisons that judge the claim, the
curves and the samples.
"""

import os
import shutil
import sys
import time

import numpy as np
from absl import app, flags

from experiments.configs import ddpm_toy2d, dxmi_toy2d
from experiments.core import plotting
from experiments.core.checks import ConfigError, parse_overrides, set_fields
from experiments.core.metrics import read_metrics
from experiments.core.tables import markdown_table, mean_std
from experiments.report import driver, statistics
from experiments.sweep import Subprocesses, run_sweep
from experiments.sweep.grid import flag_value
from experiments.tasks.dxmi_toy2d import THRESHOLD_STEPS
from nnce_jax import dxmi
from nnce_jax.data import toy2d

_DATASETS = flags.DEFINE_list('datasets', ['8gaussians', 'checkerboard'], 'Toy densities.')
_NUM_STEPS = flags.DEFINE_list('num_steps', ['4', '10'], 'Sampler steps T, each >= 1.')
_LOSSES = flags.DEFINE_list('losses', ['dxmi', 'nce', 'noisier_nce'], 'Energy losses compared.')
_SEEDS = flags.DEFINE_integer('seeds', 5, 'Seeds per cell.')
_OVERRIDES = flags.DEFINE_multi_string('override', [], '--override=FIELD=VALUE for every fine-tuning run.')

TEACHER_CONFIG, CONFIG = 'experiments/configs/ddpm_toy2d.py', 'experiments/configs/dxmi_toy2d.py'
NAMES = {'dxmi': 'DxMI', 'nce': 'NCE', 'noisier_nce': 'N²CE', 'nwj': 'NWJ'}
METRIC = 'sliced_w2'  # judged on, lower is better
QUICK_TEACHER = {'train.num_steps': 200, 'train.eval_every': 200, 'train.log_every': 100,
                 'train.checkpoint_every': 200, 'data.num_test': 500, 'teacher.num_eval_samples': 500}
QUICK = {'train.num_steps': 20, 'train.steps_per_dispatch': 10, 'train.sync_every': 10,
         'train.eval_every': 10, 'train.log_every': 10, 'train.checkpoint_every': 20, 'data.num_test': 500}


def chosen(quick: bool) -> tuple[list[str], list[int], list[str]]:
  if bad := [d for d in _DATASETS.value if d not in toy2d.DATASETS]:
    raise ConfigError(f'--datasets={",".join(bad)} is invalid; allowed values: {", ".join(toy2d.DATASETS)}')
  if bad := [t for t in _NUM_STEPS.value if not t.isdigit() or int(t) < 1]:
    raise ConfigError(f'--num_steps={",".join(bad)} is invalid; each must be an integer >= 1')
  if bad := [loss for loss in _LOSSES.value if loss not in dxmi.ENERGY_LOSSES]:
    raise ConfigError(f'--losses={",".join(bad)} is invalid; allowed values: {", ".join(dxmi.ENERGY_LOSSES)}')
  datasets, steps = list(_DATASETS.value), sorted(int(t) for t in _NUM_STEPS.value)
  return (datasets[:1], steps[:1], list(_LOSSES.value)) if quick else (datasets, steps, list(_LOSSES.value))


def train_teacher(dataset, workdir, quick) -> tuple[str, float]:
  fields = {'data.dataset': dataset, **(QUICK_TEACHER if quick else {})}
  result = run_sweep(set_fields(ddpm_toy2d.get_config(), fields), {}, seeds=1, workdir=workdir,
                     executor=Subprocesses(TEACHER_CONFIG, fields, 1))
  return result.runs[0].run_dir, result.wall_s


def fine_tune(dataset, steps, teacher_dir, losses, seeds, workdir, overrides):
  fields = {**overrides, 'data.dataset': dataset, 'teacher.workdir': os.path.abspath(teacher_dir),
            'sampler.num_steps': steps}
  result = run_sweep(set_fields(dxmi_toy2d.get_config(), fields), {'energy.loss': losses}, seeds=seeds,
                     workdir=workdir, executor=Subprocesses(CONFIG, fields, driver.JOBS.value))
  return {loss: [_curve(s) for s in result.cell(loss=loss)] for loss in losses}, result.wall_s


def _curve(summary: dict) -> dict:
  """A run's evaluations as arrays, its truth and its samples' plot."""
  evals = [r for r in read_metrics(summary['run_dir']) if f'eval_{METRIC}' in r]
  return {'step': np.array([r['step'] for r in evals]),
          **{key: np.array([r[f'eval_{key}'] for r in evals])
             for key in ('sliced_w2', 'mmd', 'energy_auroc')},
          'modes': np.array([r.get('eval_modes_covered', np.nan) for r in evals]),
          'truth': summary['truth'], 'png': summary.get('samples_png'), 'budget': summary['steps']}


def thresholds(truth: dict) -> dict:
  """``{name: value}``: the teacher's 100-step quality (the paper's bar) and halfway to it."""
  start, bar = truth[f'teacher_{METRIC}'], truth[f'teacher_{THRESHOLD_STEPS}_step_{METRIC}']
  return {f'teacher {THRESHOLD_STEPS}-step': bar, 'halfway': (start + bar) / 2}


def iterations_to(curve: dict, threshold: float) -> int | None:
  """The first evaluated iteration at or below ``threshold``; None if none is."""
  hits = np.flatnonzero(curve[METRIC] <= threshold)
  return int(curve['step'][hits[0]]) if hits.size else None


def censored(value: int | None, budget: int) -> float:
  """Iterations to a threshold, a run that never reached it counted at twice the budget: every
  such run ranks behind every run that did, and the paired difference stays finite."""
  return float(2 * budget if value is None else value)


def verdict(interval: statistics.Interval, reached: dict) -> str:
  """What the paired iterations-to-threshold say about "N²CE gets there in fewer iterations"."""
  if not any(reached.values()):
    return 'inconclusive: no loss reaches it within the budget'
  return {-1: 'reproduced', 1: 'refuted', 0: 'inconclusive: the interval holds 0'}[interval.sign]


def section(dataset, steps, curves, figures_dir) -> tuple[str, list[dict]]:
  losses = list(curves)
  truth = curves[losses[0]][0]['truth']
  budget = curves[losses[0]][0]['budget']
  bars = thresholds(truth)
  lines = [f'\n## {dataset}, T = {steps}\n']
  head = (['sampler', 'sliced W2 (end)', 'best sliced W2', 'MMD (end)', 'modes (end)', 'energy AUROC (end)']
          + [f'iterations to ≤ {value:.3f} ({name})' for name, value in bars.items()])
  blank = [''] * len(bars)
  rows = [[f'teacher, {steps} steps (before)', f'{truth[f"teacher_{METRIC}"]:.4f}', '',
           f'{truth["teacher_mmd"]:.4f}', str(truth.get('teacher_modes_covered', '–')), ''] + blank]
  for loss in losses:
    runs = curves[loss]
    rows.append([f'{NAMES[loss]}, fine-tuned', mean_std([r[METRIC][-1] for r in runs]),
                 mean_std([float(np.min(r[METRIC])) for r in runs])]
                + [mean_std([r[k][-1] for r in runs]) for k in ('mmd', 'modes', 'energy_auroc')]
                + [mean_std([iterations_to(r, value) for r in runs]) for value in bars.values()])
  rest = [''] * (len(head) - 2)
  hundred = truth[f'teacher_{THRESHOLD_STEPS}_step_{METRIC}']
  rows += [[f'teacher, {THRESHOLD_STEPS} steps', f'{hundred:.4f}'] + rest,
           ['two held-out samples (floor)', f'{truth[f"data_floor_{METRIC}"]:.4f}'] + rest]
  lines += [f'Mean ± std over {len(curves[losses[0]])} seeds after {budget} iterations; "best" is the '
            'lowest evaluation of each run (read off the test points, so an optimistic figure).\n',
            markdown_table(head, rows)]
  claims, comparison_rows = [], []
  if 'noisier_nce' in curves:
    for other in [loss for loss in losses if loss != 'noisier_nce']:
      for name, value in bars.items():
        a = [censored(iterations_to(r, value), budget) for r in curves['noisier_nce']]
        b = [censored(iterations_to(r, value), budget) for r in curves[other]]
        interval = statistics.paired(a, b)
        reached = {loss: sum(iterations_to(r, value) is not None for r in curves[loss])
                   for loss in ('noisier_nce', other)}
        judged = verdict(interval, reached)
        comparison_rows.append([f'N²CE − {NAMES[other]}', f'iterations to {name}', str(interval),
                                f'{reached["noisier_nce"]} / {reached[other]}', judged])
        if name.startswith('teacher') and other == 'dxmi':
          claims.append({'dataset': dataset, 'steps': steps, 'verdict': judged, 'interval': str(interval)})
      a, b = [r[METRIC][-1] for r in curves['noisier_nce']], [r[METRIC][-1] for r in curves[other]]
      comparison_rows.append([f'N²CE − {NAMES[other]}', 'sliced W2 at the end', str(statistics.paired(a, b)),
                              '', f'p = {statistics.paired_p_value(a, b):.3g}'])
    lines += ['\n### Paired comparisons (seed by seed; t interval)\n',
              'Iterations to a threshold count a run that never reached it at twice the budget; '
              '"reached" gives the seeds that did (N²CE / the other).\n',
              markdown_table(['comparison', 'on', 'mean difference [95% CI]', 'reached', 'verdict / p'],
                             comparison_rows)]
  lines += [f'\n![sliced W2 against iteration]({plot_curves(dataset, steps, curves, bars, figures_dir)})\n']
  for loss in losses:
    png = curves[loss][0]['png']
    if png and os.path.exists(png):
      target = os.path.join(figures_dir, f'{dataset}_T{steps}_{loss}_samples.png')
      shutil.copyfile(png, target)
      lines.append(f'![{NAMES[loss]}, seed 0]({os.path.relpath(target, os.path.dirname(figures_dir))})')
  return '\n'.join(lines) + '\n', claims


def plot_curves(dataset, steps, curves, bars, figures_dir) -> str:
  figure, (ax,) = plotting.panels(1, width=6.0, height=4.0)
  truth = next(iter(curves.values()))[0]['truth']
  for loss, runs in curves.items():
    x = np.concatenate([[0], runs[0]['step']])
    plotting.seed_band(ax, x, [np.concatenate([[truth[f'teacher_{METRIC}']], r[METRIC]]) for r in runs],
                       NAMES[loss])
  for (name, value), style in zip(bars.items(), ('--', ':')):
    plotting.reference(ax, value, name, style)
  plotting.reference(ax, truth[f'data_floor_{METRIC}'], 'floor (two held-out samples)', '-.', 'grey')
  plotting.label(ax, 'iteration', 'sliced W2 to held-out data', title=f'{dataset}, T = {steps}', log_y=True)
  path = os.path.join(figures_dir, f'{dataset}_T{steps}_curves.png')
  plotting.save(figure, path)
  return os.path.relpath(path, os.path.dirname(figures_dir))


def main(argv):
  del argv
  quick = driver.QUICK.value
  workdir, output = driver.paths('samplers', 'docs/samplers.md')
  seeds = 2 if quick else _SEEDS.value
  try:
    overrides = {**parse_overrides(dxmi_toy2d.get_config(), _OVERRIDES.value), **(QUICK if quick else {})}
    datasets, all_steps, losses = chosen(quick)
  except ConfigError as error:
    sys.exit(f'Invalid flag: {error}')
  figures_dir = os.path.join(os.path.dirname(output) or '.', 'samplers')
  os.makedirs(figures_dir, exist_ok=True)
  started, wall, sections, claims = time.perf_counter(), 0.0, [], []
  try:
    teachers = {}
    for dataset in datasets:
      teachers[dataset], seconds = train_teacher(dataset, os.path.join(workdir, dataset, 'teacher'), quick)
      wall += seconds
    for steps in all_steps:  # every dataset at the smallest T first: the cheapest runs
      for dataset in datasets:
        curves, seconds = fine_tune(dataset, steps, teachers[dataset], losses, seeds,
                                    os.path.join(workdir, dataset, f'T{steps}'), overrides)
        wall += seconds
        text, found = section(dataset, steps, curves, figures_dir)
        sections.append(text)
        claims += found
  except ConfigError as error:
    sys.exit(f'Invalid setting: {error}')
  command = 'python -m experiments.report.samplers' + (' --quick' if quick else '') + ''.join(
      f' --override={field}={flag_value(value)}' for field, value in overrides.items() if field not in QUICK)
  for flag in (_DATASETS, _NUM_STEPS, _LOSSES):
    if flag.value != flag.default:
      command += f' --{flag.name}=' + ','.join(flag.value)
  with open(output, 'w') as f:
    num_test = overrides.get('data.num_test', dxmi_toy2d.get_config().data.num_test)
    f.write(header(command, wall, seeds, quick, claims, num_test) + ''.join(sections))
  print(f'samplers report: {output} ({time.perf_counter() - started:.0f} s now; {wall:.0f} s of runs)')


def header(command, wall, seeds, quick, claims, num_test) -> str:
  summary = [[c['dataset'], str(c['steps']), c['interval'], c['verdict']] for c in claims]
  return ('# DxMI few-step samplers: teacher vs DxMI\'s energy vs NCE vs N²CE (2-D)\n\n'
          + ('**Quick mode: pipeline check only, the numbers mean nothing.**\n\n' if quick else '')
          + f'`{command}`: its runs took {wall / 60:.1f} min on a 2-core CPU machine, {seeds} seeds per '
          'cell, 2 runs at a time (finished runs are reused). Config: `experiments/configs/dxmi_toy2d.py` '
          '(the reference\'s CIFAR-10 setting: one time-independent network is the energy and every '
          'value); teacher: `experiments/configs/ddpm_toy2d.py`, one per dataset, shared by every '
          f'seed. Sliced W2 (100 projections) and MMD of {num_test:,} samples to as many held-out '
          'points.\n\n'
          f'**The claim** (N²CE reaches the teacher\'s {THRESHOLD_STEPS}-step quality in fewer '
          'iterations than DxMI\'s own energy loss), judged by the paired iterations to that '
          'threshold: reproduced if the 95% interval of N²CE − DxMI lies below 0, refuted if above, '
          'inconclusive otherwise.\n\n'
          + markdown_table(['dataset', 'T', 'N²CE − DxMI, iterations [95% CI]', 'verdict'], summary) + '\n')


if __name__ == '__main__':
  app.run(main)
