"""TRE's 1-D density chasm: KL(q* || q0) estimated by E_q*[s] on held-out data."""

import jax
import jax.numpy as jnp
import numpy as np

from experiments.core.checks import number
from experiments.core.task import Task
from experiments.tasks.common.likelihood import estimate_likelihood
from experiments.tasks.common.ratio import exact_log_z, fixed_samples, kl_metrics, log_ratio, ratio_parts
from nnce_jax import closed_form, models, noise


def check(config) -> None:
  number(config, 'data.sigma', low=0, low_open=True)
  number(config, 'data.tolerance', low=0, low_open=True)


def build(config) -> Task:
  sigma = config.data.sigma
  base = noise.isotropic_gaussian(1)
  target = noise.isotropic_gaussian(1, scale=sigma)
  _, x_test, y_test, sample_data = fixed_samples(config, target, base)

  model, params, loss_fn, sample_batch = ratio_parts(config, base, sample_data, dim=1)
  kl = closed_form.gaussian_kl(0.0, sigma**2, 0.0, 1.0)
  true_log_ratio = lambda x: target.log_prob(x) - base.log_prob(x)  # noqa: E731

  @jax.jit
  def eval_fn(params):
    return {**kl_metrics(config, model, params, x_test, y_test, true_log_ratio, kl),
            'log_normalizer': jnp.sum(params['params']['log_normalizer'])}

  def report(params, workdir):
    likelihood, _ = estimate_likelihood(config, lambda x: log_ratio(model, params, x), base, x_test,
                                        exact_log_z(config, params))
    likelihood['test_log_likelihood_data'] = float(jnp.mean(target.log_prob(x_test)))
    if config.model.name != 'gaussian':
      return {'likelihood': likelihood}
    _, cov = models.gaussian_ratio_moments(params)
    return {'likelihood': likelihood, 'learned_sigma': float(np.sqrt(cov[0, 0, 0]))}

  return Task(init_params=params, loss_fn=loss_fn, eval_fn=eval_fn, truth={'kl': kl, 'kl_error': 0.0},
              table_metrics=('kl', 'kl_error', 'log_ratio_mse_data'),
              tolerance_metric='kl_error', tolerance=config.data.tolerance, report=report,
              sample_batch=sample_batch)
