"""The density-ratio estimation loss: data, noise, waymarks, model and objective in one.

A training batch is ``{'data': [B, d], 'noise': [B, nu, d]}``: row ``i`` of ``noise`` holds
the ``nu`` noise points of data point ``i`` (flattened, noise point ``j`` of data point ``i``
is row ``i * nu + j``, the layout every objective of :mod:`nnce_jax.objectives` reads). The
batch is drawn for the *global* batch from one key per step (:func:`make_ratio_sampler`),
under ``jit`` with the batch axis sharded over devices: JAX's partitionable threefry gives
every element the same value whatever the sharding, so the result does not depend on the
number of devices, and each device generates only its own shard.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp

from nnce_jax import noise as noise_lib
from nnce_jax.objectives import Objective

LogRatioFn = Callable[[object, jax.Array], jax.Array]  # (params, x [b, d]) -> [b, K]
SampleData = Callable[[jax.Array, int], jax.Array]  # (key, n) -> [n, d]


class RatioEstimator(NamedTuple):
  """What trains a log-ratio model: its initial ``params``, ``loss_fn(params, rng, batch, step)``
  (:func:`make_ratio_loss`) and ``sample_batch(key, inputs)`` (:func:`make_ratio_sampler`)."""
  params: Any
  loss_fn: Callable
  sample_batch: Callable


def ratio_estimator(model, objective: Objective, sample_data: SampleData, noise, *, batch_size: int,
                    dim: int, init_key: jax.Array) -> RatioEstimator:
  """A ratio estimator assembled from its parts: ``model`` (``apply(params, x [b, d]) -> [b, K]``)
  initialised from ``init_key`` on ``d = dim``, trained by ``objective`` on batches of
  ``batch_size`` data points from ``sample_data(key, n) -> [n, d]``, each with
  ``objective.noise_per_data`` points of ``noise`` (``sample(key, shape)``). The one assembly used by
  :func:`nnce_jax.fit.fit_ratio` and the experiments' tasks."""
  params = model.init(init_key, jnp.zeros((1, dim)))
  return RatioEstimator(params, make_ratio_loss(model.apply, objective),
                        make_ratio_sampler(sample_data, noise, objective.noise_per_data, batch_size))


def make_ratio_sampler(sample_data: SampleData, noise, noise_per_data: int, batch_size: int):
  """Returns ``sample_batch(key, inputs=None) -> {'data': [B, d], 'noise': [B, nu, d]}``.

  ``x = sample_data(data_key, B)`` and ``y ~ noise.sample(noise_key, (B, nu))``, ``nu =
  noise_per_data`` (``objective.noise_per_data``). ``inputs`` is ``None`` (synthetic tasks
  need no host data) or the step's N^2CE ``log M`` repeated per example, ``[B]``: a
  magnitude the host adapts between dispatches, carried as ``batch['log_magnitude']`` so
  that changing it needs no recompilation.
  """

  def sample_batch(key, inputs=None):
    data_key, noise_key = jax.random.split(key)
    batch = {'data': sample_data(data_key, batch_size),
             'noise': noise.sample(noise_key, (batch_size, noise_per_data))}
    if inputs is not None:
      batch['log_magnitude'] = inputs
    return batch

  return sample_batch


def make_ratio_loss(log_ratio_fn: LogRatioFn, objective: Objective):
  """Returns ``loss_fn(params, rng, batch, step) -> (loss, metrics)``: :func:`ratio_loss` of a
  batch of :func:`make_ratio_sampler` (one device's shard of it)."""

  def loss_fn(params, rng, batch, step=0):
    del rng  # the batch carries all the randomness
    log_magnitude = batch['log_magnitude'][0] if 'log_magnitude' in batch else None  # equal on every row
    return ratio_loss(log_ratio_fn, params, batch['data'], batch['noise'], objective, step, log_magnitude)

  return loss_fn


def ratio_loss(log_ratio_fn: LogRatioFn, params, x_data, x_noise, objective: Objective, step=0,
               log_magnitude=None):
  """The objective on data ``x_data [b, d]`` against noise ``x_noise [b, nu, d]`` (row ``i``:
  the noise of data point ``i``), telescoped over the ``K`` heads of ``log_ratio_fn``.

  ``K`` is read off the model (its last output axis), so it has one source. Waymark ``k``
  mixes each noise point with its own data point, ``a_k = k / K``; stage ``k`` contrasts
  waymark ``k-1`` (for ``k > 1``: the mixtures of each data point with its first noise
  point) against waymark ``k`` (all ``b * nu``):

      loss = objective.loss([s_k(x_{k-1})]_k  [K, b],  [s_k(x_k)]_k  [K, b * nu])

  ``K = 1`` is plain data against noise; ``log_magnitude`` overrides N^2CE's ``M`` (see
  :class:`~nnce_jax.objectives.Objective`). Returns ``(loss, {'loss', *diagnostics})``.
  """
  chex.assert_rank([x_data, x_noise], [2, 3])
  b, nu, d = x_noise.shape
  chex.assert_shape(x_data, (b, d))
  s_at_data = log_ratio_fn(params, x_data)                              # [b, K]
  num_stages = s_at_data.shape[-1]
  mixing = noise_lib.linear_mixing_schedule(num_stages)
  flat_noise = x_noise.reshape(b * nu, d)
  paired_data = jnp.repeat(x_data, nu, axis=0)                         # row i * nu + j: data i
  inner = [noise_lib.linear_mixing_waymark(paired_data, flat_noise, mixing[k]) for k in range(1, num_stages)]
  log_ratios = [s_at_data] + [log_ratio_fn(params, w) for w in inner] + [log_ratio_fn(params, flat_noise)]
  # Stage k's "data": waymark k-1 at each data point's first noise pairing (rows i * nu).
  s_data = jnp.stack([s_at_data[:, 0]] + [log_ratios[k][::nu, k] for k in range(1, num_stages)])
  s_noise = jnp.stack([log_ratios[k + 1][:, k] for k in range(num_stages)])
  chex.assert_shape([s_data, s_noise], [(num_stages, b), (num_stages, b * nu)])
  loss, diagnostics = objective.loss(s_data, s_noise, step, log_magnitude)
  return loss, {'loss': loss, **diagnostics}
