"""What every experiment module builds from its config, and the builders they share."""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn

from nnce_jax import estimation, models, objectives, schedules


@dataclasses.dataclass
class Task:
  """An experiment: a model and loss to train, and how to judge the result.

  ``eval_fn(params) -> {name: scalar}`` (jitted); ``truth`` holds closed-form values of
  eval metrics where known; ``table_metrics`` are compared across objectives; when
  ``tolerance_metric`` is set, the summary reports the first step after which it stays
  below ``tolerance``; ``report(params, workdir) -> dict`` makes plots and extra results;
  ``batches_for(step) -> [steps_per_dispatch, B, ...]`` gives host inputs (images; default
  none) and ``sample_batch(key, inputs) -> batch`` draws each step's global batch from them
  (:func:`nnce_jax.train.make_train_step`).
  """
  model: nn.Module
  init_params: Any
  loss_fn: Callable
  eval_fn: Callable
  truth: dict[str, float]
  table_metrics: tuple[str, ...]
  tolerance_metric: str | None = None
  tolerance: float = 0.0
  report: Callable[[Any, str], dict] = lambda params, workdir: {}
  batches_for: Callable[[int], Any] | None = None
  sample_batch: Callable | None = None


def make_model(config, base) -> nn.Module:
  k = config.objective.num_stages
  if config.model.name == 'gaussian':
    return models.GaussianRatio(base=base, num_stages=k)
  return models.MLPRatio(hidden=tuple(config.model.hidden), num_stages=k)


def make_objective(config) -> objectives.Objective:
  o = config.objective
  magnitude = schedules.magnitude_schedule(o.magnitude_schedule, o.magnitude, o.final_magnitude,
                                           config.train.num_steps)
  return objectives.make_objective(o.name, magnitude=magnitude, noise_ratio=o.noise_ratio,
                                   num_candidates=o.num_candidates, l2_penalty=o.l2_penalty)


def make_optimizer(config) -> optax.GradientTransformation:
  o = config.optimizer
  tx = optax.adam(o.learning_rate) if o.name == 'adam' else optax.sgd(o.learning_rate)
  return optax.chain(optax.clip_by_global_norm(o.grad_clip_norm), tx) if o.grad_clip_norm else tx


def ratio_parts(config, base, sample_data, dim: int):
  """The model, its initial params, the training loss and the batch sampler of a
  ratio-estimation task; ``sample_data(key, n) -> [n, d]``."""
  model = make_model(config, base)
  init_key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 1)
  params = model.init(init_key, jnp.zeros((1, dim)))
  objective = make_objective(config)
  loss_fn = estimation.make_ratio_loss(model.apply, objective)
  sample_batch = estimation.make_ratio_sampler(sample_data, base, objective.noise_per_data,
                                               config.train.batch_size)
  return model, params, loss_fn, sample_batch


def log_ratio(model: nn.Module, params, x) -> jax.Array:
  """The telescoped ``log q*/q0 (x)`` of a model, ``[n]``."""
  return objectives.telescoped_log_ratio(model.apply(params, x))


def kl_metrics(config, model, params, x_test, y_test, true_log_ratio, kl: float) -> dict:
  """KL(q* || q0) estimated as ``E_q*[s]`` on held-out data, its error, and the held-out
  log-ratio MSE. Ranking NCE leaves ``s`` up to a constant (log Z is not identified), so
  for it ``s`` is first normalised by IS over held-out noise: ``s - log mean_q0 exp(s)``."""
  s_data, s_noise = log_ratio(model, params, x_test), log_ratio(model, params, y_test)
  if config.objective.name == 'ranking_nce':
    shift = jax.nn.logsumexp(s_noise) - jnp.log(s_noise.shape[0])
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
  return -float(jnp.sum(params['params']['log_normalizer']))


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
