"""The figures that decide the claims: each claim's numbers against M (or d), seeds as error bars."""

import os

import numpy as np

from experiments.core import plotting
from experiments.report.benchmarks import CHASM_STUDIES, GAUSSIAN_M, GAUSSIAN_NU, MI_STUDIES, oracle_magnitude
from experiments.report.claims import finals, steps


def _mean_std(values):
  values = np.asarray(values, float)
  return values.mean(), values.std(ddof=1) if len(values) > 1 else 0.0


def gaussian_against_magnitude(results, path: str) -> str | None:
  """(b) Parameter error against M (N²CE, mean and median over seeds) and against ν (NCE with ν real
  noise samples), a panel per sample size, with the Cramér–Rao bound and the MLE of the same samples as
  lines."""
  if GAUSSIAN_M not in results:
    return None
  sizes = sorted({c['data.num_train'] for c in results[GAUSSIAN_M].cells()})
  figure, axes = plotting.panels(len(sizes), columns=len(sizes), width=5.0, height=3.8)
  for ax, n in zip(axes, sizes):
    by_m = dict(sorted(results[GAUSSIAN_M].by('magnitude', num_train=n).items()))
    errors = [finals(s, 'param_error') for s in by_m.values()]
    plotting.seed_points(ax, list(by_m), errors, 'N²CE, M')
    # A few fixed samples send the error far away: the median shows the typical seed.
    ax.plot(list(by_m), [np.median(e) for e in errors], ls='--', marker='.', color='C0', label='N²CE, median')
    if GAUSSIAN_NU in results:
      by_nu = dict(sorted(results[GAUSSIAN_NU].by('noise_ratio', num_train=n).items()))
      plotting.seed_points(ax, list(by_nu), [finals(s, 'param_error') for s in by_nu.values()],
                           'NCE with ν real noise samples, ν', marker='s')
    seeds = next(iter(by_m.values()))  # the references over the same seeds as the points
    plotting.reference(ax, np.mean([s['references']['cramer_rao_param_error'] for s in seeds]),
                       'Cramér–Rao bound (trace / n)')
    plotting.reference(ax, np.mean([s['references']['mle_param_error'] for s in seeds]),
                       'MLE of the same samples',
                       style=':', color='grey')
    plotting.label(ax, 'M (or ν)', 'parameter error ‖μ̂ − μ‖² + ‖Σ̂ − Σ‖²', title=f'n = {n}', log_x=True,
                   log_y=True)
  return plotting.save(figure, path)


def chasm_steps(results, path: str) -> str | None:
  """(c) Steps to stay within the depth's tolerance against M, a panel per depth, with NCE and NWJ (M → ∞) as
  lines; a run that never got there sits at its last step (the dotted line)."""
  depths = [g for g in CHASM_STUDIES if g.n2ce in results and g.baselines in results]
  if not depths:
    return None
  figure, axes = plotting.panels(len(depths), columns=len(depths), width=5.0, height=3.8)
  for ax, group in zip(axes, depths):
    chasm = group.chasm
    by_m = dict(sorted(results[group.n2ce].by('magnitude').items()))
    baselines = results[group.baselines]
    plotting.seed_points(ax, list(by_m), [steps(s) for s in by_m.values()], 'N²CE')
    for name, style in (('nce', '--'), ('nwj', '-.')):
      mean, std = _mean_std(steps(baselines.cell(name=name)))
      plotting.reference(ax, mean, f'{name.upper()} ({mean:.0f} ± {std:.0f})', style=style)
    last = next(iter(by_m.values()))[0]['steps']
    plotting.reference(ax, last, 'run length: "never"', style=':', color='grey')
    plotting.label(ax, 'M', f'steps to stay within {chasm.tolerance:g} nat', title=f'{chasm.kl} nats',
                   log_x=True)
  return plotting.save(figure, path)


def mutual_information(results, path: str) -> str | None:
  """(d) The MI estimate over the truth against d for the seeded sweeps."""
  groups = [g for g in MI_STUDIES if g.baselines in results]
  if not groups:
    return None
  figure, (ax,) = plotting.panels(1, width=6.0, height=4.0)
  dims = [g.dim for g in groups]
  lines = {'NCE': lambda g: results[g.baselines].cell(name='nce'),
           'NWJ': lambda g: results[g.baselines].cell(name='nwj')}
  magnitudes = {'N²CE, M = 100': lambda g: 100.0,
                'N²CE, M = min(e^MI, 1e12)': lambda g: oracle_magnitude(g.mutual_information)}
  for label, magnitude in magnitudes.items():
    if all(g.n2ce in results and magnitude(g) in results[g.n2ce].by('magnitude') for g in groups):
      lines[label] = lambda g, m=magnitude: results[g.n2ce].by('magnitude')[m(g)]
  for label, summaries in lines.items():
    ratios = [finals(summaries(g), 'mi') / summaries(g)[0]['truth']['mi'] for g in groups]
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
