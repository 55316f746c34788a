"""A normalising-flow noise: a full-covariance Gaussian whitening, then rational-quadratic spline couplings.

``z = f(w)``, ``w = L^-1 (y - m)`` (``N(m, L L^T)`` fitted to the data), ``f`` a stack of
distrax :class:`~distrax.SplitCoupling` layers (RQ-NSF, Durkan et al. 2019), each transforming
half of the coordinates by :class:`~distrax.RationalQuadraticSpline` whose knots an MLP reads off
the other half, with a fixed random permutation before each layer; ``z ~ N(0, I)``:

    log q0(y) = log N(f(w); 0, I) + log |det df/dw| - sum log diag L.

The conditioners' last layers start at zero, so an unfitted flow is the identity and the noise
the Gaussian; :func:`fit_flow` then raises the likelihood by Adam. ``to_latent`` / ``from_latent``
give the flow's latent coordinates, in which TRE mixes its waymarks for flow noise and where
``q0`` is ``N(0, I)``. A pytree with ``sample(key, shape)`` and ``log_prob(y)`` like every
:mod:`nnce_jax.noise` distribution.
"""

import functools
import logging
from collections.abc import Sequence

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn
from flax import struct

from nnce_jax import noise


class Conditioner(nn.Module):
  """``[..., d_in] -> [..., d_out, 3 * num_bins + 1]`` spline parameters; zero at initialisation."""
  num_outputs: int
  num_bins: int
  hidden: int

  @nn.compact
  def __call__(self, x):
    h = nn.gelu(nn.Dense(self.hidden)(x))
    h = nn.gelu(nn.Dense(self.hidden)(h))
    out = nn.Dense(self.num_outputs * (3 * self.num_bins + 1), kernel_init=nn.initializers.zeros)(h)
    return out.reshape(*x.shape[:-1], self.num_outputs, 3 * self.num_bins + 1)


class SplineCouplings(nn.Module):
  """The bijection ``f``: ``num_layers`` permute-then-couple layers on ``[..., dim]``."""
  dim: int
  num_layers: int = 6
  hidden: int = 256
  num_bins: int = 4
  bound: float = 8.0  # the splines act on [-bound, bound]; linear (the identity at init) outside
  seed: int = 0       # of the fixed permutations

  def setup(self):
    half = self.dim // 2
    self.conditioners = [Conditioner(self.dim - half, self.num_bins, self.hidden)
                         for _ in range(self.num_layers)]
    rng = np.random.default_rng(self.seed)
    self.permutations = [rng.permutation(self.dim) for _ in range(self.num_layers)]

  def _coupling(self, layer):
    spline = lambda params: distrax.RationalQuadraticSpline(params, -self.bound, self.bound)  # noqa: E731
    return distrax.SplitCoupling(self.dim // 2, 1, self.conditioners[layer], spline)

  def __call__(self, w):
    """``(z, log |det df/dw|)``, ``[..., dim]`` and ``[...]``."""
    log_det = jnp.zeros(w.shape[:-1], w.dtype)
    for layer in range(self.num_layers):
      w, layer_log_det = self._coupling(layer).forward_and_log_det(w[..., self.permutations[layer]])
      log_det = log_det + layer_log_det
    return w, log_det

  def inverse(self, z):
    for layer in reversed(range(self.num_layers)):
      z = self._coupling(layer).inverse(z)[..., np.argsort(self.permutations[layer])]
    return z


@struct.dataclass
class FlowNoise:
  """``q0`` of the module docstring: ``gaussian`` the whitening, ``params`` of ``couplings``."""
  gaussian: noise.Gaussian
  params: dict
  couplings: SplineCouplings = struct.field(pytree_node=False)

  @property
  def dim(self) -> int:
    return self.gaussian.dim

  def _whiten(self, y):
    centred = (y - self.gaussian.mean).reshape(-1, self.dim)
    w = jax.scipy.linalg.solve_triangular(self.gaussian.scale_tril, centred.T, lower=True).T
    return w.reshape(y.shape)

  def to_latent_and_log_det(self, y):
    """``z = f(L^-1 (y - m))`` ``[..., d]`` and ``log |det dz/dy|`` ``[...]``."""
    z, log_det = self.couplings.apply(self.params, self._whiten(y))
    return z, log_det - jnp.sum(jnp.log(jnp.diag(self.gaussian.scale_tril)))

  def to_latent(self, y) -> jax.Array:
    return self.to_latent_and_log_det(y)[0]

  def from_latent(self, z) -> jax.Array:
    w = self.couplings.apply(self.params, z, method=SplineCouplings.inverse)
    return self.gaussian.mean + w @ self.gaussian.scale_tril.T

  def log_prob(self, y) -> jax.Array:
    z, log_det = self.to_latent_and_log_det(y)
    return jnp.sum(-0.5 * jnp.square(z) - noise.HALF_LOG_2PI, axis=-1) + log_det

  def sample(self, key, shape: Sequence[int] = ()) -> jax.Array:
    return self.from_latent(jax.random.normal(key, (*shape, self.dim), self.gaussian.mean.dtype))


def untrained_flow(gaussian: noise.Gaussian, *, num_layers: int = 6, hidden: int = 256, num_bins: int = 4,
                   bound: float = 8.0, key=None) -> FlowNoise:
  """The flow whose couplings are the identity: ``gaussian`` itself, ready to fit."""
  couplings = SplineCouplings(gaussian.dim, num_layers, hidden, num_bins, bound)
  key = jax.random.PRNGKey(0) if key is None else key
  return FlowNoise(gaussian, couplings.init(key, jnp.zeros((1, gaussian.dim))), couplings)


def fit_flow(key, y, y_validation, *, num_layers: int = 6, hidden: int = 256, num_bins: int = 4,
             bound: float = 8.0, num_steps: int = 5000, batch_size: int = 256, learning_rate: float = 1e-3,
             eval_every: int = 250, ridge: float = 1e-6) -> tuple[FlowNoise, dict]:
  """Maximum-likelihood :class:`FlowNoise` of ``y [n, d]``: the Gaussian in closed form, then the
  couplings by Adam (cosine decay, global-norm clip 1) on minibatches. Every ``eval_every`` steps
  the mean negative log-likelihood of ``y_validation [m, d]`` is measured; the parameters with the
  lowest are returned (early stopping: a flow overfits a small training split). Returns the flow
  and ``{'step', 'train_nll', 'validation_nll'}`` (nats per example) at each evaluation."""
  if num_steps < 1 or eval_every < 1 or num_layers < 1 or y.shape[1] < 2:
    raise ValueError(f'fit_flow needs num_steps, eval_every, num_layers >= 1 and dim >= 2; got {num_steps}, '
                     f'{eval_every}, {num_layers}, {y.shape[1]}')
  init_key, key = jax.random.split(key)
  flow = untrained_flow(noise.fit_gaussian(y, ridge), num_layers=num_layers, hidden=hidden, num_bins=num_bins,
                        bound=bound, key=init_key)
  schedule = optax.cosine_decay_schedule(learning_rate, num_steps)
  tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))
  y, y_validation = jnp.asarray(y, jnp.float32), jnp.asarray(y_validation, jnp.float32)
  validation_nll = jax.jit(lambda flow: -jnp.mean(jax.lax.map(flow.log_prob, y_validation.reshape(
      -1, 1, y.shape[1]), batch_size=256)))
  opt_state, history, best = tx.init(flow.params), {'step': [], 'train_nll': [], 'validation_nll': []}, None
  for start in range(0, num_steps, eval_every):
    key, chunk_key = jax.random.split(key)
    step = min(start + eval_every, num_steps)
    flow, opt_state, train_nll = _fit_chunk(tx, step - start, batch_size, flow, opt_state, y, chunk_key)
    score = float(validation_nll(flow))
    for name, value in (('step', step), ('train_nll', float(train_nll)), ('validation_nll', score)):
      history[name].append(value)
    if not np.isfinite(score):
      raise FloatingPointError(f'the flow diverged at step {step} (validation NLL {score}): '
                               'lower learning_rate')
    if best is None or score < best[0]:
      best = (score, flow)
    logging.info('flow step %d/%d: train NLL %.1f, validation NLL %.1f nats', step, num_steps,
                 float(train_nll), score)
  return best[1], history


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _fit_chunk(tx, num_steps, batch_size, flow, opt_state, y, key):
  """``num_steps`` Adam steps on the couplings' parameters; returns the mean training NLL of the last step."""
  def step(carry, key):
    params, opt_state = carry
    batch = y[jax.random.randint(key, (batch_size,), 0, y.shape[0])]
    loss, grads = jax.value_and_grad(lambda p: -jnp.mean(flow.replace(params=p).log_prob(batch)))(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), loss

  (params, opt_state), losses = jax.lax.scan(step, (flow.params, opt_state), jax.random.split(key, num_steps))
  return flow.replace(params=params), opt_state, losses[-1]
