"""The density-ratio estimation loss: data, noise, waymarks, model and objective in one.

Randomness is keyed per *example*: example ``i`` of the global batch draws its data point
and its noise from ``fold_in(step_key, i)``, so the global batch, and hence the result, does
not depend on how many devices share it.
"""

from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp

from nnce_jax import noise as noise_lib
from nnce_jax.objectives import Objective

LogRatioFn = Callable[[object, jax.Array], jax.Array]  # (params, x [b, d]) -> [b, K]


def make_ratio_loss(log_ratio_fn: LogRatioFn, sample_data: Callable[[jax.Array], jax.Array],
                    noise, objective: Objective, num_stages: int = 1):
  """Returns ``loss_fn(params, rng, example_ids, step) -> (loss, metrics)`` for one shard.

  For each global example id ``i`` in ``example_ids [b]``: ``x_i = sample_data(key_i)``
  (``[d]``) and ``nu = objective.noise_per_data`` noise points ``y ~ q0``, then
  :func:`ratio_loss` of those samples.
  """
  nu = objective.noise_per_data

  def loss_fn(params, rng, example_ids, step=0):
    keys = jax.vmap(jax.random.fold_in, (None, 0))(rng, example_ids)
    data_keys, noise_keys = jnp.unstack(jax.vmap(jax.random.split)(keys), axis=1)
    x_data = jax.vmap(sample_data)(data_keys)                           # [b, d]
    x_noise = jax.vmap(lambda k: noise.sample(k, (nu,)))(noise_keys)    # [b, nu, d]
    x_noise = jnp.swapaxes(x_noise, 0, 1).reshape(-1, x_data.shape[-1])  # noise j of each i
    return ratio_loss(log_ratio_fn, params, x_data, x_noise, objective, num_stages, step)

  return loss_fn


def ratio_loss(log_ratio_fn: LogRatioFn, params, x_data, x_noise, objective: Objective,
               num_stages: int = 1, step=0):
  """The objective on data ``x_data [b, d]`` against noise ``x_noise [b * nu, d]`` (row
  ``j * b + i`` is noise point ``j`` of data point ``i``), telescoped over ``K`` stages.

  Waymark ``k`` pairs each noise point with its data point (the data tiled ``nu`` times)
  and mixes them with ``a_k = k / K``; stage ``k`` contrasts waymark ``k-1`` (its first
  ``b`` points: the batch's own data) against waymark ``k`` (all ``b * nu``):

      loss = objective.loss([s_k(x_{k-1})]_k  [K, b],  [s_k(x_k)]_k  [K, b * nu])

  ``K = 1`` is plain data against noise. Returns ``(loss, {'loss', *diagnostics})``.
  """
  chex.assert_rank([x_data, x_noise], 2)
  b = x_data.shape[0]
  nu = x_noise.shape[0] // b
  chex.assert_shape(x_noise, (b * nu, x_data.shape[1]))
  mixing = noise_lib.linear_mixing_schedule(num_stages)
  paired_data = jnp.tile(x_data, (nu, 1))
  waymarks = [x_data] + [noise_lib.linear_mixing_waymark(paired_data, x_noise, mixing[k])
                         for k in range(1, num_stages)] + [x_noise]
  log_ratios = [log_ratio_fn(params, w) for w in waymarks]             # each [*, K]
  s_data = jnp.stack([log_ratios[k][:b, k] for k in range(num_stages)])
  s_noise = jnp.stack([log_ratios[k + 1][:, k] for k in range(num_stages)])
  chex.assert_shape([s_data, s_noise], [(num_stages, b), (num_stages, b * nu)])
  loss, diagnostics = objective.loss(s_data, s_noise, step)
  return loss, {'loss': loss, **diagnostics}
