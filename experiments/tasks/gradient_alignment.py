"""Benchmark (a): the N^2CE gradient against the exact MLE gradient on a 2-D Gaussian.

At a fixed model ``p_a`` away from the optimum (normalised, ``c = 0``), the gradient of
``L_M`` in the Gaussian's shape parameters is compared for each ``M`` with the closed-form
gradient of the expected negative log-likelihood ``-E_q*[log p_a]``: cosine, bias norm, and
the fitted slope of log bias against log M. Expectations use ``num_samples`` common samples
for every ``M``; the NWJ gradient on the same samples (the ``M -> inf`` limit) is the
reference for the bias, so Monte-Carlo error cancels and the slope is the ``M`` dependence.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from experiments.core import plotting
from experiments.core.checks import ConfigError, number
from experiments.core.tables import markdown_table
from nnce_jax import models, noise, objectives

TARGET_MEAN, TARGET_COV = np.array([0.5, -0.3]), np.array([[0.49, 0.1], [0.1, 0.3]])
MODEL_MEAN, MODEL_SD = np.array([0.2, 0.1]), 0.9  # p_a = N(MODEL_MEAN, MODEL_SD^2 I), c = 0


def _params():
  return {'params': {'whitened_mean': jnp.asarray(MODEL_MEAN / MODEL_SD, jnp.float32)[None],
                     'log_precision_diag': jnp.full((1, 2), -2 * np.log(MODEL_SD), jnp.float32),
                     'precision_offdiag': jnp.zeros((1, 2, 2)), 'log_normalizer': jnp.zeros((1,))}}


def check(config) -> None:
  number(config, 'data.num_samples', low=2, integer=True)
  magnitudes = config.data.magnitudes
  if len(magnitudes) < 2 or not all(isinstance(m, (int, float)) and 1 <= m <= 1e12 for m in magnitudes):
    raise ConfigError(f'config.data.magnitudes={magnitudes!r} is invalid; it must be two or more values of '
                      'M in [1, 1e12]')


def _shape_gradient(model, params, loss, x, y):
  g = jax.grad(lambda p: loss(model.apply(p, x)[:, 0], model.apply(p, y)[:, 0]))(params)['params']
  return jnp.concatenate([g['whitened_mean'].ravel(), g['log_precision_diag'].ravel(),
                          g['precision_offdiag'].ravel()])


def evaluate(config, workdir: str) -> dict:
  """Writes ``gradient_alignment.{json,md,png}``; returns the results and their ``table``."""
  base = noise.isotropic_gaussian(2)
  model = models.GaussianRatio(base=base)
  params = _params()
  target = noise.Gaussian.from_covariance(jnp.asarray(TARGET_MEAN, jnp.float32),
                                          jnp.asarray(TARGET_COV, jnp.float32))
  x_key, y_key = jax.random.split(jax.random.PRNGKey(config.seed))
  x = target.sample(x_key, (config.data.num_samples,))
  y = base.sample(y_key, (config.data.num_samples,))
  # -E_q* log p_a by autodiff of its closed form: E[(x-m)^T P (x-m)] = tr(P S) + (mu-m)^T P (mu-m).
  def expected_nll(p):
    means, covs = models.gaussian_ratio_moments(p)
    precision = jnp.linalg.inv(covs[0])
    centred = TARGET_MEAN - means[0]
    return 0.5 * (jnp.trace(precision @ TARGET_COV) + centred @ precision @ centred
                  + jnp.linalg.slogdet(covs[0])[1])
  g = jax.grad(expected_nll)(params)['params']
  exact = jnp.concatenate([g['whitened_mean'].ravel(), g['log_precision_diag'].ravel(),
                           g['precision_offdiag'].ravel()])
  limit = _shape_gradient(model, params, lambda d, n: objectives.nwj_loss(d, n)[0], x, y)
  rows = []
  for magnitude in config.data.magnitudes:
    loss = lambda d, n, m=magnitude: objectives.noisier_nce_loss(d, n, m)[0]  # noqa: E731
    g_m = _shape_gradient(model, params, loss, x, y)
    cosine = float(jnp.dot(g_m, exact) / (jnp.linalg.norm(g_m) * jnp.linalg.norm(exact)))
    rows.append({'magnitude': magnitude, 'cosine_exact_mle': cosine,
                 'bias_norm': float(jnp.linalg.norm(g_m - limit)),
                 'error_vs_exact_mle': float(jnp.linalg.norm(g_m - exact))})
  ms = np.array([r['magnitude'] for r in rows])
  bias = np.array([r['bias_norm'] for r in rows])
  large = ms >= 10  # the asymptotic regime
  slope = float(np.polyfit(np.log(ms[large]), np.log(bias[large]), 1)[0])
  result = {'rows': rows, 'bias_slope': slope, 'squared_bias_slope': 2 * slope,
            'mc_floor': float(jnp.linalg.norm(limit - exact)), 'num_samples': config.data.num_samples}
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, 'gradient_alignment.json'), 'w') as f:
    json.dump(result, f, indent=2)
  result['plot'] = os.path.join(workdir, 'gradient_alignment.png')
  _plot(rows, slope, result['plot'])
  result['table'] = _table(result)
  with open(os.path.join(workdir, 'gradient_alignment.md'), 'w') as f:
    f.write(result['table'])
  return result


def _table(result) -> str:
  rows = [[f'{r["magnitude"]:g}', f'{r["cosine_exact_mle"]:.6f}', f'{r["bias_norm"]:.3g}',
           f'{r["bias_norm"] ** 2:.3g}'] for r in result['rows']]
  return (f'{result["num_samples"]:,} common samples\n\n'
          + markdown_table(['M', 'cosine with the exact MLE gradient', 'bias norm vs M → ∞', 'squared bias'],
                           rows)
          + f'\n\nFitted slope of log bias norm against log M (M ≥ 10): **{result["bias_slope"]:.3f}**; '
          f'of the squared bias: {result["squared_bias_slope"]:.3f}. Monte-Carlo floor of the limit against '
          f'the exact gradient: {result["mc_floor"]:.2g}.\n')


def _plot(rows, slope, path):
  ms = [r['magnitude'] for r in rows]
  bias = np.array([r['bias_norm'] for r in rows])
  figure, (left, right) = plotting.panels(2)
  left.plot(ms, bias, 'o-', label=f'‖∇L_M − ∇L_∞‖ (fitted slope {slope:.2f})')
  left.plot(ms, bias**2, 's--', label=f'squared (slope {2 * slope:.2f})')
  left.plot(ms, bias[0] / np.asarray(ms) ** 2, 'k:', label='∝ 1/M², the paper\'s rate')
  plotting.label(left, 'M', 'gradient bias against M → ∞', log_x=True, log_y=True)
  right.plot(ms, [r['cosine_exact_mle'] for r in rows], 'o-')
  plotting.label(right, 'M', 'cosine with the exact MLE gradient', log_x=True)
  plotting.save(figure, path)
