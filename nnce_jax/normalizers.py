"""Estimators of a normalising constant ``Z = ∫ pi~`` in log space (Martino's unified view).

Every estimator takes the log ratio ``l = log pi~ - log q`` of an unnormalised target
``pi~`` to a normalised proposal ``q``, evaluated on samples rather than as callables:

- ``log_ratio_target``: ``l(x_i)`` at ``N1`` samples ``x_i ~ pi = pi~ / Z``, shape ``[N1]``;
- ``log_ratio_proposal``: ``l(y_j)`` at ``N2`` samples ``y_j ~ q``, shape ``[N2]``.

For an EBM ``pi~ = exp(s) q0`` with proposal ``q0`` the log ratio is the model's ``s``
itself. Each returns a :class:`LogNormalizer` with ``log Z``, a standard error of ``log Z``
(delta method / asymptotic variance, so a user sees how far to trust it) and, for the
iterative ones, the iteration count and whether the tolerance was reached. Everything is
``logsumexp``: no ``exp(l)`` is formed, so ratios of hundreds of nats are fine.

**The equivalence** (Meng & Wong 1996; Geyer 1994; Martino 2026). With
``a = l - log Z + log(N1 / N2)`` (the log odds that a pooled point came from ``pi``),
each of

- the optimal-bridge fixed point (:func:`optimal_bridge_sampling`),
- reverse logistic regression's stationarity in ``log Z`` (:func:`reverse_logistic_regression`),
- pooled multiple IS with the balance heuristic (:func:`multiple_importance_sampling`),
- NCE with noise ratio ``nu = N2 / N1`` and logit ``s = l - log Z``, stationary in ``log Z``
  (:func:`nce_log_normalizer`)

reduces to the one equation ``sum_i sigmoid(-a(x_i)) = sum_j sigmoid(a(y_j))``, whose
left side grows and right side falls in ``log Z``: a unique root. So on the *same pooled
samples*, with the proportions ``N1 : N2`` the samples actually have, and with only
``log Z`` estimated (``l`` fixed), the four give the same number; they differ only in the
algorithm that finds it (fixed point, Newton, secant, autodiff Newton on
:func:`nnce_jax.objectives.nce_loss`). ``tests/test_normalizers.py`` checks agreement to 1e-5.
When the two samples barely overlap the root is flat (its standard error is nats, not
hundredths) and the algorithms may stop at different points of it: trust the standard
error, not the agreement.
"""

from collections.abc import Callable

import chex
import jax
import jax.numpy as jnp
from flax import struct

from nnce_jax import objectives

DEFAULT_TOLERANCE = 1e-6  # on |change of log Z| / (1 + |log Z|) between iterations
DEFAULT_MAX_ITERATIONS = 1000


@struct.dataclass
class LogNormalizer:
  """An estimate of ``log Z``, its standard error, and how the iteration ended."""
  log_z: jax.Array
  std_error: jax.Array
  iterations: jax.Array = 0
  converged: jax.Array = True


def _float32(x):
  x = jnp.asarray(x)
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def log_mean_exp(log_values: jax.Array) -> jax.Array:
  """``log mean exp(v)`` over the last axis."""
  return jax.nn.logsumexp(log_values, axis=-1) - jnp.log(log_values.shape[-1])


def relative_variance_of_mean(log_values: jax.Array) -> jax.Array:
  """``Var(mean w) / (mean w)^2`` for ``w = exp(v)``: ``(N sum w~^2 - 1) / (N - 1)``.

  ``w~`` are the self-normalised weights, so this equals ``(N / ESS - 1) / (N - 1)``; by the
  delta method it is the variance of ``log mean w``.
  """
  n = log_values.shape[-1]
  normalised = jax.nn.log_softmax(log_values, axis=-1)
  sum_squares = jnp.exp(jax.nn.logsumexp(2 * normalised, axis=-1))
  return jnp.maximum(n * sum_squares - 1.0, 0.0) / (n - 1)


def effective_sample_size(log_weights: jax.Array) -> jax.Array:
  """Kish's ``ESS = 1 / sum w~^2`` of importance weights given in log space."""
  normalised = jax.nn.log_softmax(_float32(log_weights), axis=-1)
  return jnp.exp(-jax.nn.logsumexp(2 * normalised, axis=-1))


def importance_sampling(log_ratio_proposal: jax.Array) -> LogNormalizer:
  """``Z ≈ mean_j pi~(y_j) / q(y_j)``, ``y_j ~ q``; standard error by the delta method."""
  chex.assert_rank(log_ratio_proposal, 1)
  log_w = _float32(log_ratio_proposal)
  return LogNormalizer(log_mean_exp(log_w), jnp.sqrt(relative_variance_of_mean(log_w)))


def reverse_importance_sampling(log_ratio_target: jax.Array) -> LogNormalizer:
  """Reverse (harmonic-mean) IS: ``1/Z ≈ mean_i q(x_i) / pi~(x_i)``, ``x_i ~ pi``.

  Needs ``q`` heavier-tailed than ``pi`` for finite variance; the delta-method standard
  error is the same as IS's on the reciprocal weights.
  """
  chex.assert_rank(log_ratio_target, 1)
  log_v = -_float32(log_ratio_target)  # log q / pi~
  return LogNormalizer(-log_mean_exp(log_v), jnp.sqrt(relative_variance_of_mean(log_v)))


def bridge_sampling(log_ratio_target, log_ratio_proposal, log_bridge_target=None,
                    log_bridge_proposal=None) -> LogNormalizer:
  """Bridge sampling with a given bridge ``alpha``:

  ``Z ≈ mean_j pi~(y_j) alpha(y_j) / mean_i q(x_i) alpha(x_i)``.

  The bridge enters as ``h = log(q alpha)`` at the samples (``[N1]``, ``[N2]``), so the
  numerator is ``mean_j exp(l_j + h_j)`` and the denominator ``mean_i exp(h_i)``. Default:
  the geometric bridge ``alpha = (pi~ q)^(-1/2)``, i.e. ``h = -l / 2``. The standard error
  is the asymptotic one for independent draws (Fruhwirth-Schnatter 2004):
  ``Var(log Z) ≈ RelVar(numerator mean) + RelVar(denominator mean)``.
  """
  l_x, l_y = _float32(log_ratio_target), _float32(log_ratio_proposal)
  chex.assert_rank([l_x, l_y], 1)
  h_x = -0.5 * l_x if log_bridge_target is None else _float32(log_bridge_target)
  h_y = -0.5 * l_y if log_bridge_proposal is None else _float32(log_bridge_proposal)
  chex.assert_equal_shape([l_x, h_x])
  chex.assert_equal_shape([l_y, h_y])
  numerator, denominator = l_y + h_y, h_x
  variance = relative_variance_of_mean(numerator) + relative_variance_of_mean(denominator)
  return LogNormalizer(log_mean_exp(numerator) - log_mean_exp(denominator), jnp.sqrt(variance))


def _pooled_log_odds(l_x, l_y, log_z):
  """``a = l - log Z + log(N1/N2)`` at target and proposal samples."""
  shift = jnp.log(l_x.shape[0]) - jnp.log(l_y.shape[0]) - log_z
  return l_x + shift, l_y + shift


def pooled_std_error(log_ratio_target, log_ratio_proposal, log_z) -> jax.Array:
  """Asymptotic standard error of the pooled (optimal-bridge) ``log Z``:

  ``Var(log Z) = 1 / I - (1/N1 + 1/N2)``, ``I = sum_pooled sigmoid(a) sigmoid(-a)``
  (Meng & Wong 1996, Eq. 4.2; Geyer 1994): the Fisher information of ``log Z`` in the
  pooled logistic likelihood, less the part due to the sample sizes being fixed.
  """
  l_x, l_y = _float32(log_ratio_target), _float32(log_ratio_proposal)
  a = jnp.concatenate(_pooled_log_odds(l_x, l_y, log_z))
  information = jnp.sum(jax.nn.sigmoid(a) * jax.nn.sigmoid(-a))
  variance = 1.0 / information - (1.0 / l_x.shape[0] + 1.0 / l_y.shape[0])
  return jnp.sqrt(jnp.maximum(variance, 0.0))


def _iterate(update: Callable, log_z0, tolerance, max_iterations):
  """Runs ``state <- update(state)`` (an array whose last entry is log Z) until log Z's
  estimated distance to the fixed point is below ``tolerance (1 + |log Z|)`` (relative
  above 1: float32 resolves ``log Z = 100`` to ~1e-5).

  A linearly converging map with rate ``rho`` is ``|step| rho / (1 - rho)`` from its fixed
  point, far more than ``|step|`` when ``rho`` is near 1 (MIS under poor overlap), so the
  rate is estimated from consecutive steps.
  """

  def cond(carry):
    _, distance, _, i = carry
    return (distance > tolerance) & (i < max_iterations)

  def body(carry):
    log_z, _, previous_step, i = carry
    new = update(log_z)
    latest = jnp.ravel(new)[-1]
    step = jnp.abs(latest - jnp.ravel(log_z)[-1]) / (1.0 + jnp.abs(latest))
    rate = jnp.clip(step / jnp.maximum(previous_step, 1e-30), 0.0, 0.999)
    return new, step / (1.0 - rate), step, i + 1

  log_z, distance, _, i = jax.lax.while_loop(cond, body, (log_z0, jnp.inf, jnp.inf, 0))
  return log_z, i, distance <= tolerance


def _pooled_estimate(update, log_ratio_target, log_ratio_proposal, tolerance, max_iterations):
  l_x, l_y = _float32(log_ratio_target), _float32(log_ratio_proposal)
  chex.assert_rank([l_x, l_y], 1)
  start = bridge_sampling(l_x, l_y).log_z  # the geometric bridge: close, and always finite
  log_z, iterations, converged = _iterate(lambda c: update(l_x, l_y, c), start, tolerance,
                                          max_iterations)
  return LogNormalizer(log_z, pooled_std_error(l_x, l_y, log_z), iterations, converged)


def optimal_bridge_sampling(log_ratio_target, log_ratio_proposal, *, tolerance=DEFAULT_TOLERANCE,
                            max_iterations=DEFAULT_MAX_ITERATIONS) -> LogNormalizer:
  """Bridge sampling with the optimal bridge ``alpha ∝ 1 / (s1 pi~ / Z + s2 q)``.

  ``s_k = N_k / (N1 + N2)``. ``Z`` appears in its own bridge, so iterate Meng & Wong's

  ``Z <- [mean_j l_j / (s1 l_j / Z + s2)] / [mean_i 1 / (s1 l_i / Z + s2)]``  (``l = pi~/q``),

  in log space from the geometric-bridge estimate, until ``log Z`` moves less than
  ``tolerance``. Standard error: :func:`pooled_std_error`.
  """

  def update(l_x, l_y, log_z):
    log_s1 = jnp.log(l_x.shape[0] / (l_x.shape[0] + l_y.shape[0]))
    log_s2 = jnp.log(l_y.shape[0] / (l_x.shape[0] + l_y.shape[0]))
    log_mix = lambda ratio: jnp.logaddexp(log_s1 + ratio - log_z, log_s2)  # noqa: E731
    return log_mean_exp(l_y - log_mix(l_y)) - log_mean_exp(-log_mix(l_x))

  return _pooled_estimate(update, log_ratio_target, log_ratio_proposal, tolerance, max_iterations)


def multiple_importance_sampling(log_ratio_target, log_ratio_proposal, *,
                                 tolerance=DEFAULT_TOLERANCE,
                                 max_iterations=DEFAULT_MAX_ITERATIONS) -> LogNormalizer:
  """Pooled multiple IS with the balance heuristic over both samples:

  ``Z = sum_{z in pooled} pi~(z) / (N1 pi~(z) / Z + N2 q(z))``,

  the deterministic-mixture weight treating the ``N1`` target draws as draws from
  ``pi~ / Z``. ``Z`` is on both sides. Its map ``Z <- rhs(Z)`` converges linearly at rate
  ``1 - I / N1`` (``I`` as in :func:`pooled_std_error`): 0.99 per step already at a few nats
  of KL, with steps below float32's resolution of ``log Z``. So the fixed point is found by
  the secant method on the map's residual ``log(rhs(Z) / Z)``, started from the geometric
  bridge and one step of the map.
  """
  l_x, l_y = _float32(log_ratio_target), _float32(log_ratio_proposal)
  chex.assert_rank([l_x, l_y], 1)

  def residual(log_z):  # log(rhs / Z) = log1p(excess / N1), as rhs / Z = sum_pooled sigmoid(a) / N1
    a_x, a_y = _pooled_log_odds(l_x, l_y, log_z)
    # sum_i sigmoid(a_i) = N1 - sum_i sigmoid(-a_i): sum the small excess directly rather
    # than cancel two sums of size N1 in float32.
    excess = jnp.sum(jax.nn.sigmoid(a_y)) - jnp.sum(jax.nn.sigmoid(-a_x))
    # excess -> -N1 as log Z -> inf: keep log1p finite there.
    return jnp.log1p(jnp.maximum(excess / l_x.shape[0], -1.0 + 1e-7))

  def secant(pair):
    previous, current = pair[0], pair[1]
    r_previous, r_current = residual(previous), residual(current)
    # The residual falls as log Z grows; where it is flat to float32 or the slope estimate
    # has the wrong sign, fall back to a plain step of the map. Steps stay within 10 nats.
    flat = (r_current - r_previous) * (current - previous) >= 0
    slope = (r_current - r_previous) / jnp.where(flat, 1.0, current - previous)
    step = jnp.where(flat, r_current, -r_current / jnp.where(flat, -1.0, slope))
    return jnp.stack([current, current + jnp.clip(step, -10.0, 10.0)])

  start = bridge_sampling(l_x, l_y).log_z
  pair, iterations, converged = _iterate(secant, jnp.stack([start, start + residual(start)]),
                                         tolerance, max_iterations)
  log_z = pair[1]
  return LogNormalizer(log_z, pooled_std_error(l_x, l_y, log_z), iterations, converged)


def _newton(gradient_and_curvature, log_z0, tolerance, max_iterations, max_step=1.0):
  """Newton's method on a convex 1-D loss; steps clipped to ``max_step`` (a trust region:
  far from the root the logistic curvature vanishes and a raw step would overshoot)."""

  def update(log_z):
    gradient, curvature = gradient_and_curvature(log_z)
    # Curvature that underflowed (or rounded to -0) at the root would make 0/0 = NaN.
    step = jnp.where(curvature > 0, gradient / jnp.where(curvature > 0, curvature, 1.0),
                     jnp.sign(gradient) * max_step)
    return log_z - jnp.clip(step, -max_step, max_step)

  return _iterate(update, log_z0, tolerance, max_iterations)


def reverse_logistic_regression(log_ratio_target, log_ratio_proposal, *,
                                tolerance=DEFAULT_TOLERANCE,
                                max_iterations=DEFAULT_MAX_ITERATIONS) -> LogNormalizer:
  """Reverse logistic regression (Geyer 1994): maximise over ``log Z`` the pooled
  likelihood of labelling each point with the sample it came from,

  ``sum_i log sigmoid(a(x_i)) + sum_j log sigmoid(-a(y_j))``, ``a = l - log Z + log(N1/N2)``,

  by Newton's method (gradient and curvature in closed form).
  """
  l_x, l_y = _float32(log_ratio_target), _float32(log_ratio_proposal)
  chex.assert_rank([l_x, l_y], 1)

  def gradient_and_curvature(log_z):  # of the negative log-likelihood in log Z
    a_x, a_y = _pooled_log_odds(l_x, l_y, log_z)
    gradient = jnp.sum(jax.nn.sigmoid(-a_x)) - jnp.sum(jax.nn.sigmoid(a_y))
    a = jnp.concatenate([a_x, a_y])
    return gradient, jnp.sum(jax.nn.sigmoid(a) * jax.nn.sigmoid(-a))

  start = bridge_sampling(l_x, l_y).log_z
  log_z, iterations, converged = _newton(gradient_and_curvature, start, tolerance, max_iterations)
  return LogNormalizer(log_z, pooled_std_error(l_x, l_y, log_z), iterations, converged)


def nce_log_normalizer(log_ratio_target, log_ratio_proposal, *, tolerance=DEFAULT_TOLERANCE,
                       max_iterations=DEFAULT_MAX_ITERATIONS) -> LogNormalizer:
  """The ``log Z`` at which :func:`nnce_jax.objectives.nce_loss` is stationary, with the
  target samples as data, the proposal samples as noise, ``nu = N2 / N1`` and logits
  ``s = l - log Z``: the library's own NCE loss, differentiated by JAX, solved by Newton.
  """
  l_x, l_y = _float32(log_ratio_target), _float32(log_ratio_proposal)
  chex.assert_rank([l_x, l_y], 1)
  noise_ratio = l_y.shape[0] / l_x.shape[0]
  loss = lambda log_z: objectives.nce_loss(l_x - log_z, l_y - log_z, noise_ratio)[0]  # noqa: E731
  gradient_and_curvature = lambda log_z: (jax.grad(loss)(log_z), jax.grad(jax.grad(loss))(log_z))  # noqa: E731

  start = bridge_sampling(l_x, l_y).log_z
  log_z, iterations, converged = _newton(gradient_and_curvature, start, tolerance, max_iterations)
  return LogNormalizer(log_z, pooled_std_error(l_x, l_y, log_z), iterations, converged)


ESTIMATORS = {
    'importance_sampling': lambda l_x, l_y: importance_sampling(l_y),
    'reverse_importance_sampling': lambda l_x, l_y: reverse_importance_sampling(l_x),
    'geometric_bridge': bridge_sampling,
    'optimal_bridge': optimal_bridge_sampling,
    'reverse_logistic_regression': reverse_logistic_regression,
    'multiple_importance_sampling': multiple_importance_sampling,
    'nce': nce_log_normalizer,
}
"""Every estimator as ``f(log_ratio_target [N1], log_ratio_proposal [N2]) -> LogNormalizer``."""


def estimate_all(log_ratio_target, log_ratio_proposal) -> dict[str, LogNormalizer]:
  """Every estimator of :data:`ESTIMATORS` on the same samples."""
  return {name: f(log_ratio_target, log_ratio_proposal) for name, f in ESTIMATORS.items()}
