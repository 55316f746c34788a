"""Log-ratio models: ``apply(params, x [batch, d]) -> stage log-ratios [batch, K]``.

Every model returns ``K = num_stages`` telescoping heads ``s_k = log p_{k-1} / p_k``
(``K = 1``: the single ratio ``s = log p / q0``), each with its own learned
log-normaliser ``c_k``; ``objectives.telescoped_log_ratio`` sums them to ``log p / q0``.
"""

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from nnce_jax.noise import HALF_LOG_2PI


class GaussianRatio(nn.Module):
  """Telescoped log-ratio of learned Gaussians against a fixed Gaussian base ``q0``.

  Learned ``G_k = N(mu_k, (L_k L_k^T)^{-1})`` for ``k = 0..K-1`` and ``G_K = q0`` give

      s_k(x) = log G_{k-1}(x) - log G_k(x) - c_k,   k = 1..K,

  the exact family for Gaussian data, noise and linear-mixing waymarks; at the optimum
  ``c_k = 0``. Every parameter is scale-free, so Adam's roughly ``lr``-sized steps suit
  any width of Gaussian: ``L_k`` is the Cholesky factor of the *precision* with
  log-parameterised diagonal (``log_precision_diag = 2 log diag L``), so precisions of
  ``1e12`` (the ``1e-6`` density chasm) are a step size away rather than twelve orders of
  magnitude; and the mean is whitened, ``m_k = L_k^T mu_k`` (a raw mean would jitter by
  ``lr`` around a target ``1e-3`` wide). Initialised at ``N(0, I)``;
  :func:`gaussian_ratio_moments` recovers ``(mu_k, Sigma_k)``.
  """
  base: Any  # a noise distribution with ``log_prob`` (see nnce_jax.noise)
  num_stages: int = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, d = self.num_stages, x.shape[-1]
    whitened_mean = self.param('whitened_mean', nn.initializers.zeros, (k, d))
    log_precision_diag = self.param('log_precision_diag', nn.initializers.zeros, (k, d))
    precision_offdiag = self.param('precision_offdiag', nn.initializers.zeros, (k, d, d))
    log_normalizer = self.param('log_normalizer', nn.initializers.zeros, (k,))

    chol = _precision_cholesky(log_precision_diag, precision_offdiag)
    z = jnp.einsum('kij,...i->...kj', chol, x) - whitened_mean  # L^T x - m = L^T (x - mu)
    log_learned = (-0.5 * jnp.sum(jnp.square(z), -1)
                   + 0.5 * jnp.sum(log_precision_diag, -1) - d * HALF_LOG_2PI)  # [..., K]
    log_densities = jnp.concatenate([log_learned, self.base.log_prob(x)[..., None]], -1)
    return log_densities[..., :-1] - log_densities[..., 1:] - log_normalizer


def _precision_cholesky(log_precision_diag, precision_offdiag):
  diag = jax.vmap(jnp.diag)(jnp.exp(0.5 * log_precision_diag))
  return jnp.tril(precision_offdiag, -1) + diag


def gaussian_ratio_moments(params) -> tuple[jax.Array, jax.Array]:
  """Means ``[K, d]`` and covariances ``[K, d, d]`` of a :class:`GaussianRatio`'s ``G_k``."""
  p = params['params']
  chol = _precision_cholesky(p['log_precision_diag'], p['precision_offdiag'])
  precision = chol @ jnp.swapaxes(chol, -1, -2)
  mean = jnp.linalg.solve(jnp.swapaxes(chol, -1, -2), p['whitened_mean'][..., None])[..., 0]
  return mean, jnp.linalg.inv(precision)


class MLPRatio(nn.Module):
  """``s_k(x) = head_k(trunk(x)) - c_k``: an MLP trunk shared by ``K`` linear heads."""
  hidden: Sequence[int] = (128, 128)
  num_stages: int = 1
  activation: Callable[[jax.Array], jax.Array] = nn.leaky_relu

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = x
    for width in self.hidden:
      h = self.activation(nn.Dense(width)(h))
    energy = nn.Dense(self.num_stages, use_bias=False, name='heads')(h)
    log_normalizer = self.param('log_normalizer', nn.initializers.zeros, (self.num_stages,))
    return energy - log_normalizer


class ResidualMLPRatio(nn.Module):
  """``s_k(x) = head_k(h(x)) - c_k`` with ``h`` a pre-norm residual MLP: ``h <- h + W2 act(W1
  LayerNorm(h))`` ``num_blocks`` times after an input projection to ``width``. Deep enough for
  784-D images, and the skips keep the log ratio near 0 at initialisation (zero-initialised W2)."""
  width: int = 512
  num_blocks: int = 2
  num_stages: int = 1
  activation: Callable[[jax.Array], jax.Array] = nn.gelu

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = nn.Dense(self.width, name='embed')(x)
    for i in range(self.num_blocks):
      r = self.activation(nn.Dense(self.width, name=f'block{i}_in')(nn.LayerNorm(name=f'block{i}_norm')(h)))
      h = h + nn.Dense(self.width, kernel_init=nn.initializers.zeros, name=f'block{i}_out')(r)
    h = self.activation(nn.LayerNorm(name='final_norm')(h))
    energy = nn.Dense(self.num_stages, use_bias=False, name='heads')(h)
    log_normalizer = self.param('log_normalizer', nn.initializers.zeros, (self.num_stages,))
    return energy - log_normalizer


RATIO_MODELS = ('gaussian', 'mlp', 'resmlp')


def ratio_model(name: str, noise, *, num_stages: int = 1, hidden: Sequence[int] = (128, 128),
                width: int = 512, num_blocks: int = 2) -> nn.Module:
  """The log-ratio model ``name`` (one of :data:`RATIO_MODELS`) with ``num_stages`` heads:
  ``gaussian`` (the exponential family around ``noise``, a :class:`~nnce_jax.noise.Gaussian`),
  ``mlp`` (``hidden`` widths) or ``resmlp`` (``width``, ``num_blocks``)."""
  if name == 'gaussian':
    return GaussianRatio(base=noise, num_stages=num_stages)
  if name == 'mlp':
    return MLPRatio(hidden=tuple(hidden), num_stages=num_stages)
  if name == 'resmlp':
    return ResidualMLPRatio(width=width, num_blocks=num_blocks, num_stages=num_stages)
  raise ValueError(f'model {name!r} is not one of {", ".join(RATIO_MODELS)}')
