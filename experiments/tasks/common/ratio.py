"""Builders shared by the density-ratio tasks: model, objective, batch sampler, KL metrics and data."""

import jax
import jax.numpy as jnp
from flax import linen as nn

from nnce_jax import estimation, models, objectives, schedules


def make_model(config, base) -> nn.Module:
  m = config.model
  return models.ratio_model(m.name, base, num_stages=config.objective.num_stages, hidden=m.hidden,
                            width=m.width, num_blocks=m.num_blocks)


def make_objective(config) -> objectives.Objective:
  o = config.objective
  magnitude = schedules.magnitude_schedule(o.magnitude_schedule, o.magnitude, o.final_magnitude,
                                           config.train.num_steps)
  return objectives.make_objective(o.name, magnitude=magnitude, log_magnitude=o.log_magnitude or None,
                                   noise_ratio=o.noise_ratio,
                                   num_candidates=o.num_candidates, l2_penalty=o.l2_penalty)


def ratio_parts(config, base, sample_data, dim: int, noise_source=None):
  """The model, its initial params, the training loss and the batch sampler of a
  ratio-estimation task; ``sample_data(key, n) -> [n, d]``; the batches' noise comes from
  ``noise_source`` (default ``base``: fresh draws every step)."""
  model = make_model(config, base)
  params, loss_fn, sample_batch = estimation.ratio_estimator(
      model, make_objective(config), sample_data, noise_source or base, batch_size=config.train.batch_size,
      dim=dim, init_key=jax.random.fold_in(jax.random.PRNGKey(config.seed), 1))
  return model, params, loss_fn, sample_batch


def log_ratio(model: nn.Module, params, x) -> jax.Array:
  """The telescoped ``log q*/q0 (x)`` of a model, ``[n]``."""
  return objectives.telescoped_log_ratio(model.apply(params, x))


def kl_metrics(config, model, params, x_test, y_test, true_log_ratio, kl: float) -> dict:
  """KL(q* || q0) estimated as ``E_q*[s]`` on held-out data, its error, and the held-out
  log-ratio MSE. Ranking NCE leaves ``s`` up to a constant (log Z is not identified), so
  for it ``s`` is first normalised, ``s - log Z``: exactly for the Gaussian family
  (:func:`exact_log_z`), by importance sampling over held-out noise otherwise."""
  s_data, s_noise = log_ratio(model, params, x_test), log_ratio(model, params, y_test)
  if config.objective.name == 'ranking_nce':
    shift = (jax.nn.logsumexp(s_noise) - jnp.log(s_noise.shape[0]) if config.model.name != 'gaussian'
             else -jnp.sum(params['params']['log_normalizer']))
    s_data, s_noise = s_data - shift, s_noise - shift
  estimate = jnp.mean(s_data)
  return {'kl': estimate, 'kl_error': jnp.abs(estimate - kl),
          'log_ratio_mse_data': jnp.mean(jnp.square(s_data - true_log_ratio(x_test))),
          'log_ratio_mse_noise': jnp.mean(jnp.square(s_noise - true_log_ratio(y_test)))}


def exact_log_z(config, params) -> float | None:
  """log Z of ``exp(s) q0`` where it is closed form: for the Gaussian family the stages
  telescope to ``G_0 exp(-sum_k c_k)``, so ``log Z = -sum_k c_k``."""
  if config.model.name != 'gaussian':
    return None
  return -float(jnp.sum(params['params']['log_normalizer']))  # kl_metrics: the same, traced


def fixed_samples(config, target, base):
  """Training set, held-out data and held-out noise of a task with a sampleable target, and
  ``sample_data(key, n) -> [n, d]``, training points chosen uniformly."""
  train_key, test_key, noise_key = data_keys(config)
  x_train = target.sample(train_key, (config.data.num_train,))
  x_test = target.sample(test_key, (config.data.num_test,))
  y_test = base.sample(noise_key, (config.data.num_test,))

  def sample_data(key, n):
    return x_train[jax.random.randint(key, (n,), 0, config.data.num_train)]

  return x_train, x_test, y_test, sample_data


def data_keys(config):
  """Keys for the fixed training and test sets, independent of the training keys."""
  root = jax.random.fold_in(jax.random.PRNGKey(config.seed), 2)
  return jax.random.split(root, 3)
