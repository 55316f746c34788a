"""Annealed importance sampling (Neal 2001) of an EBM ``pi~(x) = q0(x) exp(s(x))``, both ways.

The path ``pi_b(x) ∝ q0(x) exp(b s(x))`` runs over temperatures ``0 = b_0 < ... < b_T = 1``;
each transition is ``num_leapfrog`` steps of HMC (blackjax's kernel) that leaves ``pi_b``
invariant, run in the coordinates ``w = L^-1 x`` of a ``preconditioner`` ``L`` (the Cholesky
factor of the noise's covariance: ``pi_0 = q0`` is then isotropic; the same as HMC with that
mass matrix, without a d x d factorisation per step), with one step size for all chains,
adapted towards ``target_acceptance`` from temperature to temperature.

- **Forward** (:func:`annealed_importance_sampling`): chains start at ``q0`` samples, and
  ``log w = sum_t (b_t - b_{t-1}) s(x_{t-1})``. ``E[w] = Z``, so ``log mean w`` estimates
  ``log Z`` and is below it in expectation (Jensen): a stochastic **lower** bound.
- **Reverse** (:func:`reverse_annealed_importance_sampling`, RAISE-like; Burda et al. 2015):
  chains start at samples of ``pi = pi~ / Z`` (held-out data standing in for them when the
  model fits) and anneal down to ``q0``, ``log v = -sum_t (b_t - b_{t-1}) s(x_t)``;
  ``E[v] = 1/Z`` for exact starts, so ``-log mean v`` is a stochastic **upper** bound.

The two bracket ``log Z``; a reverse estimate below the forward one means the brackets
cross (data are not samples of the model, or too few temperatures) and the result says so.
Everything is in log space; the log ratio is a batched callable ``s(x [c, d]) -> [c]``.
"""

from collections.abc import Callable

import blackjax
import chex
import jax
import jax.numpy as jnp
from flax import struct

from nnce_jax import normalizers

LogRatio = Callable[[jax.Array], jax.Array]  # x [chains, d] -> [chains]
TARGET_ACCEPTANCE = 0.65  # HMC's optimum in high dimension (Beskos et al. 2013)


@struct.dataclass
class AnnealingResult:
  """One direction of AIS: ``log Z`` (the reverse run's too, as ``-log mean v``), its delta-method
  standard error, the per-chain log weights ``[chains]``, their effective sample size, the
  mean acceptance rate and the final step size, and the chains' end points ``[chains, d]``."""
  log_z: jax.Array
  std_error: jax.Array
  log_weights: jax.Array
  effective_sample_size: jax.Array
  acceptance_rate: jax.Array
  step_size: jax.Array
  samples: jax.Array


def sigmoid_temperatures(num_temperatures: int, sharpness: float = 4.0) -> jax.Array:
  """``b_0 = 0 < ... < b_T = 1``, denser at both ends (Grosse et al. 2015's sigmoid schedule),
  ``[num_temperatures + 1]``."""
  t = jnp.linspace(-sharpness, sharpness, num_temperatures + 1)
  s = jax.nn.sigmoid(t)
  return (s - s[0]) / (s[-1] - s[0])


def _anneal(key, log_ratio: LogRatio, base, init, temperatures, *, num_leapfrog, step_size,
            preconditioner, target_acceptance, adaptation_rate):
  """Runs the chains ``init [c, d]`` through ``temperatures`` (either direction) and returns
  ``(sum_t (b_t - b_{t-1}) s(x_{t-1}), end points, mean acceptance, final step size)``."""
  chex.assert_rank(init, 2)
  kernel = blackjax.mcmc.hmc.build_kernel()
  dim = init.shape[1]
  if preconditioner is None:
    to_x, to_w = (lambda w: w), (lambda x: x)
  else:
    chex.assert_shape(preconditioner, (dim, dim))
    to_x = lambda w: w @ preconditioner.T  # noqa: E731
    to_w = lambda x: jax.scipy.linalg.solve_triangular(preconditioner, x.T, lower=True).T  # noqa: E731

  def transition(carry, inputs):
    w, s, log_step, log_weight = carry
    key, previous, current = inputs
    log_weight = log_weight + (current - previous) * s

    def log_density(position):  # of w; log |det L| is a constant the chain ignores
      x = to_x(position[None])
      return (base.log_prob(x) + current * log_ratio(x))[0]

    keys = jax.random.split(key, w.shape[0])
    states = jax.vmap(blackjax.mcmc.hmc.init, (0, None))(w, log_density)
    step = lambda k, state: kernel(k, state, log_density, jnp.exp(log_step), jnp.ones(dim),  # noqa: E731
                                   num_leapfrog)
    states, info = jax.vmap(step)(keys, states)
    acceptance = jnp.mean(info.acceptance_rate)
    log_step = log_step + adaptation_rate * (acceptance - target_acceptance)
    w = states.position
    return (w, log_ratio(to_x(w)), log_step, log_weight), acceptance

  inputs = (jax.random.split(key, temperatures.shape[0] - 1), temperatures[:-1], temperatures[1:])
  log_step = jnp.log(jnp.asarray(step_size, jnp.float32))
  carry = (to_w(init), log_ratio(init), log_step, jnp.zeros(init.shape[0]))
  (w, _, log_step, log_weight), acceptance = jax.lax.scan(transition, carry, inputs)
  return log_weight, to_x(w), jnp.mean(acceptance), jnp.exp(log_step)


def _result(log_weights, sign, x, acceptance, step_size) -> AnnealingResult:
  estimate = normalizers.importance_sampling(log_weights)
  return AnnealingResult(sign * estimate.log_z, estimate.std_error, log_weights,
                         normalizers.effective_sample_size(log_weights), acceptance, step_size, x)


def annealed_importance_sampling(key, log_ratio: LogRatio, base, *, num_chains: int = 64,
                                 num_temperatures: int = 1000, num_leapfrog: int = 5, step_size: float = 0.2,
                                 preconditioner=None, target_acceptance: float = TARGET_ACCEPTANCE,
                                 adaptation_rate: float = 0.05) -> AnnealingResult:
  """Forward AIS from ``base`` (``q0``: ``sample``, ``log_prob``) to ``q0 exp(s)``: a stochastic
  lower bound on ``log Z`` and ``num_chains`` approximate samples of the model.

  ``preconditioner``: a lower-triangular ``[d, d]`` ``L`` (default: none); pass the Cholesky
  factor of the noise's covariance. Each temperature costs ``num_leapfrog + 1`` gradients of
  ``s`` per chain.
  """
  init_key, anneal_key = jax.random.split(key)
  init = base.sample(init_key, (num_chains,))
  log_w, x, acceptance, h = _anneal(anneal_key, log_ratio, base, init, sigmoid_temperatures(num_temperatures),
                                    num_leapfrog=num_leapfrog, step_size=step_size,
                                    preconditioner=preconditioner,
                                    target_acceptance=target_acceptance, adaptation_rate=adaptation_rate)
  return _result(log_w, 1.0, x, acceptance, h)


def reverse_annealed_importance_sampling(key, log_ratio: LogRatio, base, init: jax.Array, *,
                                         num_temperatures: int = 1000, num_leapfrog: int = 5,
                                         step_size: float = 0.2, preconditioner=None,
                                         target_acceptance: float = TARGET_ACCEPTANCE,
                                         adaptation_rate: float = 0.05) -> AnnealingResult:
  """Reverse AIS from samples ``init [chains, d]`` of the model (held-out data where it fits)
  down to ``q0``: a stochastic upper bound on ``log Z`` (``log_z`` is ``-log mean v``)."""
  log_w, x, acceptance, h = _anneal(key, log_ratio, base, init, sigmoid_temperatures(num_temperatures)[::-1],
                                    num_leapfrog=num_leapfrog, step_size=step_size,
                                    preconditioner=preconditioner,
                                    target_acceptance=target_acceptance, adaptation_rate=adaptation_rate)
  return _result(log_w, -1.0, x, acceptance, h)
