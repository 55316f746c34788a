"""2-D toy densities: test NLL with the normaliser by quadrature, and a density heat map."""

import os

import jax
import jax.numpy as jnp
import numpy as np

from experiments.core import plotting
from experiments.core.checks import ConfigError, number, one_of
from experiments.core.task import Task
from experiments.tasks.common.likelihood import estimate_likelihood
from experiments.tasks.common.ratio import data_keys, log_ratio, ratio_parts
from nnce_jax import noise
from nnce_jax.data import toy2d


def check(config) -> None:
  one_of(config, 'data.dataset', toy2d.DATASETS)
  number(config, 'data.grid_size', low=2, integer=True)
  number(config, 'data.grid_limit', low=0, low_open=True)
  if config.model.name == 'gaussian':
    raise ConfigError('config.model.name=gaussian is invalid for task toy_densities; allowed values: mlp')


def build(config) -> Task:
  name, limit, size = config.data.dataset, config.data.grid_limit, config.data.grid_size
  fit_key, test_key, _ = data_keys(config)
  fit = toy2d.sample(name, fit_key, 10000)
  base = noise.DiagonalGaussian(jnp.mean(fit, 0), jnp.std(fit, 0))  # q0 fitted to the data
  x_test = toy2d.sample(name, test_key, config.data.num_test)

  def sample_data(key, n):
    return toy2d.sample(name, key, n)

  model, params, loss_fn, sample_batch = ratio_parts(config, base, sample_data, dim=2)
  axis = jnp.linspace(-limit, limit, size)
  grid = jnp.stack(jnp.meshgrid(axis, axis, indexing='xy'), -1).reshape(-1, 2)
  log_cell = 2 * jnp.log(axis[1] - axis[0])

  def log_density_grid(params):
    return log_ratio(model, params, grid) + base.log_prob(grid)  # log exp(s) q0, unnormalised

  def quadrature_log_z(params):
    return jax.nn.logsumexp(log_density_grid(params)) + log_cell

  @jax.jit
  def eval_fn(params):
    log_z = quadrature_log_z(params)
    log_p = log_ratio(model, params, x_test) + base.log_prob(x_test) - log_z
    # The test NLL's Monte-Carlo standard error: the resolution of the held-out set, and the
    # report's non-inferiority margin.
    return {'test_nll': -jnp.mean(log_p), 'log_z': log_z,
            'test_nll_standard_error': jnp.std(log_p) / jnp.sqrt(log_p.shape[0])}

  def report(params, workdir):
    likelihood, samples = estimate_likelihood(config, lambda x: log_ratio(model, params, x), base,
                                              x_test, float(jax.jit(quadrature_log_z)(params)))
    density = np.exp(np.asarray(jax.jit(log_density_grid)(params))).reshape(size, size)
    figure, (left, middle, right) = plotting.panels(3, width=4.0, height=4.0)
    left.hist2d(*np.asarray(x_test).T, bins=size // 2, range=[[-limit, limit]] * 2, cmap='viridis')
    left.set_title(f'{name}: data')
    for ax in (middle, right):
      ax.imshow(density, origin='lower', extent=[-limit, limit, -limit, limit], cmap='viridis')
    middle.set_title(f'learned density ({config.objective.name})')
    shown = samples[:2000]
    right.scatter(*shown.T, s=1, c='w', alpha=0.5)
    right.set_xlim(-limit, limit)
    right.set_ylim(-limit, limit)
    right.set_title(f'{len(shown)} MALA samples from it')
    for ax in (left, middle, right):
      ax.set_aspect('equal')
      ax.set_xticks([])
      ax.set_yticks([])
    path = plotting.save(figure, os.path.join(workdir, 'density.png'))
    return {'density_plot': path, 'likelihood': likelihood}

  noise_nll = float(-jnp.mean(base.log_prob(x_test)))
  return Task(init_params=params, loss_fn=loss_fn, eval_fn=eval_fn, truth={'log_z': 0.0},
              references={'noise_nll': noise_nll},
              table_metrics=('test_nll', 'log_z'), report=report, sample_batch=sample_batch)
