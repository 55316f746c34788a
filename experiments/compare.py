"""Objectives side by side on the same task, seeds, steps and model: a table and a plot."""

import json
import os

import numpy as np

from experiments.likelihood import likelihood_table
from experiments.train import train_and_evaluate
from experiments.writers import markdown_table, mean_std, read_metrics


def run_comparison(config, workdir: str) -> str:
  """Runs every objective in ``config.compare`` for ``config.num_seeds`` seeds, each in
  ``workdir/<objective>/seed_<s>``; writes ``comparison.{md,json,png}`` and returns the table."""
  names = [n for n in config.compare.split(',') if n]
  seeds = range(config.seed, config.seed + config.num_seeds)
  runs = {}
  for name in names:
    for seed in seeds:
      run_config = config.copy_and_resolve_references()
      run_config.objective.name, run_config.seed, run_config.compare = name, seed, ''
      print(f'== {name} seed {seed}', flush=True)
      runs[name, seed] = train_and_evaluate(run_config, os.path.join(workdir, name, f'seed_{seed}'))

  first = runs[names[0], seeds[0]]
  metrics, truth = first['table_metrics'], first['truth']
  has_steps = 'steps_to_tolerance' in first
  header = ['objective'] + metrics + (['steps to tolerance'] if has_steps else []) + ['wall s']
  rows = [['truth'] + [mean_std([truth[m]]) if m in truth else '' for m in metrics]
          + ([''] if has_steps else []) + ['']]
  for name in names:
    summaries = [runs[name, s] for s in seeds]
    label = name + (f' (M={config.objective.magnitude:g})' if name == 'noisier_nce' else '')
    rows.append([label] + [mean_std([r['final'][m] for r in summaries]) for m in metrics]
                + ([mean_std([r['steps_to_tolerance'] for r in summaries])] if has_steps else [])
                + [f'{np.mean([r["wall_time_s"] for r in summaries]):.1f}'])
  note = (f'{config.task}, {len(seeds)} seed(s), {config.train.num_steps} steps, batch '
          f'{config.train.batch_size}; mean ± std over seeds')
  if has_steps:
    note += f'; steps to tolerance: first eval step after which {first["tolerance"]} holds'
  table = markdown_table(header, rows)
  table = f'{note}\n\n{table}\n'
  if first.get('likelihood'):
    table += '\n' + likelihood_table({name: [runs[name, s]['likelihood'] for s in seeds] for name in names})
  with open(os.path.join(workdir, 'comparison.md'), 'w') as f:
    f.write(table)
  with open(os.path.join(workdir, 'comparison.json'), 'w') as f:
    json.dump({f'{n}/seed_{s}': {k: v for k, v in r.items() if k != 'config'}
               for (n, s), r in runs.items()}, f, indent=2, default=str)
  _plot(workdir, names, seeds, metrics[0], truth.get(metrics[0]))
  return table


def _plot(workdir, names, seeds, metric, truth):
  import matplotlib
  matplotlib.use('Agg')
  from matplotlib import pyplot as plt
  fig, ax = plt.subplots(figsize=(6, 4))
  for name in names:
    curves = []
    for seed in seeds:
      records = [r for r in read_metrics(os.path.join(workdir, name, f'seed_{seed}'))
                 if f'eval_{metric}' in r]
      curves.append([r[f'eval_{metric}'] for r in records])
    steps = [r['step'] for r in records]
    mean, std = np.mean(curves, 0), np.std(curves, 0)
    line, = ax.plot(steps, mean, label=name)
    ax.fill_between(steps, mean - std, mean + std, color=line.get_color(), alpha=0.2)
  if truth is not None:
    ax.axhline(truth, color='k', ls='--', lw=1, label='truth')
  ax.set_xlabel('step')
  ax.set_ylabel(metric)
  ax.legend()
  fig.savefig(os.path.join(workdir, 'comparison.png'), dpi=100, bbox_inches='tight')
  plt.close(fig)
