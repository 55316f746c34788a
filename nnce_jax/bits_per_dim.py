"""Bits per dimension of 8-bit images under a density in the logit space (TRE, DRE-∞).

Pixels ``p in {0..255}`` are dequantised, ``x = (p + u) / 256`` with ``u ~ U[0, 1)``, and
mapped to ``y = logit(alpha + (1 - 2 alpha) x) - mean`` (``alpha = 1e-6``; ``mean`` the
per-pixel training mean, a shift of log-determinant 0). A density ``p_y`` in ``y`` gives

    log p_x(x) = log p_y(y) + sum_d log |dy_d / dx_d|,
    log |dy/dx| = log(1 - 2 alpha) - log v - log(1 - v),   v = alpha + (1 - 2 alpha) x,

and the bits per dimension of the 8-bit image (the dequantised density's bound on it)

    bpd = (ln 256 - log p_x(x) / D) / ln 2.

A density uniform on the unit cube has ``bpd = 8`` exactly. Pure numpy-compatible JAX: the
functions take arrays ``[..., D]`` and reduce the last axis.
"""

import math

import jax
import jax.numpy as jnp

ALPHA = 1e-6


def dequantize(key, pixels: jax.Array) -> jax.Array:
  """``(p + u) / 256`` in ``[0, 1)``, ``u ~ U[0, 1)`` per pixel; ``pixels`` are ``0..255``."""
  return (jnp.asarray(pixels, jnp.float32) + jax.random.uniform(key, jnp.shape(pixels))) / 256.0


def to_logit(x: jax.Array, alpha: float = ALPHA) -> jax.Array:
  """``logit(alpha + (1 - 2 alpha) x)`` for ``x`` in ``[0, 1]``."""
  v = alpha + (1.0 - 2.0 * alpha) * x
  return jnp.log(v) - jnp.log1p(-v)


def from_logit(y: jax.Array, alpha: float = ALPHA) -> jax.Array:
  """The inverse of :func:`to_logit`, clipped to ``[0, 1]``."""
  return jnp.clip((jax.nn.sigmoid(y) - alpha) / (1.0 - 2.0 * alpha), 0.0, 1.0)


def logit_log_det(x: jax.Array, alpha: float = ALPHA) -> jax.Array:
  """``sum_d log |dy_d / dx_d|`` of :func:`to_logit` at ``x [..., D]`` -> ``[...]``."""
  v = alpha + (1.0 - 2.0 * alpha) * x
  return jnp.sum(math.log1p(-2.0 * alpha) - jnp.log(v) - jnp.log1p(-v), axis=-1)


def bits_per_dim(log_prob_logit: jax.Array, x: jax.Array, alpha: float = ALPHA) -> jax.Array:
  """Bits/dim of dequantised images ``x [..., D]`` in ``[0, 1)`` whose logit-space log density
  is ``log_prob_logit [...]`` (the log-determinant of the logit is added here) -> ``[...]``."""
  dim = x.shape[-1]
  log_prob_x = log_prob_logit + logit_log_det(x, alpha)
  return (math.log(256.0) - log_prob_x / dim) / math.log(2.0)


def nats_to_bits_per_dim(nats: jax.Array, dim: int) -> jax.Array:
  """A difference in log density (nats per image) as bits per dimension."""
  return nats / (dim * math.log(2.0))
