"""The figures that decide the claims: each claim's numbers against M (or d), seeds as error bars."""

import os

import numpy as np

from experiments.core import plotting
from experiments.report import benchmarks
from experiments.report.claims import finals, steps


def _mean_std(values):
  values = np.asarray(values, float)
  return values.mean(), values.std(ddof=1) if len(values) > 1 else 0.0


def gaussian_against_magnitude(results, path: str) -> str | None:
  """(b) Parameter error against M (N²CE) and against ν (NCE with ν real noise samples), a panel
  per sample size, with the Cramér–Rao bound and the MLE of the same samples as lines."""
  if 'gaussian_m' not in results:
    return None
  sizes = sorted({c['data.num_train'] for c in results['gaussian_m'].cells()})
  figure, axes = plotting.panels(len(sizes), columns=len(sizes), width=5.0, height=3.8)
  for ax, n in zip(axes, sizes):
    by_m = dict(sorted(results['gaussian_m'].by('magnitude', num_train=n).items()))
    plotting.seed_points(ax, list(by_m), [finals(s, 'param_error') for s in by_m.values()], 'N²CE, M')
    if 'gaussian_nu' in results:
      by_nu = dict(sorted(results['gaussian_nu'].by('noise_ratio', num_train=n).items()))
      plotting.seed_points(ax, list(by_nu), [finals(s, 'param_error') for s in by_nu.values()],
                           'NCE with ν real noise samples, ν', marker='s')
    truth = next(iter(by_m.values()))[0]['truth']
    plotting.reference(ax, truth['cramer_rao_param_error'], 'Cramér–Rao bound (trace / n)')
    plotting.reference(ax, truth['mle_param_error'], 'MLE of the same samples', style=':', color='grey')
    plotting.label(ax, 'M (or ν)', 'parameter error ‖μ̂ − μ‖² + ‖Σ̂ − Σ‖²', title=f'n = {n}', log_x=True,
                   log_y=True)
  return plotting.save(figure, path)


def chasm_steps(results, path: str) -> str | None:
  """(c) Steps to stay within 0.1 nat against M, a panel per depth, with NCE and NWJ (M → ∞) as
  lines; a run that never got there sits at its last step (the dotted line)."""
  depths = [c for c in benchmarks.CHASMS
            if f'chasm{c.kl}_n2ce' in results and f'chasm{c.kl}_baselines' in results]
  if not depths:
    return None
  figure, axes = plotting.panels(len(depths), columns=len(depths), width=5.0, height=3.8)
  for ax, chasm in zip(axes, depths):
    by_m = dict(sorted(results[f'chasm{chasm.kl}_n2ce'].by('magnitude').items()))
    baselines = results[f'chasm{chasm.kl}_baselines']
    plotting.seed_points(ax, list(by_m), [steps(s) for s in by_m.values()], 'N²CE')
    for name, style in (('nce', '--'), ('nwj', '-.')):
      mean, std = _mean_std(steps(baselines.cell(name=name)))
      plotting.reference(ax, mean, f'{name.upper()} ({mean:.0f} ± {std:.0f})', style=style)
    last = next(iter(by_m.values()))[0]['steps']
    plotting.reference(ax, last, 'run length: "never"', style=':', color='grey')
    plotting.label(ax, 'M', 'steps to stay within 0.1 nat', title=f'{chasm.kl} nats', log_x=True)
  return plotting.save(figure, path)


def mutual_information(results, path: str) -> str | None:
  """(d) The MI estimate over the truth against d for the seeded sweeps."""
  pairs = [(d, mi) for d, mi in benchmarks.mutual_information_pairs(False) if f'mi{d}' in results]
  if not pairs:
    return None
  figure, (ax,) = plotting.panels(1, width=6.0, height=4.0)
  dims = [d for d, _ in pairs]
  lines = {'NCE': lambda d: results[f'mi{d}'].cell(name='nce'),
           'NWJ': lambda d: results[f'mi{d}'].cell(name='nwj')}
  magnitudes = {'N²CE, M = 100': lambda d: 100.0,
                'N²CE, M = min(e^MI, 1e12)': lambda d: benchmarks.oracle_magnitude(dict(pairs)[d])}
  for label, magnitude in magnitudes.items():
    if all(f'mi{d}_n2ce' in results and magnitude(d) in results[f'mi{d}_n2ce'].by('magnitude') for d in dims):
      lines[label] = lambda d, m=magnitude: results[f'mi{d}_n2ce'].by('magnitude')[m(d)]
  for label, summaries in lines.items():
    ratios = [finals(summaries(d), 'mi') / summaries(d)[0]['truth']['mi'] for d in dims]
    plotting.seed_points(ax, dims, ratios, label)
  plotting.reference(ax, 1.0, 'truth')
  plotting.label(ax, 'dimension d (MI = d / 4 nats)', 'MI estimate / true MI', log_x=True)
  return plotting.save(figure, path)


def draw(results, directory: str) -> dict[str, str]:
  """Every figure whose sweeps ran, ``{section: path}``, written into ``directory``."""
  os.makedirs(directory, exist_ok=True)
  drawn = {'b': gaussian_against_magnitude(results, os.path.join(directory, 'gaussian_against_m.png')),
           'c': chasm_steps(results, os.path.join(directory, 'chasm_steps_against_m.png')),
           'd': mutual_information(results, os.path.join(directory, 'mutual_information.png'))}
  return {section: path for section, path in drawn.items() if path}
