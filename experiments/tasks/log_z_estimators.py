"""log Z estimators against the number of samples on Gaussian pairs of growing KL.

Target ``pi~(x) = exp(-|x - mu|^2 / 2 sigma^2)`` in ``d`` dimensions (``log Z = d log sigma
+ d log sqrt(2 pi)``), proposal ``q = N(0, I)``; ``|mu|`` is set so that ``KL(pi || q)`` takes
each value of ``data.kl_values``. Both samples are exact, ``N`` of each. Every estimator of
``nnce_jax.normalizers`` runs on the same samples; over ``data.num_seeds`` seeds we report the
mean and std (ddof = 1) of ``|log Z estimate - log Z|``, how often the truth lies within 2 claimed
standard errors, and how far apart the four pooled estimators (optimal bridge, RLR, MIS,
NCE) land.
"""

import json
import logging
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments.core import plotting
from experiments.core.checks import ConfigError, get_field, number
from experiments.core.tables import markdown_table, sample_std
from nnce_jax import normalizers
from nnce_jax.noise import HALF_LOG_2PI

POOLED = ('optimal_bridge', 'reverse_logistic_regression', 'multiple_importance_sampling', 'nce')
SHOWN = ('importance_sampling', 'reverse_importance_sampling', 'geometric_bridge', 'optimal_bridge')



def check(config) -> None:
  number(config, 'data.dim', low=1, integer=True)
  number(config, 'data.scale', low=0, low_open=True)
  number(config, 'data.num_seeds', low=1, integer=True)
  for field, low, integer in (('kl_values', 0, False), ('sample_sizes', 2, True)):
    values = get_field(config, f'data.{field}')
    ok = isinstance(values, (tuple, list)) and len(values) > 0
    if not ok or not all(isinstance(v, int if integer else (int, float)) and v >= low for v in values):
      raise ConfigError(f'config.data.{field}={values!r} is invalid; it must be a non-empty tuple of '
                        f'{"integers" if integer else "numbers"} >= {low}')
  for kl in config.data.kl_values:
    try:
      shift_for_kl(kl, config.data.dim, config.data.scale)
    except ValueError as error:
      raise ConfigError(str(error)) from None


def shift_for_kl(kl: float, dim: int, scale: float) -> float:
  """``|mu|`` giving ``KL(N(mu, scale^2 I) || N(0, I)) = kl``."""
  floor = 0.5 * dim * (scale**2 - 1 - np.log(scale**2))
  if kl < floor:
    raise ValueError(f'config.data.kl_values holds {kl}, below {floor:.3f}, the KL of the '
                     f'unshifted pair at data.scale={scale}')
  return float(np.sqrt(2 * (kl - floor)))


def _cell(key, n, dim, shift, scale):
  mean = jnp.zeros(dim).at[0].set(shift)
  target_key, proposal_key = jax.random.split(key)
  x = mean + scale * jax.random.normal(target_key, (n, dim))
  y = jax.random.normal(proposal_key, (n, dim))
  log_ratio = lambda z: (-0.5 * jnp.sum(jnp.square((z - mean) / scale), -1)  # noqa: E731
                         + 0.5 * jnp.sum(jnp.square(z), -1) + dim * HALF_LOG_2PI)
  return normalizers.estimate_all(log_ratio(x), log_ratio(y))


def evaluate(config, workdir: str) -> dict:
  """Writes ``normalizers.{md,json,png}`` in ``workdir``; returns the results and ``table``."""
  d, scale = config.data.dim, config.data.scale
  log_z = d * (np.log(scale) + HALF_LOG_2PI)
  keys = jax.random.split(jax.random.PRNGKey(config.seed), config.data.num_seeds)
  os.makedirs(workdir, exist_ok=True)
  results, started = [], time.perf_counter()
  for kl in config.data.kl_values:
    shift = shift_for_kl(kl, d, scale)
    for n in config.data.sample_sizes:
      cell = jax.jit(jax.vmap(lambda k: _cell(k, n, d, shift, scale)))(keys)  # noqa: B023
      errors = {name: np.abs(np.asarray(e.log_z) - log_z) for name, e in cell.items()}
      pooled = np.stack([np.asarray(cell[name].log_z) for name in POOLED])
      results.append({
          'kl': kl, 'n': n,
          'abs_error': {k: [float(np.mean(v)), sample_std(v)] for k, v in errors.items()},
          'coverage_2se': {k: float(np.mean(errors[k] <= 2 * np.asarray(e.std_error)))
                           for k, e in cell.items()},
          'pooled_spread': float(np.max(pooled.max(0) - pooled.min(0))),
          'iterations': {k: float(np.mean(cell[k].iterations)) for k in POOLED}})
      logging.info('KL %g, N %d: %s', kl, n, ', '.join(
          f'{k} {results[-1]["abs_error"][k][0]:.3g}' for k in SHOWN))
  wall = time.perf_counter() - started
  table = _table(results, config, wall)
  with open(os.path.join(workdir, 'normalizers.md'), 'w') as f:
    f.write(table)
  summary = {'log_z': log_z, 'wall_time_s': wall, 'results': results}
  with open(os.path.join(workdir, 'normalizers.json'), 'w') as f:
    json.dump(summary, f, indent=2)
  _plot(results, config, os.path.join(workdir, 'normalizers.png'))
  return {**summary, 'table': table}


def _table(results, config, wall):
  header = (['KL (nats)', 'N per side'] + list(SHOWN)
            + ['pooled spread', 'iterations (bridge / RLR / MIS / NCE)'])
  rows = []
  for r in results:
    cells = [f'{r["abs_error"][k][0]:.3g} ± {r["abs_error"][k][1]:.2g} ({r["coverage_2se"][k]:.0%})'
             for k in SHOWN]
    iterations = ' / '.join(f'{r["iterations"][k]:.1f}' for k in POOLED)
    rows.append([f'{r["kl"]:g}', f'{r["n"]:g}'] + cells + [f'{r["pooled_spread"]:.1e}', iterations])
  note = (f'|log Z estimate - log Z|, mean ± std (ddof = 1) over {config.data.num_seeds} seeds, '
          f'd = {config.data.dim}, '
          f'target scale {config.data.scale}; in brackets: the share of seeds whose error is within '
          f'2 claimed standard errors. Pooled spread: the largest gap between the optimal bridge, '
          f'RLR, pooled MIS and NCE on one seed. {wall:.0f} s wall.')
  return note + '\n\n' + markdown_table(header, rows) + '\n'


def _plot(results, config, path):
  kls = list(config.data.kl_values)
  figure, axes = plotting.panels(len(kls), columns=len(kls), width=4.0)
  for ax, kl in zip(axes, kls):
    cells = [r for r in results if r['kl'] == kl]
    for name in SHOWN:
      ax.errorbar([c['n'] for c in cells], [c['abs_error'][name][0] for c in cells],
                  yerr=[c['abs_error'][name][1] for c in cells], marker='o', capsize=3, label=name)
    plotting.label(ax, 'samples per side N', '|log Z estimate − log Z|', title=f'KL = {kl:g} nats',
                   log_x=True, log_y=True)
  plotting.save(figure, path, legend_axes=axes[-1:])
