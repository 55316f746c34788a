"""Few-step samplers fine-tuned by DxMI with each energy loss, against the teacher they are cut from.

``python -m experiments.report.samplers [--quick] [--datasets=8gaussians,checkerboard,mnist5k]
[--num_steps=4,10] [--image_num_steps=4,10] [--losses=dxmi,nce,noisier_nce] [--seeds=5]
[--image_seeds=5,3]``

For each dataset the teacher DDPM is trained once (``ddpm_toy2d.py`` for 2-D densities,
``ddpm_images.py`` for 28x28 images), then for each ``T`` the ``T``-step sampler cut from it is
fine-tuned with each energy loss on the same seeds and iterations (``dxmi_toy2d.py``,
``dxmi_images.py``). Each run is an ordinary run of ``experiments.main``; finished
runs are reused. Writes docs/samplers.md: the teacher before fine-tuning, each loss at
the end and at its best evaluation, iterations to two thresholds (the teacher's 100-step
quality, the paper's bar, and halfway to it), the paired comparisons that judge the claim, the
curves and the samples. 2-D samples are judged by sliced W2, images by the Fréchet distance in
a fixed classifier's features.
"""

import json
import os
import shutil
import sys
import time

import numpy as np
from absl import app, flags

from experiments.configs import teacher_sampling
from experiments.core import plotting
from experiments.core.checks import ConfigError, parse_overrides, set_fields
from experiments.core.tables import markdown_table, mean_std
from experiments.report import driver, statistics
from experiments.report.sampler_runs import (  # noqa: F401
  IMAGES,
  TOY,
  censored,
  chosen_datasets,
  curve,
  iterations_to,
  kind_of,
  students,
  train_teacher,
)
from experiments.report.verdicts import INCONCLUSIVE, REFUTED, REPRODUCED, Verdict
from experiments.run.training import check_config, run
from experiments.sweep.grid import flag_value
from experiments.tasks.common.samplers import THRESHOLD_STEPS
from nnce_jax import dxmi

_DATASETS = flags.DEFINE_list('datasets', ['8gaussians', 'checkerboard', 'mnist5k', 'fashion_mnist'],
                              'Toy densities and 28x28 image datasets.')
_NUM_STEPS = flags.DEFINE_list('num_steps', ['4', '10'], 'Sampler steps T of the 2-D runs, each >= 1.')
_IMAGE_NUM_STEPS = flags.DEFINE_list('image_num_steps', ['4', '10'], 'Sampler steps T of the image runs.')
_LOSSES = flags.DEFINE_list('losses', ['dxmi', 'nce', 'noisier_nce'], 'Energy losses compared.')
_SEEDS = flags.DEFINE_list('seeds', ['5'], 'Seeds per 2-D cell: one count, or one per --num_steps.')
_IMAGE_SEEDS = flags.DEFINE_list('image_seeds', ['5'], 'Seeds per image cell: one count, or one per '
                                 '--image_num_steps.')
_OVERRIDES = flags.DEFINE_multi_string('override', [], 'FIELD=VALUE for every 2-D fine-tuning run.')
_IMAGE_OVERRIDES = flags.DEFINE_multi_string('image_override', [], 'FIELD=VALUE for every image run.')

NAMES = {'dxmi': 'DxMI', 'nce': 'NCE', 'noisier_nce': 'N²CE', 'nwj': 'NWJ'}
# DxMI's 10-step samplers, FID (the N²CE paper's table): {dataset: (NCE, N²CE with M = 100)}.
PUBLISHED_FID = {'CIFAR-10': (3.93, 2.99), 'ImageNet 64': (2.69, 2.23)}


def chosen(quick: bool) -> tuple[list[str], dict, dict, list[str]]:
  """``(datasets, {kind: [T, ...]}, {kind: {T: seeds}}, losses)`` from the flags."""
  datasets = chosen_datasets(_DATASETS.value, quick)
  steps, seeds = {}, {}
  for kind, flag, seed_flag in ((TOY, _NUM_STEPS, _SEEDS), (IMAGES, _IMAGE_NUM_STEPS, _IMAGE_SEEDS)):
    if bad := [t for t in flag.value if not t.isdigit() or int(t) < 1]:
      raise ConfigError(f'--{flag.name}={",".join(bad)} is invalid; each must be an integer >= 1')
    counts = seed_flag.value
    if len(counts) not in (1, len(flag.value)) or not all(c.isdigit() and int(c) >= 1 for c in counts):
      raise ConfigError(f'--{seed_flag.name}={",".join(counts)} is invalid; give one integer >= 1, or one '
                        f'per --{flag.name}')
    counts = counts * len(flag.value) if len(counts) == 1 else counts
    per_step = dict(zip(map(int, flag.value), map(int, counts)))
    steps[kind] = sorted(per_step)[:1 if quick else None]
    seeds[kind] = {t: 2 if quick else per_step[t] for t in steps[kind]}
  if bad := [loss for loss in _LOSSES.value if loss not in dxmi.ENERGY_LOSSES]:
    raise ConfigError(f'--losses={",".join(bad)} is invalid; allowed values: {", ".join(dxmi.ENERGY_LOSSES)}')
  return datasets, steps, seeds, list(_LOSSES.value)


def diagnose_teacher(dataset, teacher_dir, workdir, quick) -> dict:
  """The image teacher's samplers against ``T``, as built and with the denoised guess clipped
  (the ``teacher_sampling`` task, run here); a finished diagnosis in ``workdir`` is reused."""
  path = os.path.join(workdir, 'teacher_sampling.json')
  if not os.path.exists(path):
    quick_fields = {k: v for k, v in IMAGES.quick_teacher.items() if not k.startswith('train.')}
    config = set_fields(teacher_sampling.get_config(), {
        'data.dataset': dataset, 'teacher.workdir': os.path.abspath(teacher_dir),
        **(quick_fields if quick else {})})
    import jax
    check_config(config, jax.device_count())
    run(config, workdir)
  with open(path) as f:
    return {**json.load(f), 'workdir': workdir}


def teacher_section(dataset, found, figures_dir) -> str:
  """The diagnosis of ``diagnose_teacher`` as a table and the 100-step samples of both samplers."""
  lines = [f'\n## {dataset}: the teacher\'s samplers against T\n',
           'The same teacher and evaluation key as its run (so the reference rows repeat its recorded '
           'numbers); "denoised guess clipped" clips each step\'s guess of the clean image to [-1, 1] '
           '(DDPM\'s `clip_denoised`), which the reference\'s sampler, the one DxMI fine-tunes, does not. '
           'The bar of the claim stays the reference sampler\'s. '
           f'`python -m experiments.main --config=experiments/configs/teacher_sampling.py '
           f'--config.data.dataset={dataset} --config.teacher.workdir=...`\n',
           found['table'], '']
  steps = max(r['steps'] for r in found['results'])
  for suffix, name in (('', 'reference'), ('_clipped', 'denoised guess clipped')):
    source = os.path.join(found['workdir'], f'teacher_{steps}_steps{suffix}.png')
    if os.path.exists(source):
      target = os.path.join(figures_dir, f'{dataset}_teacher_{steps}_steps{suffix}.png')
      shutil.copyfile(source, target)
      lines.append(f'![{name}, {steps} steps]({os.path.relpath(target, os.path.dirname(figures_dir))})')
  return '\n'.join(lines) + '\n'


def fine_tune(dataset, steps, teacher_dir, losses, seeds, workdir, overrides):
  kind = kind_of(dataset)
  result = students(kind.config, dataset, teacher_dir, {'energy.loss': losses}, seeds,
                    {**overrides, 'sampler.steps': steps}, workdir, driver.JOBS.value)
  return {loss: [curve(s, kind.metric) for s in result.cell(loss=loss)] for loss in losses}, result.wall_s


def thresholds(references: dict, metric: str) -> dict:
  """``{name: value}``: the teacher's 100-step quality (the paper's bar) and halfway to it."""
  start, bar = references[f'teacher_{metric}'], references[f'teacher_{THRESHOLD_STEPS}_step_{metric}']
  return {f'teacher {THRESHOLD_STEPS}-step': bar, 'halfway': (start + bar) / 2}


def outcome(interval: statistics.Interval, reached: dict, met_before: int = 0) -> str:
  """What paired iterations-to-threshold say: which loss gets there sooner, at 95%. A bar the
  ``T``-step teacher already meets on ``met_before`` of the seeds (its 100-step sampler measured no
  better than its ``T``-step one) says nothing about fine-tuning."""
  if met_before:
    return (f'the teacher meets the bar before fine-tuning on {met_before} of {interval.count} seeds '
            f'(its {THRESHOLD_STEPS}-step sampler measures no better)')
  if not any(reached.values()):
    return 'no loss reaches it within the budget'
  return {-1: 'N²CE sooner', 1: 'N²CE later', 0: 'the interval holds 0'}[interval.sign]


def verdict(interval: statistics.Interval, reached: dict, met_before: int = 0, where: str = '') -> Verdict:
  """The claim "N²CE gets there in fewer iterations", judged on the teacher's 100-step bar."""
  found = outcome(interval, reached, met_before)
  decided = {'N²CE sooner': REPRODUCED, 'N²CE later': REFUTED}.get(found, INCONCLUSIVE)
  return Verdict(f'N²CE reaches the teacher\'s {THRESHOLD_STEPS}-step quality in fewer iterations than DxMI'
                 + (f' ({where})' if where else ''), decided,
                 'paired 95% t interval of the iterations, N²CE − DxMI, below 0', {'mean': interval.mean},
                 str(interval), '' if decided != INCONCLUSIVE else found)


def _bar(run: dict, name: str, metric: str) -> float:
  """Threshold ``name`` of one run: each seed judges with its own held-out data and evaluation
  key, so the teacher's numbers, and the bars, are per seed."""
  return thresholds(run['references'], metric)[name]


def met_before(runs: list, name: str, metric: str) -> int:
  """On how many seeds the ``T``-step teacher already meets bar ``name``."""
  return sum(_bar(r, name, metric) >= r['references'][f'teacher_{metric}'] for r in runs)


def section(dataset, steps, curves, figures_dir) -> tuple[str, list[dict]]:
  kind, losses = kind_of(dataset), list(curves)
  metric, title = kind.metric, kind.title
  seeds = curves[losses[0]]  # the references of seed i are the same in every cell
  budget = seeds[0]['budget']
  names = list(thresholds(seeds[0]['references'], metric))
  references_of = lambda key: [r['references'][key] for r in seeds]  # noqa: E731
  met = {name: met_before(seeds, name, metric) for name in names}
  lines = [f'\n## {dataset}, T = {steps}\n']
  head = (['sampler', f'{title} (end)', f'best {title}'] + [f'{name} (end)' for name in kind.columns.values()]
          + [f'iterations to ≤ {name} (mean bar {np.mean([_bar(r, name, metric) for r in seeds]):.4g})'
             for name in names])
  teacher = [mean_std(references_of(f'teacher_{k}')) if f'teacher_{k}' in seeds[0]['references'] else ''
             for k in kind.columns]
  rows = [[f'teacher, {steps} steps (before)', mean_std(references_of(f'teacher_{metric}')), ''] + teacher
          + [''] * len(names)]
  for loss in losses:
    runs = curves[loss]
    rows.append([f'{NAMES[loss]}, fine-tuned', mean_std([r['judged'][-1] for r in runs]),
                 mean_std([float(np.min(r['judged'])) for r in runs])]
                + [mean_std([r[k][-1] for r in runs]) for k in kind.columns]
                + [f'met before fine-tuning on {met[name]} of {len(runs)} seeds' if met[name]
                   else mean_std([iterations_to(r, _bar(r, name, metric)) for r in runs]) for name in names])
  rest = [''] * (len(head) - 2)
  bar = mean_std(references_of(f'teacher_{THRESHOLD_STEPS}_step_{metric}'))
  rows += [[f'teacher, {THRESHOLD_STEPS} steps', bar]
           + rest, ['held-out data (the floor)', mean_std(references_of(f'data_floor_{metric}'))] + rest]
  lines += [f'Mean ± std over {len(seeds)} seeds after {budget} iterations; "best" is the lowest '
            'evaluation of each run (read off the test points, so an optimistic figure). The teacher\'s '
            'numbers, and so the bars, are measured per seed (its held-out data and evaluation key); '
            'each run is held to its own seed\'s bar.'
            + (f' The judge\'s test accuracy: {seeds[0]["references"]["judge_test_accuracy"]:.3f}.'
               if 'judge_test_accuracy' in seeds[0]['references'] else '') + '\n',
            markdown_table(head, rows)]
  claims, comparison_rows = [], []
  if 'noisier_nce' in curves:
    for other in [loss for loss in losses if loss != 'noisier_nce']:
      a, b = [r['judged'][-1] for r in curves['noisier_nce']], [r['judged'][-1] for r in curves[other]]
      end, p_value = str(statistics.paired(a, b)), f'p = {statistics.paired_p_value(a, b):.3g}'
      for name in names:
        found = {loss: [iterations_to(r, _bar(r, name, metric)) for r in curves[loss]]
                 for loss in ('noisier_nce', other)}
        interval = statistics.paired(*[[censored(v, budget) for v in found[loss]]
                                       for loss in ('noisier_nce', other)])
        reached = {loss: sum(v is not None for v in values) for loss, values in found.items()}
        # Every run censored: the "difference" would be 2 budgets minus 2 budgets, not a measurement.
        shown = str(interval) if any(reached.values()) else f'no run reaches it in {budget}'
        comparison_rows.append([f'N²CE − {NAMES[other]}', f'iterations to {name}', shown,
                                f'{reached["noisier_nce"]} / {reached[other]}',
                                outcome(interval, reached, met[name])])
        if name.startswith('teacher') and other == 'dxmi':
          claims.append({'dataset': dataset, 'steps': steps, 'interval': shown,
                         'end': f'{end} ({title}, {p_value})',
                         'verdict': verdict(interval, reached, met[name], f'{dataset}, T = {steps}')})
      comparison_rows.append([f'N²CE − {NAMES[other]}', f'{title} at the end', end, '', p_value])
    lines += ['\n### Paired comparisons (seed by seed; t interval)\n',
              'Iterations to a threshold are read at the evaluations (every 50 iterations); a run that '
              'never reached it counts at twice the budget; "reached" gives the seeds that did (N²CE / '
              'the other).\n',
              markdown_table(['comparison', 'on', 'mean difference [95% CI]', 'reached', 'outcome / p'],
                             comparison_rows)]
  lines += [f'\n![{title} against iteration]({plot_curves(dataset, steps, curves, names, figures_dir)})\n']
  for loss in losses:
    png = curves[loss][0]['png']
    if png and os.path.exists(png):
      target = os.path.join(figures_dir, f'{dataset}_T{steps}_{loss}_samples.png')
      shutil.copyfile(png, target)
      lines.append(f'![{NAMES[loss]}, seed 0]({os.path.relpath(target, os.path.dirname(figures_dir))})')
  return '\n'.join(lines) + '\n', claims


def plot_curves(dataset, steps, curves, names, figures_dir) -> str:
  """Each loss's mean ± std over seeds against iteration (the teacher's value at 0); the bars and
  the floor as their means over seeds."""
  kind = kind_of(dataset)
  figure, (ax,) = plotting.panels(1, width=6.0, height=4.0)
  for loss, runs in curves.items():
    x = np.concatenate([[0], runs[0]['step']])
    plotting.seed_band(ax, x, [np.concatenate([[r['references'][f'teacher_{kind.metric}']], r['judged']])
                               for r in runs], NAMES[loss])
  seeds = next(iter(curves.values()))
  for name, style in zip(names, ('--', ':')):
    plotting.reference(ax, np.mean([_bar(r, name, kind.metric) for r in seeds]), name, style)
  plotting.reference(ax, np.mean([r['references'][f'data_floor_{kind.metric}'] for r in seeds]),
                     'floor (held-out data)', '-.', 'grey')
  plotting.label(ax, 'iteration', f'{kind.title} to held-out data', title=f'{dataset}, T = {steps}',
                 log_y=True)
  path = os.path.join(figures_dir, f'{dataset}_T{steps}_curves.png')
  plotting.save(figure, path)
  return os.path.relpath(path, os.path.dirname(figures_dir))


def main(argv):
  del argv
  quick = driver.QUICK.value
  workdir, output = driver.paths('samplers', 'docs/samplers.md')
  try:
    datasets, all_steps, all_seeds, losses = chosen(quick)
    settings = {}  # kind: (overrides, {T: seeds})
    for kind, flag in ((TOY, _OVERRIDES), (IMAGES, _IMAGE_OVERRIDES)):
      given = parse_overrides(kind.defaults(), flag.value)
      settings[kind] = ({**given, **(kind.quick if quick else {})}, all_seeds[kind])
  except ConfigError as error:
    sys.exit(f'Invalid flag: {error}')
  figures_dir = os.path.join(os.path.dirname(output) or '.', 'samplers')
  os.makedirs(figures_dir, exist_ok=True)
  started, wall, sections, claims = time.perf_counter(), 0.0, [], []
  try:
    teachers = {}
    for dataset in datasets:
      teachers[dataset], seconds = train_teacher(dataset, driver.teachers_dir(), quick)
      wall += seconds
    diagnoses = {dataset: diagnose_teacher(dataset, teachers[dataset],
                                           os.path.join(workdir, dataset, 'teacher_sampling'), quick)
                 for dataset in datasets if kind_of(dataset) is IMAGES}
    for dataset in datasets:  # the 2-D densities first: the cheapest runs
      kind = kind_of(dataset)
      overrides, seeds = settings[kind]
      if dataset in diagnoses:
        sections.append(teacher_section(dataset, diagnoses[dataset], figures_dir))
      for steps in all_steps[kind]:
        curves, seconds = fine_tune(dataset, steps, teachers[dataset], losses, seeds[steps],
                                    os.path.join(workdir, dataset, f'T{steps}'), overrides)
        wall += seconds
        text, found = section(dataset, steps, curves, figures_dir)
        sections.append(text)
        claims += found
  except (ConfigError, FileNotFoundError) as error:
    sys.exit(f'Cannot run: {error}')
  with open(output, 'w') as f:
    f.write(header(command_line(quick, settings), wall, settings, quick, claims) + ''.join(sections))
  print(f'samplers report: {output} ({time.perf_counter() - started:.0f} s now; {wall:.0f} s of runs)')


def command_line(quick, settings) -> str:
  command = 'python -m experiments.report.samplers' + (' --quick' if quick else '')
  for kind, name in ((TOY, 'override'), (IMAGES, 'image_override')):
    command += ''.join(f' --{name}={field}={flag_value(value)}' for field, value in settings[kind][0].items()
                       if not (quick and field in kind.quick))
  for flag in (_DATASETS, _NUM_STEPS, _IMAGE_NUM_STEPS, _LOSSES, _SEEDS, _IMAGE_SEEDS):
    if flag.value != flag.default and not quick:
      value = flag.value
      command += f' --{flag.name}=' + (','.join(value) if isinstance(value, list) else str(value))
  return command


def seed_counts(seeds: dict) -> str:
  """``{T: seeds}`` in words: ``5``, or ``5 at T = 4, 3 at T = 10``."""
  if len(set(seeds.values())) <= 1:
    return str(next(iter(seeds.values()), 0))
  return ', '.join(f'{n} at T = {t}' for t, n in seeds.items())


def header(command, wall, settings, quick, claims) -> str:
  summary = [[c['dataset'], str(c['steps']), c['interval'], str(c['verdict']), c['end']] for c in claims]
  toy = {**TOY.defaults().to_dict()['data'], **{k[5:]: v for k, v in settings[TOY][0].items()
                                                 if k.startswith('data.')}}
  images = IMAGES.defaults()
  return ('# DxMI few-step samplers: teacher vs DxMI\'s energy vs NCE vs N²CE\n\n'
          + ('**Quick mode: pipeline check only, the numbers mean nothing.**\n\n' if quick else '')
          + f'`{command}`: its runs took {wall / 60:.1f} min on a 2-core CPU machine, 2 runs at a time '
          f'(finished runs are reused); {seed_counts(settings[TOY][1])} seeds per 2-D cell, '
          f'{seed_counts(settings[IMAGES][1])} per image cell. The method, its checks and how the '
          'settings were found: docs/dxmi.md.\n\n'
          '- **Settings**: the reference\'s CIFAR-10 setting (one time-independent network is the '
          'energy and every value, no costs in the value target, the last sigma fixed, tau1 = 0.1). '
          'Each dataset has one teacher, shared by every seed and loss; a seed fixes the energy\'s '
          'initialisation, the data and the sampler\'s noise.\n'
          '- **2-D** (`dxmi_toy2d.py`, teacher `ddpm_toy2d.py`): sliced W2 (100 projections) and MMD of '
          f'{toy["num_test"]:,} samples to as many held-out points; modes covered; the energy\'s AUROC '
          'of held-out data against uniform points.\n'
          '- **28x28** (`dxmi_images.py`, teacher `ddpm_images.py`: MLPs on the flattened image, the '
          'CPU size): Fréchet distance (FD) and KID of '
          f'{images.judge.num_samples:,} samples to the test split in the features of a small classifier '
          f'(MLP {tuple(images.judge.hidden)}) trained once on the training split and fixed for every '
          'method (its test accuracy is given); the KL of its predicted-class histogram to uniform; '
          'the energy\'s AUROC of test images against the teacher\'s samples.\n\n'
          f'**The claim** (N²CE reaches the teacher\'s {THRESHOLD_STEPS}-step quality in fewer '
          'iterations than DxMI\'s own energy loss), judged by the paired iterations to that '
          'threshold: reproduced if the 95% interval of N²CE − DxMI lies below 0, refuted if above, '
          'inconclusive otherwise. The last column is not the claim: the paired difference in quality '
          'at the end of the budget, lower is better for N²CE.\n\n'
          + markdown_table(['dataset', 'T', 'N²CE − DxMI, iterations [95% CI]', 'verdict',
                            'N²CE − DxMI at the end [95% CI]'], summary) + '\n\n'
          '**Published** (the N²CE paper, DxMI\'s 10-step samplers from pretrained DDPMs, about 78k '
          'iterations of batch 128 on GPUs, FID with InceptionV3 on 50k samples):\n\n'
          + markdown_table(['dataset', 'NCE energy', 'N²CE energy (M = 100)'],
                           [[name, f'{a:.2f}', f'{b:.2f}'] for name, (a, b) in PUBLISHED_FID.items()])
          + '\n\nOurs differ in scale on every axis: 2-D densities and 28×28 MLP teachers instead of '
          'CIFAR-10 / ImageNet UNets, 1,000 iterations or fewer on a 2-core CPU, and a small '
          'classifier\'s features instead of InceptionV3, so only the ordering of the losses, not '
          'their values, can be set beside the paper\'s.\n')


if __name__ == '__main__':
  app.run(main)
