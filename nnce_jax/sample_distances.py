"""Distances between two samples, for judging samplers against held-out data."""

import jax
import jax.numpy as jnp


def sliced_wasserstein(key, a: jax.Array, b: jax.Array, num_projections: int = 256) -> jax.Array:
  """The sliced 2-Wasserstein distance between two equal-size samples ``[n, d]``: the root
  mean, over random unit directions, of the squared 1-D optimal-transport cost."""
  directions = jax.random.normal(key, (a.shape[-1], num_projections))
  directions = directions / jnp.linalg.norm(directions, axis=0, keepdims=True)
  pa, pb = jnp.sort(a @ directions, axis=0), jnp.sort(b @ directions, axis=0)
  return jnp.sqrt(jnp.mean(jnp.square(pa - pb)))


def mmd(a: jax.Array, b: jax.Array, bandwidths=(0.1, 0.3, 1.0, 3.0)) -> jax.Array:
  """The (biased, V-statistic) squared maximum mean discrepancy between ``a [n, d]`` and
  ``b [m, d]`` under a sum of RBF kernels ``exp(-|x - y|^2 / (2 h^2))`` over ``bandwidths``."""
  def kernel_mean(x, y):
    squared = jnp.sum(x ** 2, 1)[:, None] + jnp.sum(y ** 2, 1)[None] - 2 * x @ y.T
    return sum(jnp.mean(jnp.exp(-jnp.maximum(squared, 0.0) / (2 * h ** 2))) for h in bandwidths)
  return kernel_mean(a, a) + kernel_mean(b, b) - 2 * kernel_mean(a, b)
