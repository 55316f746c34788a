"""Noise (base) distributions ``q0`` and TRE waymarks between data and noise.

Each distribution is an immutable pytree (so it can be closed over or passed through
``jit``) with two pure methods over the last axis of size ``d``:

- ``sample(key, shape) -> [*shape, d]``
- ``log_prob(x [..., d]) -> [...]``
"""

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import struct

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


@struct.dataclass
class DiagonalGaussian:
  """``N(mean, diag(scale^2))``; ``mean`` and ``scale`` are ``[d]``."""
  mean: jax.Array
  scale: jax.Array

  @property
  def dim(self) -> int:
    return self.mean.shape[-1]

  def sample(self, key, shape: Sequence[int] = ()) -> jax.Array:
    eps = jax.random.normal(key, (*shape, self.dim), self.mean.dtype)
    return self.mean + self.scale * eps

  def log_prob(self, x) -> jax.Array:
    z = (x - self.mean) / self.scale
    return jnp.sum(-0.5 * jnp.square(z) - jnp.log(self.scale) - HALF_LOG_2PI, axis=-1)


def isotropic_gaussian(dim: int, scale: float = 1.0, mean: float = 0.0) -> DiagonalGaussian:
  """``N(mean * 1, scale^2 I)`` in ``dim`` dimensions."""
  return DiagonalGaussian(jnp.full((dim,), mean, jnp.float32),
                          jnp.full((dim,), scale, jnp.float32))


@struct.dataclass
class Gaussian:
  """Full-covariance ``N(mean, L L^T)``; ``mean`` is ``[d]``, ``scale_tril`` ``L`` is ``[d, d]``."""
  mean: jax.Array
  scale_tril: jax.Array

  @classmethod
  def from_covariance(cls, mean, covariance) -> 'Gaussian':
    return cls(jnp.asarray(mean), jnp.linalg.cholesky(jnp.asarray(covariance)))

  @property
  def dim(self) -> int:
    return self.mean.shape[-1]

  def sample(self, key, shape: Sequence[int] = ()) -> jax.Array:
    eps = jax.random.normal(key, (*shape, self.dim), self.mean.dtype)
    return self.mean + eps @ self.scale_tril.T

  def log_prob(self, x) -> jax.Array:
    centred = (x - self.mean).reshape(-1, self.dim)
    z = jax.scipy.linalg.solve_triangular(self.scale_tril, centred.T, lower=True).T
    log_det = jnp.sum(jnp.log(jnp.diag(self.scale_tril)))
    log_prob = -0.5 * jnp.sum(jnp.square(z), axis=-1) - log_det - self.dim * HALF_LOG_2PI
    return log_prob.reshape(x.shape[:-1])


@struct.dataclass
class GaussianMixture:
  """Mixture of diagonal Gaussians: ``logits [k]``, ``means [k, d]``, ``scales [k, d]``."""
  logits: jax.Array
  means: jax.Array
  scales: jax.Array

  @property
  def dim(self) -> int:
    return self.means.shape[-1]

  def sample(self, key, shape: Sequence[int] = ()) -> jax.Array:
    component_key, normal_key = jax.random.split(key)
    component = jax.random.categorical(component_key, self.logits, shape=tuple(shape))
    eps = jax.random.normal(normal_key, (*shape, self.dim), self.means.dtype)
    return self.means[component] + self.scales[component] * eps

  def log_prob(self, x) -> jax.Array:
    components = DiagonalGaussian(self.means, self.scales).log_prob(x[..., None, :])
    return jax.nn.logsumexp(jax.nn.log_softmax(self.logits) + components, axis=-1)


@struct.dataclass
class FixedSample:
  """A finite sample ``points [m, d]`` drawn once and resampled uniformly: the noise of the
  finite-sample estimator (a fixed set of ``nu * n`` noise points beside ``n`` data points, the
  setting of the N²CE paper's Prop. 3.3), where a stream of fresh draws would average the noise's
  sampling error away. Sampling only: its density is the distribution it was drawn from."""
  points: jax.Array

  @property
  def dim(self) -> int:
    return self.points.shape[-1]

  def sample(self, key, shape: Sequence[int] = ()) -> jax.Array:
    return self.points[jax.random.randint(key, tuple(shape), 0, self.points.shape[0])]


def linear_mixing_schedule(num_stages: int) -> jax.Array:
  """Mixing weights ``a_k = k / K``, ``k = 0..K`` (``a_0 = 0`` data, ``a_K = 1`` noise)."""
  return jnp.linspace(0.0, 1.0, num_stages + 1)


def linear_mixing_waymark(x_data, x_noise, mixing):
  """TRE's linear-mixing waymark ``x_k = sqrt(1 - a_k^2) x_data + a_k x_noise``.

  Variance-preserving between independent data and noise. ``x_data`` and ``x_noise`` are
  paired ``[n, d]``; ``mixing`` a scalar ``a_k`` in ``[0, 1]``.
  """
  return jnp.sqrt(1.0 - jnp.square(mixing)) * x_data + mixing * x_noise


def fit_gaussian(x: jax.Array, ridge: float = 0.0) -> Gaussian:
  """The maximum-likelihood full-covariance Gaussian of samples ``x [n, d]`` (covariance with
  ``1/n``), plus ``ridge * mean variance`` on the diagonal where the sample is degenerate."""
  x = jnp.asarray(x, jnp.float32)
  mean = jnp.mean(x, axis=0)
  centred = x - mean
  covariance = centred.T @ centred / x.shape[0]
  covariance = covariance + ridge * jnp.mean(jnp.diag(covariance)) * jnp.eye(x.shape[1])
  scale_tril = jnp.linalg.cholesky(covariance)
  if not bool(jnp.all(jnp.isfinite(scale_tril))):
    raise ValueError(f'the covariance of {x.shape[0]} samples in {x.shape[1]} dimensions is not positive '
                     'definite: pass ridge > 0 (e.g. 1e-6) or more samples')
  return Gaussian(mean, scale_tril)
