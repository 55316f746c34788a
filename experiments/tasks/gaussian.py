"""d-dimensional Gaussian: parameter error against the truth and the closed-form MLE."""

import jax
import jax.numpy as jnp
import numpy as np

from experiments.core.checks import boolean, number
from experiments.core.task import Task
from experiments.tasks.common.likelihood import estimate_likelihood
from experiments.tasks.common.ratio import data_keys, exact_log_z, log_ratio, make_objective, ratio_parts
from nnce_jax import closed_form, models, noise


def check(config) -> None:
  number(config, 'data.dim', low=1, integer=True)
  boolean(config, 'data.fixed_noise')


def _true_gaussian(key, dim):
  mean_key, factor_key = jax.random.split(key)
  factor = jax.random.normal(factor_key, (dim, dim)) / np.sqrt(dim)
  return 0.5 * jax.random.normal(mean_key, (dim,)), 0.5 * factor @ factor.T + 0.2 * jnp.eye(dim)


def _param_error(mean, cov, ref_mean, ref_cov):
  return jnp.sum(jnp.square(mean - ref_mean)) + jnp.sum(jnp.square(cov - ref_cov))


def _flat_without_normalizer(grads):
  kept = {k: v for k, v in grads['params'].items() if k != 'log_normalizer'}
  return jnp.concatenate([jnp.ravel(v) for v in jax.tree.leaves(kept)])


def build(config) -> Task:
  d = config.data.dim
  base = noise.isotropic_gaussian(d)
  train_key, test_key, noise_key = data_keys(config)
  true_mean, true_cov = _true_gaussian(jax.random.fold_in(train_key, 1), d)
  target = noise.Gaussian.from_covariance(true_mean, true_cov)
  x_train = target.sample(train_key, (config.data.num_train,))
  x_test = target.sample(test_key, (config.data.num_test,))
  y_eval = base.sample(noise_key, (config.data.num_test,))
  mle_mean, mle_cov = (jnp.asarray(a, jnp.float32) for a in closed_form.gaussian_mle(x_train))

  def sample_data(key, n):
    return x_train[jax.random.randint(key, (n,), 0, config.data.num_train)]

  pool = None
  if config.data.fixed_noise:  # nu * n noise points, drawn once: the finite-sample estimator
    pool_size = config.objective.noise_ratio * config.data.num_train
    pool = noise.FixedSample(base.sample(jax.random.fold_in(noise_key, 1), (pool_size,)))
  model, params, loss_fn, sample_batch = ratio_parts(config, base, sample_data, dim=d, noise_source=pool)
  objective = make_objective(config)
  kl = closed_form.gaussian_kl(true_mean, true_cov, np.zeros(d), np.eye(d))

  def gradient_cosine(params):
    """cos(grad of the objective, grad of the exact NLL of x_train), log Z excluded."""
    objective_loss = lambda p: objective.loss(  # noqa: E731
        model.apply(p, x_train).T, model.apply(p, y_eval).T)[0]
    nll = lambda p: -jnp.mean(log_ratio(model, p, x_train))  # noqa: E731 (G is normalised)
    g_obj, g_mle = (_flat_without_normalizer(jax.grad(f)(params)) for f in (objective_loss, nll))
    return jnp.dot(g_obj, g_mle) / (jnp.linalg.norm(g_obj) * jnp.linalg.norm(g_mle) + 1e-30)

  @jax.jit
  def eval_fn(params):
    means, covs = models.gaussian_ratio_moments(params)
    kl_estimate = jnp.mean(log_ratio(model, params, x_test))
    metrics = {'param_error': _param_error(means[0], covs[0], true_mean, true_cov),
               'param_error_mle': _param_error(means[0], covs[0], mle_mean, mle_cov),
               'kl': kl_estimate, 'kl_error': jnp.abs(kl_estimate - kl),
               'log_normalizer': jnp.sum(params['params']['log_normalizer'])}
    if d == 2 and config.objective.num_stages == 1:
      metrics['grad_cosine_mle'] = gradient_cosine(params)
    return metrics

  truth = {'kl': kl, 'kl_error': 0.0, 'param_error': 0.0, 'param_error_mle': 0.0}
  references = {'mle_param_error': float(_param_error(mle_mean, mle_cov, true_mean, true_cov)),
                'cramer_rao_param_error': closed_form.gaussian_cramer_rao(true_cov, config.data.num_train)}
  def report(params, workdir):
    likelihood, _ = estimate_likelihood(config, lambda x: log_ratio(model, params, x), base, x_test,
                                        exact_log_z(config, params))
    likelihood['test_log_likelihood_data'] = float(jnp.mean(target.log_prob(x_test)))
    return {'likelihood': likelihood}

  return Task(init_params=params, loss_fn=loss_fn, eval_fn=eval_fn, truth=truth, references=references,
              table_metrics=('param_error', 'param_error_mle', 'kl_error')
              + (('grad_cosine_mle',) if d == 2 else ()), report=report, sample_batch=sample_batch)
