"""TRE's 1-D density chasm: KL(q* || q0) estimated by E_q*[s] on held-out data."""

import jax
import jax.numpy as jnp
import numpy as np

from experiments.likelihood import estimate_likelihood
from experiments.task import Task, data_keys, exact_log_z, log_ratio, ratio_parts
from nnce_jax import closed_form, models, noise


def build(config) -> Task:
  sigma = config.data.sigma
  base = noise.isotropic_gaussian(1)
  target = noise.isotropic_gaussian(1, scale=sigma)
  train_key, test_key, noise_key = data_keys(config)
  x_train = target.sample(train_key, (config.data.num_train,))
  x_test = target.sample(test_key, (config.data.num_test,))
  y_test = base.sample(noise_key, (config.data.num_test,))

  def sample_data(key):
    return x_train[jax.random.randint(key, (), 0, config.data.num_train)]

  model, params, loss_fn = ratio_parts(config, base, sample_data, dim=1)
  kl = closed_form.gaussian_kl(0.0, sigma**2, 0.0, 1.0)
  true_log_ratio = lambda x: target.log_prob(x) - base.log_prob(x)  # noqa: E731

  @jax.jit
  def eval_fn(params):
    s_data, s_noise = log_ratio(model, params, x_test), log_ratio(model, params, y_test)
    kl_estimate = jnp.mean(s_data)
    return {'kl': kl_estimate, 'kl_error': jnp.abs(kl_estimate - kl),
            'log_ratio_mse_data': jnp.mean(jnp.square(s_data - true_log_ratio(x_test))),
            'log_ratio_mse_noise': jnp.mean(jnp.square(s_noise - true_log_ratio(y_test))),
            'log_normalizer': jnp.sum(params['params']['log_normalizer'])}

  def report(params, workdir):
    likelihood, _ = estimate_likelihood(config, lambda x: log_ratio(model, params, x), base, x_test,
                                        exact_log_z(config, params))
    likelihood['test_log_likelihood_data'] = float(jnp.mean(target.log_prob(x_test)))
    if config.model.name != 'gaussian':
      return {'likelihood': likelihood}
    _, cov = models.gaussian_ratio_moments(params)
    return {'likelihood': likelihood, 'learned_sigma': float(np.sqrt(cov[0, 0, 0]))}

  return Task(model, params, loss_fn, eval_fn, truth={'kl': kl, 'kl_error': 0.0},
              table_metrics=('kl', 'kl_error', 'log_ratio_mse_data'),
              tolerance_metric='kl_error', tolerance=config.data.tolerance, report=report)
