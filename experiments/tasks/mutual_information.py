"""TRE's high-dimensional mutual information: ``q*`` a Gaussian of correlated 2 x 2 blocks,
``q0 = N(0, I)`` the product of its marginals, so ``MI = KL(q* || q0) = E_q*[log q*/q0]``.

Each block has correlation ``rho = sqrt(1 - exp(-4 MI / d))``, giving ``MI = -(d/4) log(1 - rho^2)``.
"""

import jax
import jax.numpy as jnp
import numpy as np

from experiments.core.checks import ConfigError, number
from experiments.core.task import Task
from experiments.tasks.common.likelihood import estimate_likelihood
from experiments.tasks.common.ratio import exact_log_z, fixed_samples, kl_metrics, log_ratio, ratio_parts
from nnce_jax import noise


def check(config) -> None:
  number(config, 'data.dim', low=2, integer=True)
  if config.data.dim % 2:
    raise ConfigError(f'config.data.dim={config.data.dim} is invalid; it must be even (2 x 2 blocks)')
  number(config, 'data.mutual_information', low=0, low_open=True)
  number(config, 'data.tolerance', low=0, low_open=True)


def block_correlation(dim: int, mutual_information: float) -> float:
  return float(np.sqrt(1.0 - np.exp(-4.0 * mutual_information / dim)))


def build(config) -> Task:
  d, mi = config.data.dim, config.data.mutual_information
  rho = block_correlation(d, mi)
  block = np.array([[1.0, rho], [rho, 1.0]])
  covariance = np.kron(np.eye(d // 2), block)
  base = noise.isotropic_gaussian(d)
  target = noise.Gaussian.from_covariance(jnp.zeros(d), jnp.asarray(covariance, jnp.float32))
  _, x_test, y_test, sample_data = fixed_samples(config, target, base)

  model, params, loss_fn, sample_batch = ratio_parts(config, base, sample_data, dim=d)
  exact = -0.25 * d * np.log(1.0 - rho**2)  # = mi up to float rounding
  true_log_ratio = lambda x: target.log_prob(x) - base.log_prob(x)  # noqa: E731

  @jax.jit
  def eval_fn(params):
    metrics = kl_metrics(config, model, params, x_test, y_test, true_log_ratio, exact)
    return {'mi': metrics.pop('kl'), 'mi_error': metrics.pop('kl_error'), **metrics}

  def report(params, workdir):
    likelihood, _ = estimate_likelihood(config, lambda x: log_ratio(model, params, x), base, x_test,
                                        exact_log_z(config, params))
    return {'likelihood': likelihood} if likelihood else {}

  return Task(init_params=params, loss_fn=loss_fn, eval_fn=eval_fn, truth={'mi': exact, 'mi_error': 0.0},
              table_metrics=('mi', 'mi_error', 'log_ratio_mse_data'),
              tolerance_metric='mi_error', tolerance=config.data.tolerance * exact, report=report,
              sample_batch=sample_batch)
