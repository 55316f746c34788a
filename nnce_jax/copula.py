"""A Gaussian copula noise: per-dimension monotone spline marginals, then a full-covariance Gaussian.

Each coordinate is standardised, ``u_d = (y_d - loc_d) / scale_d``, and mapped by its own
rational-quadratic spline (distrax's :class:`~distrax.RationalQuadraticSpline`, linear outside
``[-bound, bound]``) to ``z_d = g_d(u_d)``; ``z`` is full-covariance Gaussian:

    log q0(y) = log N(z; mu, Sigma) + sum_d [log g_d'(u_d) - log scale_d].

:func:`fit_gaussian_copula` fits it by maximum likelihood in two stages: each spline so that
``z_d`` is standard normal (the marginals, by Adam), then ``N(mu, Sigma)`` on the transformed
sample in closed form. With identity splines it is the full-covariance Gaussian. A pytree with
``sample(key, shape)`` and ``log_prob(y)`` like every :mod:`nnce_jax.noise` distribution.
"""

import functools
from collections.abc import Sequence

import distrax
import jax
import jax.numpy as jnp
import optax
from flax import struct

from nnce_jax import noise


@struct.dataclass
class GaussianCopula:
  loc: jax.Array             # [d]
  scale: jax.Array           # [d]
  spline_params: jax.Array   # [d, 3 * num_bins + 1], distrax's unconstrained parameters
  gaussian: noise.Gaussian   # on z
  bound: float = struct.field(pytree_node=False, default=6.0)

  @property
  def dim(self) -> int:
    return self.loc.shape[-1]

  def _spline(self):
    return distrax.RationalQuadraticSpline(self.spline_params, -self.bound, self.bound)

  def marginal_log_prob(self, y) -> jax.Array:
    """``z = g((y - loc) / scale)`` and the marginals' log-determinant ``[...]``."""
    z, log_det = self._spline().forward_and_log_det((y - self.loc) / self.scale)
    return z, jnp.sum(log_det - jnp.log(self.scale), axis=-1)

  def log_prob(self, y) -> jax.Array:
    z, log_det = self.marginal_log_prob(y)
    return self.gaussian.log_prob(z) + log_det

  def sample(self, key, shape: Sequence[int] = ()) -> jax.Array:
    z = self.gaussian.sample(key, shape)
    return self.loc + self.scale * self._spline().inverse(z)


def fit_gaussian_copula(key, y: jax.Array, *, num_bins: int = 16, bound: float = 6.0, num_steps: int = 2000,
                        batch_size: int = 256, learning_rate: float = 1e-2,
                        ridge: float = 1e-6) -> tuple[GaussianCopula, jax.Array]:
  """Maximum-likelihood :class:`GaussianCopula` of ``y [n, d]``; returns it and the marginal
  stage's loss curve ``[num_steps]`` (mean negative log-likelihood per dimension of ``z``).
  The cost is one spline evaluation per coordinate of the batch (about 1 s per step of 1,024 images
  of 784 pixels on one CPU core); each marginal has only ``3 * num_bins + 1`` parameters, which
  a batch of 256 already determines well."""
  y = jnp.asarray(y, jnp.float32)
  loc, scale = jnp.mean(y, 0), jnp.std(y, 0) + 1e-6
  params, losses, z = _fit_marginals(key, (y - loc) / scale, num_bins=num_bins, bound=bound,
                                     num_steps=num_steps, batch_size=batch_size, learning_rate=learning_rate)
  return GaussianCopula(loc, scale, params, noise.fit_gaussian(z, ridge), bound), losses


@functools.partial(jax.jit, static_argnames=('num_bins', 'bound', 'num_steps', 'batch_size', 'learning_rate'))
def _fit_marginals(key, u, *, num_bins, bound, num_steps, batch_size, learning_rate):
  """Each column's spline fitted so that ``z = g(u)`` is standard normal: ``(params, losses, z)``."""
  params = jnp.zeros((u.shape[1], 3 * num_bins + 1), jnp.float32)  # the identity spline
  tx = optax.adam(learning_rate)

  def marginal_nll(params, batch):
    z, log_det = distrax.RationalQuadraticSpline(params, -bound, bound).forward_and_log_det(batch)
    return -jnp.mean(-0.5 * jnp.square(z) - noise.HALF_LOG_2PI + log_det)

  def step(carry, key):
    params, opt_state = carry
    batch = u[jax.random.randint(key, (batch_size,), 0, u.shape[0])]
    loss, grads = jax.value_and_grad(marginal_nll)(params, batch)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), loss

  (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), jax.random.split(key, num_steps))
  return params, losses, distrax.RationalQuadraticSpline(params, -bound, bound).forward(u)
