"""One-step samplers by score identity distillation: SiD alone, with SiD²A's adversarial loss,
with NCE (M = 1) and with N²CE (M = 50) on real data, against the teacher they distil.

``python -m experiments.report.one_step [--quick] [--datasets=8gaussians,checkerboard,mnist5k,fashion_mnist]
[--seeds=5] [--image_seeds=3] [--override=FIELD=VALUE] [--image_override=FIELD=VALUE]``

For each dataset the teacher DDPM is trained once in the shared ``--teachers`` directory
(``ddpm_toy2d.py`` for 2-D densities, ``ddpm_images.py`` for 28x28 images), then the four variants
of ``sid_toy2d.py`` / ``sid_images.py`` run on the same seeds and iterations. Each run is an ordinary run
of ``experiments.main``; finished runs are reused. Writes docs/sid.md: each variant at the end,
the teacher's cut samplers at 1, 4, 10 and 100 steps as reference rows, the curves, the
samples and the paired verdicts on the paper's two claims:

(a) SiD + N²CE ends better than SiD + NCE and than the adversarial variant (two paired
    intervals of the final sliced W2, or Fréchet distance on images, Bonferroni-adjusted to 95%
    together);
(b) it reaches the adversarial variant's final quality in at most half the iterations
    (the paired interval of ``iterations(N²CE) - iterations(adversarial) / 2``).

A one-step generator's quality moves from evaluation to evaluation, so "final" is the mean of
the last ``WINDOW`` evaluations and a run "reaches" a value when that trailing mean first does.
"""

import dataclasses
import os
import shutil
import sys
import time

import numpy as np
from absl import app, flags

from experiments.configs import sid_images, sid_toy2d
from experiments.core import plotting
from experiments.core.checks import ConfigError, parse_overrides
from experiments.core.metrics import read_metrics
from experiments.core.tables import markdown_table, mean_std
from experiments.report import driver, statistics
from experiments.report.sampler_runs import (
  IMAGE_QUICK,
  IMAGES,
  QUICK,
  TOY,
  censored,
  chosen_datasets,
  curve,
  iterations_to,
  kind_of,
  students,
  train_teacher,
)
from experiments.report.verdicts import INCONCLUSIVE, REFUTED, REPRODUCED, Verdict, decide
from experiments.sweep.grid import flag_value
from experiments.tasks.common.samplers import REFERENCE_STEPS

VARIANTS = {'none': 'SiD', 'adversarial': 'SiD²A (adversarial)', 'nce': 'SiD + NCE (M = 1)',
            'noisier_nce': 'SiD + N²CE (M = 50)'}
WINDOW = 5  # evaluations averaged: the final quality, and the trailing mean a run reaches a value by


@dataclasses.dataclass(frozen=True)
class Setting:
  """A kind of dataset's SiD runs: config, the metric judged (lower is better) and the other columns."""
  config: str  # module of experiments/configs
  get_config: object
  metric: str
  title: str
  columns: dict
  quick: dict


SETTINGS = {TOY: Setting('sid_toy2d', sid_toy2d.get_config, TOY.metric, TOY.title,
                         {'mmd': 'MMD', 'modes_covered': 'modes'}, TOY.quick),
            IMAGES: Setting('sid_images', sid_images.get_config, IMAGES.metric,
                            IMAGES.title, {'kid': 'KID', 'class_kl': 'class KL'}, {**QUICK, **IMAGE_QUICK})}
# The paper's CIFAR-10 FIDs (iterations): {variant: (unconditional, conditional)}.
PUBLISHED = {'adversarial': ('1.50 (30K)', '1.40 (50K)'), 'nce': ('1.53 (30K)', '1.46 (30K)'),
             'noisier_nce': ('1.45 (20K)', '1.39 (20K)')}


def distil(setting, dataset, teacher_dir, seeds, workdir, overrides) -> tuple[dict, float]:
  """``({variant: [curve per seed]}, seconds)``: the four variants on ``seeds`` seeds."""
  result = students(setting.config, dataset, teacher_dir, {'sid.real_term': list(VARIANTS)}, seeds,
                    overrides, workdir, driver.JOBS.value)
  return {v: [curve(s, setting.metric) for s in result.cell(real_term=v)] for v in VARIANTS}, result.wall_s


def final(run: dict) -> float:
  """The mean of a run's last ``WINDOW`` evaluations."""
  return float(np.mean(run['judged'][-WINDOW:]))


def smoothed(run: dict) -> dict:
  """The run with ``judged`` replaced by its trailing mean over ``WINDOW`` evaluations."""
  judged = np.asarray(run['judged'], float)
  trailing = [np.mean(judged[max(0, i - WINDOW + 1):i + 1]) for i in range(len(judged))]
  return {**run, 'judged': np.asarray(trailing)}


def claim_a(curves, title) -> tuple[list[list[str]], Verdict]:
  """SiD + N²CE's final quality (``title``) against NCE's and the adversarial variant's, paired by seed."""
  level = statistics.bonferroni(0.95, 2)
  final_of = {v: [final(r) for r in runs] for v, runs in curves.items()}
  rows, signs = [], []
  for other in ('nce', 'adversarial'):
    interval = statistics.paired(final_of['noisier_nce'], final_of[other], level)
    signs.append(interval.sign)
    rows.append([f'N²CE − {VARIANTS[other]}', f'final {title}', str(interval),
                 {-1: 'N²CE better', 1: 'N²CE worse', 0: 'the interval holds 0'}[interval.sign]])
  decided = (REPRODUCED if all(s < 0 for s in signs) else REFUTED if any(s > 0 for s in signs)
             else INCONCLUSIVE)
  reason = '' if decided != INCONCLUSIVE else ('no interval excludes 0' if not any(signs)
                                               else 'one interval holds 0')
  return rows, Verdict(f'(a) SiD + N²CE ends better ({title}) than SiD + NCE and than SiD²A', decided,
                       'two paired intervals of the final quality below 0, Bonferroni to 95% together',
                       {}, '; '.join(r[2] for r in rows), reason)


def claim_b(curves) -> tuple[list[list[str]], Verdict]:
  """Iterations to the adversarial run's final quality (per seed), N²CE against half of the
  adversarial run's own; a run that never gets there counts at twice the budget."""
  adversarial = [smoothed(r) for r in curves['adversarial']]
  n2ce = [smoothed(r) for r in curves['noisier_nce']]
  own, fast, reached = [], [], 0
  for a, b in zip(adversarial, n2ce):
    target = a['judged'][-1]  # the trailing mean at the end: final()
    own.append(censored(iterations_to(a, target), a['budget']))
    hit = iterations_to(b, target)
    reached += hit is not None
    fast.append(censored(hit, b['budget']))
  interval = statistics.paired(fast, 0.5 * np.asarray(own))
  rows = [['N²CE − ½ adversarial', "iterations to the adversarial run's final quality", str(interval),
           f'N²CE reached it on {reached} of {len(fast)} seeds; adversarial iterations {mean_std(own)}, '
           f'N²CE {mean_std(fast)}']]
  decided = decide(interval.sign, better=-1)
  return rows, Verdict("(b) SiD + N²CE reaches SiD²A's final quality in at most half its iterations", decided,
                       'paired interval of N²CE − ½ adversarial iterations below 0', {'mean': interval.mean},
                       str(interval), 'the interval holds 0' if decided == INCONCLUSIVE else '')


def last_logged(run: dict, key: str) -> float:
  """The last training log's ``train_<key>`` of a run (NaN when it logged none)."""
  values = [r[f'train_{key}'] for r in read_metrics(run['run_dir']) if f'train_{key}' in r]
  return values[-1] if values else float('nan')


def section(setting, dataset, curves, figures_dir) -> tuple[str, dict]:
  seeds = curves['none']
  METRIC, TITLE, COLUMNS = setting.metric, setting.title, setting.columns  # noqa: N806
  references_of = lambda key: [r['references'][key] for r in seeds]  # noqa: E731
  head = (['sampler', f'{TITLE} (end)', f'best {TITLE}'] + [f'{name} (end)' for name in COLUMNS.values()]
          + ['discriminator accuracy (end)'])
  rows = [[f'teacher, {t} step{"s" * (t > 1)}', mean_std(references_of(f'teacher_{t}_steps_{METRIC}')), '']
          + [mean_std(references_of(f'teacher_{t}_steps_{k}')) for k in COLUMNS] + ['']
          for t in REFERENCE_STEPS]
  rows.append(['generator before distillation'] + [mean_std(references_of(f'before_{METRIC}')), '']
              + [mean_std(references_of(f'before_{k}')) for k in COLUMNS] + [''])
  accuracies = {v: [last_logged(r, 'discriminator_accuracy') for r in runs] for v, runs in curves.items()
                if v != 'none'}
  for variant, runs in curves.items():
    accuracy = mean_std(accuracies[variant]) if variant in accuracies else ''
    rows.append([VARIANTS[variant], mean_std([final(r) for r in runs]),
                 mean_std([float(np.min(r['judged'])) for r in runs])]
                + [mean_std([r[k][-1] for r in runs]) for k in COLUMNS] + [accuracy])
  rows.append(['held-out data (the floor)', mean_std(references_of(f'data_floor_{METRIC}')), '', '', '', ''])
  rows_a, verdict_a = claim_a(curves, TITLE)
  rows_b, verdict_b = claim_b(curves)
  budget = seeds[0]['budget']
  lines = [f'\n## {dataset}\n',
           f'Mean ± std over {len(seeds)} seeds after {budget} iterations ("end": the mean of the last '
           f'{WINDOW} evaluations); "best" is the lowest evaluation of each run (read off the test points, '
           'an optimistic figure).\n',
           markdown_table(head, rows), '\n### The claims, paired by seed\n',
           markdown_table(['comparison', 'on', 'mean difference [CI]', 'outcome'], rows_a + rows_b),
           f'\n(a) {verdict_a}; (b) {verdict_b}.\n', chance_note(accuracies),
           'The discriminator accuracy is each classifier\'s own decision on its training batch: s > 0 '
           'for SiD²A and NCE, s > log M for N²CE, which calls a point data only where the ratio exceeds '
           'M = 50, so its 0.5 says no ratio reached 50, not that its term is silent.\n',
           f'![{dataset} curves]({plot_curves(setting, dataset, curves, figures_dir)})']
  for variant, runs in curves.items():
    if runs[0]['png'] and os.path.exists(runs[0]['png']):
      target = os.path.join(figures_dir, f'{dataset}_{variant}_samples.png')
      shutil.copyfile(runs[0]['png'], target)
      lines.append(f'![{VARIANTS[variant]}, seed 0]({os.path.relpath(target, os.path.dirname(figures_dir))})')
  return '\n'.join(lines) + '\n', {'dataset': dataset, 'a': verdict_a, 'b': verdict_b}


def chance_note(accuracies: dict, chance: float = 0.55) -> str:
  """A diagnosis when every discriminator ends near chance: its term then carries no signal."""
  top = max(np.nanmax(values) for values in accuracies.values())
  if top >= chance:
    return ''
  return (f'Every discriminator ends at chance (accuracy at most {top:.3f} on its own training batch): '
          'the real-data term gives the generator no signal, so the variants are SiD alone up to noise '
          'and the claims cannot show in this setting.\n')


def plot_curves(setting, dataset, curves, figures_dir) -> str:
  """Each variant's mean ± std over seeds against iteration (the generator before at 0), with the
  teacher's 100-step and 10-step quality and the floor."""
  figure, (ax,) = plotting.panels(1, width=6.0, height=4.0)
  seeds, METRIC = curves['none'], setting.metric  # noqa: N806
  for variant, runs in curves.items():
    x = np.concatenate([[0], runs[0]['step']])
    before = [r['references'][f'before_{METRIC}'] for r in runs]
    plotting.seed_band(ax, x, [np.concatenate([[b], r['judged']]) for b, r in zip(before, runs)],
                       VARIANTS[variant])
  for steps, style in ((100, '--'), (10, ':')):
    plotting.reference(ax, np.mean([r['references'][f'teacher_{steps}_steps_{METRIC}'] for r in seeds]),
                       f'teacher, {steps} steps', style)
  plotting.reference(ax, np.mean([r['references'][f'data_floor_{METRIC}'] for r in seeds]),
                     'floor (held-out data)', '-.', 'grey')
  plotting.label(ax, 'iteration', f'{setting.title} to held-out data',
                 title=f'{dataset}: one-step generators', log_y=True)
  path = os.path.join(figures_dir, f'{dataset}_curves.png')
  plotting.save(figure, path)
  return os.path.relpath(path, os.path.dirname(figures_dir))


def define_flags() -> None:
  """The command line's own flags (here, not at import: the sampler report defines the same names)."""
  flags.DEFINE_list('datasets', ['8gaussians', 'checkerboard', 'mnist5k', 'fashion_mnist'],
                    'Toy densities and 28x28 image datasets.')
  flags.DEFINE_integer('seeds', 5, 'Seeds per 2-D dataset (the same for every variant).')
  flags.DEFINE_integer('image_seeds', 3, 'Seeds per image dataset.')
  flags.DEFINE_multi_string('override', [], 'FIELD=VALUE for every 2-D SiD run.')
  flags.DEFINE_multi_string('image_override', [], 'FIELD=VALUE for every image SiD run.')


def main(argv):
  del argv
  quick = driver.QUICK.value
  workdir, output = driver.paths('sid', 'docs/sid.md')
  given = flags.FLAGS
  try:
    datasets = chosen_datasets(given.datasets, quick)
    seeds, overrides = {}, {}
    for kind, seeds_flag, override_flag in ((TOY, 'seeds', 'override'),
                                            (IMAGES, 'image_seeds', 'image_override')):
      seeds[kind] = 2 if quick else given[seeds_flag].value
      if seeds[kind] < 2:
        raise ConfigError(f'--{seeds_flag}={seeds[kind]} is invalid; paired intervals need >= 2')
      setting = SETTINGS[kind]
      overrides[kind] = {**parse_overrides(setting.get_config(), given[override_flag].value),
                         **(setting.quick if quick else {})}
  except ConfigError as error:
    sys.exit(f'Invalid flag: {error}')
  figures_dir = os.path.join(os.path.dirname(output) or '.', 'sid')
  os.makedirs(figures_dir, exist_ok=True)
  started, wall, sections, claims = time.perf_counter(), 0.0, [], []
  for dataset in datasets:
    kind = kind_of(dataset)
    teacher_dir, seconds = train_teacher(dataset, driver.teachers_dir(), quick)
    curves, more = distil(SETTINGS[kind], dataset, teacher_dir, seeds[kind],
                          os.path.join(workdir, dataset, 'sid'), overrides[kind])
    wall += seconds + more
    text, found = section(SETTINGS[kind], dataset, curves, figures_dir)
    sections.append(text)
    claims.append(found)
  command = 'python -m experiments.report.one_step' + (' --quick' if quick else '')
  for kind, name in ((TOY, 'override'), (IMAGES, 'image_override')):
    command += ''.join(f' --{name}={field}={flag_value(value)}' for field, value in overrides[kind].items()
                       if not (quick and field in SETTINGS[kind].quick))
  for name in ('datasets', 'seeds', 'image_seeds'):
    if given[name].value != given[name].default and not quick:
      value = given[name].value
      command += f' --{name}=' + (','.join(value) if isinstance(value, list) else str(value))
  with open(output, 'w') as f:
    f.write(header(command, wall, seeds, quick, claims) + ''.join(sections))
  print(f'one-step report: {output} ({time.perf_counter() - started:.0f} s now; {wall:.0f} s of runs)')


def header(command, wall, seeds, quick, claims) -> str:
  config, images = sid_toy2d.get_config(), sid_images.get_config()
  return ('# One-step samplers: SiD, SiD²A, SiD + NCE and SiD + N²CE\n\n'
          + ('**Quick mode: pipeline check only, the numbers mean nothing.**\n\n' if quick else '')
          + f'`{command}`: its runs took {wall / 60:.1f} min on a 2-core CPU machine, 2 runs at a time '
          f'(finished runs are reused); {seeds[TOY]} seeds per 2-D dataset and {seeds[IMAGES]} per image '
          'dataset, the same for every variant; no run diverged (one that does stops the report, naming it). '
          'The method and where it differs from the reference code: docs/sid.md\'s last section.\n\n'
          '- **Settings** (`sid_toy2d.py`): the one-step generator and the fake score start as copies of '
          f'the teacher; alpha {config.sid.alpha}, sigma_init {config.sid.init_sigma}, t_max '
          f'{config.sid.t_max}; Adam (beta1 {config.sid.b1}) at {config.sid.generator_learning_rate:g}; '
          'the real-data terms train a separate time-conditioned MLP discriminator on noised inputs, '
          f'with weight {config.sid.real_weight:g} per dimension against SiD\'s loss (SiD²A\'s ratio); a '
          'seed fixes the discriminator\'s initialisation, the data and every noise.\n'
          f'- **2-D**: teacher `ddpm_toy2d.py` (an epsilon MLP {tuple(config.teacher.hidden)}), '
          f'discriminator {tuple(config.sid.discriminator_hidden)}, batch {config.train.batch_size}, '
          f'{config.train.num_steps:,} iterations; judged by the sliced W2 (100 projections) and MMD of '
          f'{config.data.num_test:,} samples to as many held-out points, and the modes covered.\n'
          '- **28x28** (`sid_images.py`): teacher `ddpm_images.py` (a '
          f'{images.teacher.prediction}-prediction MLP {tuple(images.teacher.hidden)} on the flattened '
          'image: docs/teachers.md), discriminator '
          f'{tuple(images.sid.discriminator_hidden)}, batch {images.train.batch_size}, '
          f'{images.train.num_steps:,} iterations; judged by the Fréchet distance (FD) and KID of '
          f'{images.judge.num_samples:,} samples to the test split in the features of the teacher run\'s '
          f'classifier (MLP {tuple(images.judge.hidden)}), and the KL of its class histogram to uniform.\n\n'
          + markdown_table(['dataset', '(a) N²CE ends better than NCE and adversarial',
                            '(b) N²CE at the adversarial final quality in ≤ half the iterations'],
                           [[c['dataset'], str(c['a']), str(c['b'])] for c in claims])
          + '\n\n**Published** (the N²CE paper, CIFAR-10 FID from an EDM teacher, iterations in '
          'brackets):\n\n'
          + markdown_table(['variant', 'unconditional', 'conditional'],
                           [[VARIANTS[v], *values] for v, values in PUBLISHED.items()])
          + '\n\nOurs: 2-D densities and 28×28 MLP teachers on a 2-core CPU, so only the ordering of the '
          'variants, not their values, can be set beside the paper\'s.\n' + METHOD)


METHOD = '''
## Method, and where it differs from the reference (`mingyuanzhou/SiD`, `sida` branch)

`nnce_jax/sid.py`. Each iteration: one update of the fake score (EDM's weighted denoising loss,
log-normal noise levels, on stopped generator samples) and, with a real-data term, of the
discriminator on data and generator samples noised alike; then one generator update on
`sum_d (f_phi − f_psi)((f_phi − x_g) − alpha (f_phi − f_psi)) / w`, `w = stop(mean_d |x_g − f_phi|)`,
with gradients through the noised sample into both frozen denoisers, at EDM's rho-schedule
levels up to `t_max`. What differs:

- **Diffusion family**: our teachers are variance-preserving DDPMs with epsilon (2-D) or v (28×28)
  networks; a noise level `sigma` is the teacher's fractional step with `abar = 1 / (1 + sigma²)`
  and every network is read as a denoiser. Levels beyond the teacher's range (sigma below 0.01)
  are clipped to it.
- **Discriminator**: a separate time-conditioned MLP `s(x_n, n)`, not a parameter-free head on the
  fake score's encoder (our fake score is an MLP with no encoder). It sees data and generator
  samples noised at the fake score's levels, as SiD²A's does.
- **The three real-data terms**: `adversarial` is SiD²A's logistic loss weighted by EDM's weight
  per sample, the generator's logit clipped to ±10; `nce` and `noisier_nce` train `s` by NCE
  (M = 1) or N²CE (M) and the generator by the same classifier's data term, `softplus(log M − s)`;
  at M = 1 the two coincide (tested), so `adversarial` and `nce` differ only by EDM's weight and
  the clip.
- **Schedule**: every variant starts from the teacher and uses its real-data term from the first
  iteration; SiD²A starts from a distilled SiD generator and holds the generator still for its
  first 100k images. Neither our loss scale (SiD's sum × 100 / batch) nor gradient `nan_to_num`
  nor the generator's EMA is kept: the parameters are evaluated as trained.
- **Sizes**: learning rate 3e-5 for every network (the reference: 1e-5 for CIFAR-10 UNets), no augmentation,
  no dropout.
'''


if __name__ == '__main__':
  define_flags()
  app.run(main)
