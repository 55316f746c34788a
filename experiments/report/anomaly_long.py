"""Long DAMC runs on CPU: does the mechanism show in 20,000 iterations where 400 showed nothing?

``python -m experiments.report.anomaly_long [--stages=1,2] [--steps=20000] [--quick] [--jobs=2]``

The CPU-size model of ``experiments/configs/mnist_lebm.py`` trained by the DAMC reference's
iteration (``model.step=reference``: six amortiser updates on the conditional plus prior
loss, a target amortiser, MLE negatives from the chains' start, three Adams with betas
(0.5, 0.999), decay and a clip per network), batch 128, evaluated every 1,000 iterations:

- stage 1, digit 4: N²CE K = 3 with DAMC against short-run Langevin (chains from N(0, I));
- stage 2, digit 1: NCE against N²CE K = 3, both with DAMC.

One seed per run: the comparisons are stated as single runs, not findings. Runs are
resumable (``--steps`` more extends them); the page ``docs/anomaly_long.md`` has the curves of
AUPRC, the prior term's AUPRC, the reconstruction error and the chasm against iterations.
"""

import os
import re
import sys
import time
from concurrent import futures

import numpy as np
from absl import app, flags

from experiments.core import plotting, tables
from experiments.core.checks import ConfigError
from experiments.core.files import write_atomically
from experiments.core.metrics import read_metrics
from experiments.core.tables import markdown_table
from experiments.report import driver
from experiments.report.anomaly import PRIOR_LEARNINGS, QUICK_BANNER, SHORT_RUN, score_std
from experiments.report.study import Study
from experiments.sweep.grid import cell_dir
from experiments.tasks.common.published import PAPER_AUPRC

# The reference's iteration on the CPU-size model, at the reference's batch.
LONG = {'model.step': 'reference', 'model.negatives_from': 'posterior_start', 'train.batch_size': 128,
        'train.ema_decay': 0.0, 'train.eval_every': 1000, 'train.log_every': 500,
        'train.checkpoint_every': 1000,
        'train.steps_per_dispatch': 10, 'data.dataset': 'mnist5k'}
QUICK = {'train.eval_every': 10, 'train.log_every': 10, 'train.checkpoint_every': 10, 'data.num_test': 300,
         'model.posterior_steps': 5, 'model.prior_steps': 5, 'model.diffusion_steps': 5,
         'reference.amortizer_updates': 2}
_DAMC_K3 = PRIOR_LEARNINGS['noisier_nce_k3'][1]
# stage: (digit, question, {run: (label, fields)}, (a, b) of the verdict "a − b")
STAGES = {
    1: (4, 'does AUPRC climb with length, and does DAMC now beat short-run with posteriors that '
           'reconstruct better?',
        {'damc': ('N²CE K = 3, DAMC', _DAMC_K3),
         'short_run': ('N²CE K = 3, short-run', {**_DAMC_K3, **SHORT_RUN[1]})}, ('damc', 'short_run')),
    2: (1, "does the prior term's own AUPRC leave random, and do the objectives separate?",
        {'noisier_nce_k3': ('N²CE K = 3, DAMC', _DAMC_K3),
         'nce': ('NCE, DAMC', PRIOR_LEARNINGS['nce'][1])}, ('noisier_nce_k3', 'nce'))}
CURVES = (('auprc', 'AUPRC (average precision)'), ('auprc_prior', "the prior term's AUPRC"),
          ('auprc_reconstruction', "the reconstruction term's AUPRC"),
          ('test_mean_squared_error', 'test reconstruction MSE / pixel'), ('chasm_log_ratio', 'chasm (nats)'),
          ('chasm_accuracy', 'chasm accuracy'))

_STAGES = flags.DEFINE_list('stages', ['1', '2'], 'Stages to run: 1 (digit 4, DAMC vs short-run), '
                            '2 (digit 1, NCE vs N²CE).')
_STEPS = flags.DEFINE_integer('steps', 20000, 'Iterations per run (a finished run asked for more resumes).')
_RUNS = flags.DEFINE_list('runs', [], 'Train only these runs of the stages (damc, short_run, noisier_nce_k3, '
                          'nce; default all); the others show as far as they got.')
_RENDER_ONLY = flags.DEFINE_bool('render_only', False, 'Write the page from the evaluations logged so far, '
                                 'training nothing (runs still under way show as far as they got).')


def run_fields(stage: int, run: str, steps: int, quick: bool) -> dict:
  digit, _, runs, _ = STAGES[stage]
  return {**LONG, **runs[run][1], 'data.anomaly_digit': digit,
          'score.observation_std': score_std('mnist', digit),
          'train.num_steps': steps, **(QUICK if quick else {})}


def run_dir(workdir: str, stage: int, run: str) -> str:
  """Where :func:`train`'s sweep keeps a run (one cell, seed 0)."""
  return os.path.join(workdir, f'stage{stage}', run, cell_dir({}), 'seed_0')


def train(stage: int, steps: int, quick: bool, workdir: str) -> tuple[dict, float]:
  """``({run: run_dir}, seconds of runs)``: the stage's runs (those of ``--runs``), ``--jobs`` of
  them at a time."""
  runs = [run for run in STAGES[stage][2] if not _RUNS.value or run in _RUNS.value]

  def train_run(run: str):  # one sweep each: a run's fields differ by more than one grid axis
    study = Study(run, 'mnist_lebm', {}, 1, run_fields(stage, run, steps, quick))
    return study.run(False, os.path.join(workdir, f'stage{stage}'), 1)

  with futures.ThreadPoolExecutor(max_workers=driver.JOBS.value) as pool:
    results = dict(zip(runs, pool.map(train_run, runs)))
  assert all(result.runs[0].run_dir == run_dir(workdir, stage, run) for run, result in results.items())
  return ({run: run_dir(workdir, stage, run) for run in STAGES[stage][2]},
          sum(result.wall_s for result in results.values()))


def evaluations(path: str) -> list[dict]:
  """A run's evaluations so far, unprefixed (none for a run not started)."""
  if not os.path.exists(os.path.join(path, 'metrics.jsonl')):
    return []
  return [{k.removeprefix('eval_'): v for k, v in r.items()} for r in read_metrics(path) if 'eval_auprc' in r]


def run_seconds(workdir: str, stage: int) -> float:
  """Seconds the stage's runs have trained so far, from their own clocks (steps / steps per second)."""
  total = 0.0
  for run in STAGES[stage][2]:
    path = run_dir(workdir, stage, run)
    if os.path.exists(os.path.join(path, 'metrics.jsonl')):
      done = 0
      for row in (r for r in read_metrics(path) if 'train_steps_per_sec' in r):  # one per log_every
        total, done = total + (row['step'] - done) / row['train_steps_per_sec'], row['step']
  return total


def curves(stage: int, evals: dict, path: str) -> str:
  digit, _, runs, _ = STAGES[stage]
  figure, axes = plotting.panels(len(CURVES))
  for ax, (key, title) in zip(axes, CURVES):
    for run, rows in evals.items():
      ax.plot([r['step'] for r in rows], [r[key] for r in rows], 'o-', ms=3, label=runs[run][0])
    if key.startswith('auprc') and evals:
      plotting.reference(ax, next(iter(evals.values()))[0]['positive_rate'], 'random', ':', 'grey')
    plotting.label(ax, 'iteration', key, title=title)
  figure.suptitle(f'Stage {stage}: MNIST digit {digit} held out')
  return plotting.save(figure, path, legend_axes=[axes[0]])


def stage_section(stage: int, evals: dict, figure: str, steps: int, seconds: float) -> str:
  digit, question, runs, (a, b) = STAGES[stage]
  head = ['run', 'iterations', 'AUPRC (last)', 'AUPRC (validation-selected)', 'trapezoidal AUPRC (best test)',
          'prior AUPRC (last)', 'reconstruction AUPRC (last)', 'test MSE (last)', 'chasm (last)']
  rows = []
  for run, rows_of_run in evals.items():
    last = rows_of_run[-1]
    chosen = min(rows_of_run, key=lambda r: r['validation_reconstruction'])
    rows.append([runs[run][0], str(last['step']), f'{last["auprc"]:.3f}',
                 f'{chosen["auprc"]:.3f} (at {chosen["step"]})',
                 f'{max(r["auprc_trapezoid"] for r in rows_of_run):.3f}', f'{last["auprc_prior"]:.3f}',
                 f'{last["auprc_reconstruction"]:.3f}', f'{last["test_mean_squared_error"]:.4f}',
                 f'{last["chasm_log_ratio"]:.2f}'])
  paper = {name: PAPER_AUPRC[name].get(digit) for name in ('noisier_nce_k3', 'nce')}
  lines = [f'\n## Stage {stage}: digit {digit}\n', f'Question: {question}\n',
           f'`python -m experiments.report.anomaly_long --steps={steps} --stages={stage}`: its runs trained '
           f'for {seconds / 3600:.2f} h (the sum of their own clocks).\n',
           f'![stage {stage} curves]({figure})\n', markdown_table(head, rows),
           f'\nRandom AUPRC (prevalence): {next(iter(evals.values()))[0]["positive_rate"]:.3f}; the paper\'s '
           f'(test-selected, all of MNIST, the reference model): N²CE K = 3 {paper["noisier_nce_k3"]}, '
           f'NCE {paper["nce"]}.\n']
  if unfinished := [f'{runs[run][0]} at {rows_of_run[-1]["step"]:,}' for run, rows_of_run in evals.items()
                    if rows_of_run[-1]['step'] < steps]:
    lines.append(f'**Not finished** ({"; ".join(unfinished)} of {steps:,} iterations): rerun the command '
                 'to resume them; the comparison below is at their last common evaluation.\n')
  if a in evals and b in evals:
    common = sorted({r['step'] for r in evals[a]} & {r['step'] for r in evals[b]})
    if common:
      at = lambda run, step: next(r for r in evals[run] if r['step'] == step)  # noqa: E731
      end = common[-1]
      differences = {key: at(a, end)[key] - at(b, end)[key] for key in ('auprc', 'auprc_prior',
                                                                          'test_mean_squared_error')}
      trend = [at(a, s)['auprc'] - at(b, s)['auprc'] for s in common]
      lines.append(f'**{runs[a][0]} − {runs[b][0]}** at iteration {end} (one seed each: a single run, not a '
                   f'finding): AUPRC {differences["auprc"]:+.3f}, '
                   f'prior AUPRC {differences["auprc_prior"]:+.3f}, '
                   f'test MSE {differences["test_mean_squared_error"]:+.4f}; the AUPRC difference over the '
                   f'{len(common)} common evaluations: mean {np.mean(trend):+.3f}, positive at '
                   f'{sum(d > 0 for d in trend)} of {len(trend)}.\n')
  return '\n'.join(lines)


def kept_sections(page: str, stages: list[int]) -> dict[int, str]:
  """``{stage: section}`` of the stages of ``page`` not in ``stages``: a page rendered for some
  stages keeps the others as they were (their runs may live on another machine)."""
  numbered = {int(found.group(1)): section for title, section in tables.sections(page).items()
              if (found := re.match(r'Stage (\d+):', title))}
  return {stage: section for stage, section in numbered.items() if stage not in stages}


def main(argv):
  del argv
  quick = driver.QUICK.value
  workdir, output = driver.paths('anomaly_long', 'docs/anomaly_long.md')
  steps = 20 if quick else _STEPS.value
  if bad := [s for s in _STAGES.value if not s.isdigit() or int(s) not in STAGES]:
    sys.exit(f'Invalid flag: --stages={",".join(bad)} is invalid; allowed values: 1, 2')
  if bad := [r for r in _RUNS.value if not any(r in runs for _, _, runs, _ in STAGES.values())]:
    sys.exit(f'Invalid flag: --runs={",".join(bad)} is invalid; allowed values: damc, short_run, '
             'noisier_nce_k3, nce')
  if steps < 1:
    sys.exit(f'Invalid flag: --steps={steps} is invalid; it must be >= 1')
  started, wall = time.perf_counter(), 0.0
  stages = [int(s) for s in _STAGES.value]
  sections = {}
  if os.path.exists(output) and not quick:
    with open(output) as f:
      sections = kept_sections(f.read(), stages)
  figures = os.path.join(os.path.dirname(output), 'anomaly_long')
  os.makedirs(figures, exist_ok=True)
  for stage in stages:
    if _RENDER_ONLY.value:
      dirs = {run: run_dir(workdir, stage, run) for run in STAGES[stage][2]}
      seconds = run_seconds(workdir, stage)
    else:
      try:
        dirs, seconds = train(stage, steps, quick, workdir)
      except ConfigError as error:
        sys.exit(f'Invalid config: {error}')
    wall += seconds
    evals = {run: found for run, path in dirs.items() if (found := evaluations(path))}
    if not evals:
      sections[stage] = f'\n## Stage {stage}: digit {STAGES[stage][0]}\n\nNot run yet.\n'
      continue
    figure = curves(stage, evals, os.path.join(figures, f'stage{stage}.png'))
    sections[stage] = stage_section(stage, evals, os.path.relpath(figure, os.path.dirname(output)), steps,
                                    seconds)
  write_atomically(
      output, '# DAMC at length on CPU: 20,000 iterations of the reference\'s iteration\n\n'
      + (QUICK_BANNER + '\n\n' if quick else '')
      + 'Each stage is run and rendered on its own (`--stages=N`; the page keeps the other stages\' '
      'sections), on a 2-core CPU machine, one seed per run (finished runs are reused and extended).\n\n'
      + __doc__.split('\n\n', 2)[2]
      + ''.join(sections[stage] for stage in sorted(sections)))
  print(f'anomaly long report: {output} ({time.perf_counter() - started:.0f} s now; {wall:.0f} s of runs)')


if __name__ == '__main__':
  app.run(main)
