r"""Choosing N²CE's ``M`` automatically, judged on every benchmark with a closed-form KL.

    python -m experiments.report.automatic_magnitude            # ~1 h on 2 CPU cores, reuses finished runs
    python -m experiments.report.automatic_magnitude --quick    # a minute: two benchmarks, 2 seeds, short

Every run is one :func:`nnce_jax.fit.fit_ratio` call (held-out selection on, evaluations every
100 steps) on a fixed sample of ``n`` data points; the truth is ``KL(q* || q0)`` in closed form
and the score is ``|E_q*[s] - KL|`` on the held-out 10%. Per benchmark, on judging seeds 0-4:
NCE, N²CE with ``M = 100``, the automatic magnitudes (``plateau``, ``kl``) and the best fixed
``M`` of a grid, picked on seeds 5-6, which never judge. Budgets below the full run are read
off the same runs: with a fixed evaluation cadence a shorter run is a prefix of a longer one
(the same steps, evaluations and choices), so the error at budget ``B`` is the error at the
evaluation selection would have kept among those up to ``B``.
Writes ``docs/automatic_magnitude.md`` and one figure per benchmark.
"""

import dataclasses
import json
import math
import os
import time
from collections.abc import Callable

import numpy as np
from absl import app, flags, logging

from experiments.core import plotting, tables
from experiments.core.files import write_json_atomically
from experiments.report import statistics
from nnce_jax import closed_form, fit, noise, schedules

JUDGE_SEEDS = tuple(range(5))
SELECT_SEEDS = (5, 6)
GRID = (1.0, 10.0, 100.0, 1e3, 1e4)
# The candidate rules, each with fit_ratio's defaults otherwise (select=False: the last step, and
# every evaluation recorded so that selection can be read off afterwards).
METHODS = {'nce': dict(objective='nce'), 'plateau': dict(magnitude=schedules.AutomaticMagnitude('plateau')),
           'exp_kl': dict(magnitude=schedules.AutomaticMagnitude('kl')), 'ess': dict(magnitude='ess')}
METHODS.update({f'm{m:g}': dict(magnitude=m) for m in GRID[1:]})
LABELS = {'nce': 'NCE', 'm100': 'N²CE M = 100', 'best': 'best fixed M', 'plateau': 'auto (plateau)',
          'exp_kl': 'auto (exp KL)', 'ess': 'auto (ESS)'}
RULES = ('plateau', 'exp_kl', 'ess')


def gaussian_pair(dim: int, kl: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """A random ``N(mean, cov)`` whose ``KL(. || N(0, I))`` is ``kl``: a random covariance pulled
  towards ``I`` until it holds 40% of the KL (at most all of its own), the mean the rest."""
  rng = np.random.default_rng(seed)
  factor = rng.normal(size=(dim, dim)) / math.sqrt(dim)
  raw = 0.7 * factor @ factor.T + 0.1 * np.eye(dim)
  cov_kl = lambda t: closed_form.gaussian_kl(np.zeros(dim), np.eye(dim) + t * (raw - np.eye(dim)),  # noqa: E731
                                             np.zeros(dim), np.eye(dim))
  low, high = 0.0, 1.0
  if cov_kl(1.0) > 0.4 * kl:
    for _ in range(60):
      low, high = ((low + high) / 2, high) if cov_kl((low + high) / 2) < 0.4 * kl else (low, (low + high) / 2)
  cov = np.eye(dim) + low * (raw - np.eye(dim))
  direction = rng.normal(size=dim)
  mean = direction / np.linalg.norm(direction) * math.sqrt(2 * (kl - cov_kl(low)))
  return mean, cov


@dataclasses.dataclass(frozen=True)
class Benchmark:
  """``target(): (mean, cov)`` of ``q*`` against ``q0 = N(0, I)``; ``n`` samples per seed."""
  name: str
  title: str
  target: Callable[[], tuple[np.ndarray, np.ndarray]]
  n: int
  num_steps: int
  fit_kwargs: dict


def _isotropic(dim, scale):
  return lambda: (np.zeros(dim), scale**2 * np.eye(dim))


def _mutual_information(dim, mi):
  rho = math.sqrt(1 - math.exp(-4 * mi / dim))
  return lambda: (np.zeros(dim), np.kron(np.eye(dim // 2), np.array([[1.0, rho], [rho, 1.0]])))


_QUADRATIC = dict(model='gaussian', learning_rate=1e-2, batch_size=1000)
_RANDOM_PAIRS = ((2, 1.0), (5, 3.0), (20, 20.0), (50, 30.0))
BENCHMARKS = {b.name: b for b in [
    Benchmark('pair10d', '10-D pair, KL 9, MLP', lambda: gaussian_pair(10, 9.0, 10),
              20_000, 8000, {}),
    Benchmark('chasm6', '1-D chasm, σ = 1e-3 (6.41 nats)', _isotropic(1, 1e-3), 10_000, 8000,
              {**_QUADRATIC, 'ema_decay': 0.998}),
    Benchmark('chasm13', '1-D chasm, σ = 1e-6 (13.3 nats)', _isotropic(1, 1e-6), 10_000, 20_000,
              {**_QUADRATIC, 'ema_decay': 0.998}),
    Benchmark('gauss5d_n1000', '5-D Gaussian, n = 1,000', lambda: gaussian_pair(5, 2.0, 5), 1_000, 4000,
              _QUADRATIC),
    Benchmark('gauss5d_n10000', '5-D Gaussian, n = 10,000', lambda: gaussian_pair(5, 2.0, 5), 10_000, 4000,
              _QUADRATIC),
    Benchmark('mi40', 'MI, d = 40 (10 nats)', _mutual_information(40, 10.0), 100_000, 8000,
              {**_QUADRATIC, 'learning_rate': 3e-3, 'batch_size': 500}),
] + [Benchmark(f'random_d{d}_kl{kl:g}', f'random pair, d = {d}, KL {kl:g}',
               (lambda d=d, kl=kl: gaussian_pair(d, kl, 1000 + d)), 10_000, 4000, _QUADRATIC)
     for d, kl in _RANDOM_PAIRS]}
QUICK = ('chasm6', 'random_d5_kl3')

FLAGS = flags.FLAGS

INTRO = """# Choosing M automatically

Generated by `python -m experiments.report.automatic_magnitude` (runs reused from `--workdir`).
Each cell: mean ± standard error over judging seeds 0-4 of |E_q*[s] − KL| in nats on the held-out
10%, at the last step (what `fit_ratio` returns by default), then again at the step held-out
selection keeps (evaluations every 100 steps; selection on the held-out objective, for the
automatic rules on NCE's held-out loss). "best fixed M" was picked (by its last-step error) from
M ∈ {{{grid}}} on seeds 5-6, which never judge.
Intervals: paired 95% t intervals of the difference in error over the 5 judging seeds
(negative: the automatic rule is better).

## The rules

Every M has the same optimum, s = log q*/q0, so M decides only the path and the noise of the
estimate. N²CE weighs the data point x_i by M/(M + r_i) and the noise point y_j by
M r_j/(M + r_j) (r = e^s): a small M saturates the data term once data and noise separate (NCE's
density chasm), a large M lets the few noise points with a large ratio carry the step (the
O(M²/n) variance of Prop. 3.3). Three ways to trade the two, each from what training can observe:

- **plateau** (`schedules.AutomaticMagnitude("plateau")`, host side): start at M = 10⁴, divide M
  by 10 whenever the held-out objective at the current M has not improved for 2 evaluations,
  down to M = 1: large while it makes progress, NCE once it stalls;
- **exp KL** (`AutomaticMagnitude("kl")`, host side): M = exp(held-out KL estimate), clipped to
  [1, 10⁴], so that log M sits where typical data logits are and the data term does not saturate;
- **ESS** (`magnitude="ess"`, inside each step: `schedules.effective_sample_size_log_magnitude`):
  the largest M on a half-decade grid in [1, 10⁴] whose noise weights M r_j/(M + r_j) keep an
  effective sample size (Σw)²/Σw² of at least half of NCE's on the same batch: M grows until the
  variance it buys shows in the batch itself. Cross-fitted: M read off one half of the noise weighs
  the other half. A first version read M off the very points it weighed; it was small exactly when
  a heavy noise point was there, under-weighted the points that hold E_q0[exp(s)] at 1, and the
  estimate drifted upward (10-D pair: 3.32 nats of error at 8,000 steps, 0.90 cross-fitted).
"""


def define_flags():
  flags.DEFINE_string('workdir', 'runs/automatic_magnitude', 'where runs are kept and reused')
  flags.DEFINE_string('out', 'docs/automatic_magnitude.md', 'the page to write (figures beside it)')
  flags.DEFINE_bool('quick', False, 'two benchmarks, 2 judging seeds and 1 selection seed, 1/10 of the steps')
  flags.DEFINE_list('benchmarks', [], f'a subset of {", ".join(BENCHMARKS)} (default: all)')


def run(benchmark: Benchmark, method: str, seed: int, workdir: str, num_steps: int) -> dict:
  """One ``fit_ratio`` run, or its saved record: ``{'truth', 'history', 'wall_s', ...}``."""
  path = os.path.join(workdir, benchmark.name, method, f'seed{seed}_steps{num_steps}.json')
  if os.path.exists(path):
    with open(path) as f:
      return json.load(f)
  mean, cov = benchmark.target()
  truth = closed_form.gaussian_kl(mean, cov, np.zeros(len(mean)), np.eye(len(mean)))
  x = np.random.default_rng(seed).multivariate_normal(mean, cov, benchmark.n).astype(np.float32)
  start = time.perf_counter()
  result = fit.fit_ratio(x, noise.isotropic_gaussian(len(mean)), seed=seed, num_steps=num_steps,
                         **benchmark.fit_kwargs, **METHODS[method])
  record = {'truth': truth, 'history': result.history, 'selected_step': result.selected_step,
            'kl': result.kl, 'wall_s': time.perf_counter() - start}
  logging.info('%s %s seed %d: |KL error| %.4f (truth %.3f), step %d kept, %.1f s', benchmark.name, method,
               seed, abs(result.kl - truth), truth, result.selected_step, record['wall_s'])
  os.makedirs(os.path.dirname(path), exist_ok=True)
  write_json_atomically(path, record)
  return record


def error_at(record: dict, budget: int, select: bool) -> float:
  """``|KL estimate - truth|`` at the evaluation a run of ``budget`` steps keeps: the best
  selection score among evaluations up to ``budget`` (the first on ties), or the last one."""
  history = [h for h in record['history'] if h['step'] <= budget]
  if select:
    scores = np.array([h['selection_score'] for h in history], float)
    kept = history[int(np.argmin(np.where(np.isfinite(scores), scores, np.inf)))]
  else:
    kept = history[-1]
  return abs(kept['kl'] - record['truth'])


def best_fixed(errors_by_magnitude: dict[float, list[float]]) -> float:
  """The ``M`` of the grid with the smallest mean error on the selection seeds (ties: smaller)."""
  return min(errors_by_magnitude, key=lambda m: (np.mean(errors_by_magnitude[m]), m))


def _method_of(magnitude: float) -> str:
  return 'nce' if magnitude == 1.0 else f'm{magnitude:g}'  # N²CE at M = 1 is NCE, loss for loss


def study(benchmark: Benchmark, workdir: str, judge_seeds, select_seeds, num_steps: int) -> dict:
  """All runs of one benchmark: ``{'best_m', 'runs': {label: [record per judging seed]}}``."""
  selection_runs = {m: [run(benchmark, _method_of(m), s, workdir, num_steps) for s in select_seeds]
                    for m in GRID}
  by_magnitude = {m: [error_at(r, num_steps, select=False) for r in records]
                  for m, records in selection_runs.items()}
  best_m = best_fixed(by_magnitude)
  methods = {'nce': 'nce', 'm100': 'm100', 'best': _method_of(best_m), **{rule: rule for rule in RULES}}
  runs = {label: [run(benchmark, method, s, workdir, num_steps) for s in judge_seeds]
          for label, method in methods.items()}
  wall_s = sum(r['wall_s'] for records in [*selection_runs.values(), *runs.values()] for r in records)
  return {'best_m': best_m, 'selection_errors': by_magnitude, 'runs': runs, 'wall_s': wall_s}


def _errors(records, budget, select):
  return np.array([error_at(r, budget, select) for r in records])


def _figure(benchmark: Benchmark, result: dict, num_steps: int, path: str) -> str:
  figure, (left, right) = plotting.panels(2, columns=2)
  budgets = sorted({h['step'] for h in result['runs']['nce'][0]['history']})
  for label in LABELS:
    curves = np.array([[error_at(r, b, select=False) for b in budgets] for r in result['runs'][label]])
    name = LABELS[label] + (f' ({result["best_m"]:g})' if label == 'best' else '')
    plotting.seed_band(left, budgets, curves, name)
  plotting.label(left, 'steps (budget)', '|KL error| at the last step, nats', title=benchmark.title,
                 log_y=True)
  for label, style, color in zip(RULES, ('-', ':', '--'), ('C3', 'C4', 'C5')):
    for i, r in enumerate(result['runs'][label]):
      right.plot([h['step'] for h in r['history']], [h['magnitude'] for h in r['history']], style,
                 color=color, alpha=0.6, label=LABELS[label] if i == 0 else None)
  plotting.label(right, 'step', 'M in force', title='the automatic magnitudes, per seed', log_y=True)
  return plotting.save(figure, path, legend_axes=[left, right])


def _cell(values) -> str:
  return f'{np.mean(values):.3g} ± {tables.sample_std(values) / math.sqrt(len(values)):.2g}'


def tally(results: dict, num_steps: dict, method: str, select: bool) -> dict:
  """Benchmarks where ``method`` is not worse than NCE, not worse than M = 100, and ties or
  beats the best fixed M, by the paired 95% interval of the error difference at full steps
  (every method read with or without selection alike)."""
  counts = dict(not_worse_than_nce=0, not_worse_than_m100=0, ties_or_beats_best=0, worst_excess=-np.inf)
  for name, result in results.items():
    errs = {k: _errors(v, num_steps[name], select) for k, v in result['runs'].items()}
    counts['not_worse_than_nce'] += statistics.paired(errs[method], errs['nce']).sign <= 0
    counts['not_worse_than_m100'] += statistics.paired(errs[method], errs['m100']).sign <= 0
    counts['ties_or_beats_best'] += statistics.paired(errs[method], errs['best']).sign <= 0
    counts['worst_excess'] = max(counts['worst_excess'], float(np.mean(errs[method] - errs['nce'])))
  return counts


def render(results: dict, num_steps: dict, out: str, total_wall: float) -> str:
  figures_dir = os.path.splitext(out)[0]
  os.makedirs(figures_dir, exist_ok=True)
  lines = [INTRO.format(grid=', '.join(f'{m:g}' for m in GRID))] + _summary(results, num_steps)
  for select in (False, True):
    lines += [f'## {"With held-out selection" if select else "At the last step (fit_ratio default)"}', '']
    if select:
      lines += ['The same runs read at the evaluation `fit_ratio(select=True)` keeps (the best held-out '
                'objective; NCE\'s for the automatic rules), the same best fixed M.', '']
    lines += _tables(results, num_steps, select)
  if 'pair10d' in results:
    lines += ['', '## The 10-D pair at every budget', '',
              'The error at the last step of a run of that many steps (the default), and at the step '
              'held-out selection keeps.', '']
    result, budgets = results['pair10d'], (1000, 2000, 4000, 8000)
    rows = []
    for label in LABELS:
      for select in (False, True):
        rows.append([f'{LABELS[label]}{", selected" if select else ""}']
                    + [_cell(_errors(result['runs'][label], b, select)) for b in budgets])
    lines += [tables.markdown_table(['method'] + [f'{b:,} steps' for b in budgets], rows), '']
  lines += ['', '## Figures', '']
  for name, result in results.items():
    path = _figure(BENCHMARKS[name], result, num_steps[name], os.path.join(figures_dir, f'{name}.png'))
    lines.append(f'![{name}]({os.path.relpath(path, os.path.dirname(out))})')
  lines += ['', f'Total run time of the runs on this page: {total_wall / 60:.0f} min on 2 CPU cores.', '']
  return '\n'.join(lines)


def _summary(results: dict, num_steps: dict) -> list[str]:
  """Which candidate the default should be (step 4 of the issue's rule), read at the last step:
  never worse than NCE on any benchmark, then the smallest worst mean excess over NCE."""
  counts = {m: tally(results, num_steps, m, select=False) for m in (*RULES, 'm100')}
  safe = [m for m in counts if counts[m]['not_worse_than_nce'] == len(results)]
  lines = ['## Summary', '']
  for m, c in counts.items():
    lines.append(f'- {LABELS[m]}: not worse than NCE on {c["not_worse_than_nce"]}/{len(results)}, ties or '
                 f'beats the best fixed M on {c["ties_or_beats_best"]}/{len(results)}, worst mean excess '
                 f'over NCE {c["worst_excess"]:+.3g} nats.')
  if safe:
    choice = min(safe, key=lambda m: counts[m]['worst_excess'])
    default = ('the rule of `fit_ratio`\'s default' if choice == 'exp_kl'
               else 'not `fit_ratio`\'s default (exp KL)')
    lines += ['', f'Never worse than NCE on any benchmark: {", ".join(LABELS[m] for m in safe)}; the '
              f'smallest worst case among them: **{LABELS[choice]}**, {default}.']
  if 'pair10d' in results:
    runs = results['pair10d']['runs']
    cells = [f'{b:,}: {_interval(_errors(runs["exp_kl"], b, False), _errors(runs["nce"], b, False))}'
             for b in (1000, 2000, 4000, 8000)]
    lines += ['', 'On the 10-D pair, the default (exp KL) minus NCE, by budget: ' + '; '.join(cells) + '.']
  return lines + ['']


def _tables(results: dict, num_steps: dict, select: bool) -> list[str]:
  header = ['benchmark', 'KL', 'steps'] + [LABELS[k] for k in LABELS]
  pairs = [(rule, other) for rule in RULES for other in ('nce', 'best')]
  differences = ['benchmark'] + [f'{LABELS[rule]} − {LABELS[other]}' for rule, other in pairs]
  rows, difference_rows = [], []
  for name, result in results.items():
    steps = num_steps[name]
    errs = {k: _errors(v, steps, select) for k, v in result['runs'].items()}
    truth = result['runs']['nce'][0]['truth']
    rows.append([BENCHMARKS[name].title, f'{truth:.3g}', f'{steps:,}']
                + [_cell(errs[k]) + (f' (M = {result["best_m"]:g})' if k == 'best' else '') for k in LABELS])
    difference_rows.append([BENCHMARKS[name].title]
                           + [_interval(errs[rule], errs[other]) for rule, other in pairs])
  lines = [tables.markdown_table(header, rows), '',
           'Paired differences in |KL error| (negative: the rule is better):', '',
           tables.markdown_table(differences, difference_rows), '']
  for method in (*RULES, 'm100', 'nce'):
    counts = tally(results, num_steps, method, select)
    lines.append(f'- **{LABELS[method]}**: not worse than NCE on {counts["not_worse_than_nce"]} of '
                 f'{len(results)} benchmarks, not worse than M = 100 on {counts["not_worse_than_m100"]}, '
                 f'ties or beats the best fixed M on {counts["ties_or_beats_best"]}; its worst mean excess '
                 f'over NCE {counts["worst_excess"]:+.3g} nats.')
  return lines + ['']


def _interval(a, b) -> str:
  i = statistics.paired(a, b)
  return f'{i.mean:+.3g} [{i.low:+.3g}, {i.high:+.3g}]'


def main(argv):
  del argv
  names = FLAGS.benchmarks or (list(QUICK) if FLAGS.quick else list(BENCHMARKS))
  unknown = sorted(set(names) - set(BENCHMARKS))
  if unknown:
    raise app.UsageError(f'--benchmarks: {", ".join(unknown)} not among {", ".join(BENCHMARKS)}')
  judge, select = (JUDGE_SEEDS[:2], SELECT_SEEDS[:1]) if FLAGS.quick else (JUDGE_SEEDS, SELECT_SEEDS)
  num_steps = {n: BENCHMARKS[n].num_steps // (10 if FLAGS.quick else 1) for n in names}
  results = {n: study(BENCHMARKS[n], FLAGS.workdir, judge, select, num_steps[n]) for n in names}
  total_wall = sum(result['wall_s'] for result in results.values())
  page = render(results, num_steps, FLAGS.out, total_wall)
  with open(FLAGS.out, 'w') as f:
    f.write(page)
  print(page)


if __name__ == '__main__':
  define_flags()
  app.run(main)
