"""Noise-contrastive objectives on log-ratio logits.

Every loss takes the model's log density ratio ``s(x) = log r(x) = log p(x) / q0(x)``
evaluated on data samples ``x_i ~ q*`` (``log_ratio_data``, shape ``[n]``) and on noise
samples ``y_j ~ q0`` (``log_ratio_noise``, shape ``[m]``), and returns
``(loss, diagnostics)`` with a scalar float32 loss to be *minimised* and a dict of scalar
diagnostics. Everything is computed in log space (``softplus``, ``logsumexp``): no loss
forms ``r = exp(s)`` or ``M * r``, so values and gradients stay finite in float32 for
magnitudes ``M`` in ``[1, 1e12]`` and logits in ``[-1e4, 1e4]``; past that, N^2CE takes
``log M`` itself (any size: ``log M = 480`` for a 480-nat chasm) and its noise term continues
linearly where NWJ's does. Low-precision logits (bfloat16) are accumulated in float32.
"""

from typing import Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp

from nnce_jax import schedules

Diagnostics = dict[str, jax.Array]
BinaryLoss = Callable[[jax.Array, jax.Array], tuple[jax.Array, Diagnostics]]

OBJECTIVES = ('nce', 'noisier_nce', 'nwj', 'ranking_nce')

# NWJ's exp(s) continues linearly above this logit: exp(50) ~ 5e21 leaves float32 room
# to sum a large batch, and the continuation keeps the gradient finite (C^1 at the joint).
NWJ_LINEAR_ABOVE = 50.0


def _at_least_float32(x: jax.Array) -> jax.Array:
  x = jnp.asarray(x)
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _log_softplus(t):
  """``log softplus(t)``, exact to float32 for every ``t`` (``t`` itself below -20, where
  softplus would underflow; the unused branch is fed a safe value so its gradient is not NaN)."""
  below = t < -20.0
  return jnp.where(below, t, jnp.log(jax.nn.softplus(jnp.where(below, 0.0, t))))


def _weighted_logistic_loss(log_ratio_data, log_ratio_noise, log_weight, in_log_space=False):
  """mean_i softplus(log w - s(x_i)) + w * mean_j softplus(s(y_j) - log w)."""
  s_data = _at_least_float32(log_ratio_data)
  s_noise = _at_least_float32(log_ratio_noise)
  log_weight = jnp.asarray(log_weight, s_data.dtype)
  data_term = jnp.mean(jax.nn.softplus(log_weight - s_data))
  if in_log_space:
    # exp(log w + log softplus(s - log w)) -> exp(s) as w -> inf: a w past float32 (given as
    # log w) is NWJ's exp(s), continued linearly like NWJ's above 50 nats.
    noise_term = jnp.mean(_guarded_exp(log_weight + _log_softplus(s_noise - log_weight)))
  else:
    # w * softplus(s - log w) <= w * |s| + w log 2: finite for w <= 1e12, |s| <= 1e4.
    noise_term = jnp.exp(log_weight) * jnp.mean(jax.nn.softplus(s_noise - log_weight))
  diagnostics = {
      # The Bayes classifier with prior odds w says "data" where s > log w.
      'accuracy': 0.5 * (jnp.mean(s_data > log_weight) + jnp.mean(s_noise < log_weight)),
      'log_ratio_data': jnp.mean(s_data),
      'log_ratio_noise': jnp.mean(s_noise),
  }
  return data_term + noise_term, diagnostics


def nce_loss(log_ratio_data, log_ratio_noise, noise_ratio=1.0):
  """Binary NCE (Gutmann & Hyvarinen) with noise ratio ``nu``.

  ``L = mean_i softplus(log nu - s(x_i)) + nu * mean_j softplus(s(y_j) - log nu)``

  ``nu`` is the ratio of noise to data samples the classifier assumes; pass ``nu * n``
  real noise samples for the textbook estimator. Shapes: ``[n]``, ``[m]`` -> scalar.
  """
  return _weighted_logistic_loss(log_ratio_data, log_ratio_noise, jnp.log(noise_ratio))


def noisier_nce_loss(log_ratio_data, log_ratio_noise, magnitude=None, *, log_magnitude=None):
  """Noisier NCE (N^2CE, Eq. 5 of Yu et al. 2026): noise virtually magnified by ``M``.

  ``L_M = mean_i softplus(log M - s(x_i)) + M * mean_j softplus(s(y_j) - log M)``

  No extra noise is drawn: ``M`` shifts the classifier logit by ``-log M`` and weights the
  noise term by ``M``. ``M = 1`` is :func:`nce_loss`; as ``M -> inf`` the gradient tends
  to the maximum-likelihood gradient and ``L_M - log M`` to :func:`nwj_loss`.
  ``magnitude`` may be a traced scalar (for schedules); give ``log_magnitude`` instead for
  ``M`` past float32 (``M = e^480``, the order of a high-dimensional chasm).
  Shapes: ``[n]``, ``[m]`` -> scalar.
  """
  if (magnitude is None) == (log_magnitude is None):
    raise ValueError('noisier_nce_loss takes one of magnitude and log_magnitude')
  if log_magnitude is None:
    return _weighted_logistic_loss(log_ratio_data, log_ratio_noise, jnp.log(magnitude))
  return _weighted_logistic_loss(log_ratio_data, log_ratio_noise, log_magnitude, in_log_space=True)


def _guarded_exp(s):
  """exp(s) below NWJ_LINEAR_ABOVE, its tangent line above: finite value and gradient."""
  c = NWJ_LINEAR_ABOVE
  return jnp.exp(jnp.minimum(s, c)) * (1.0 + jnp.maximum(s - c, 0.0))


def nwj_loss(log_ratio_data, log_ratio_noise):
  """NWJ / KL bound, the ``M -> inf`` limit of N^2CE, in its *unshifted* form.

  ``L = -mean_i s(x_i) + mean_j exp(s(y_j))``, minimised at ``s = log q*/q0`` where
  ``-L + 1 = KL(q* || q0)``; so ``1 - L`` is reported as ``kl_lower_bound``. ``exp`` is
  continued linearly above ``s = 50`` to stay finite. Shapes: ``[n]``, ``[m]`` -> scalar.
  """
  s_data = _at_least_float32(log_ratio_data)
  s_noise = _at_least_float32(log_ratio_noise)
  loss = -jnp.mean(s_data) + jnp.mean(_guarded_exp(s_noise))
  diagnostics = {
      'accuracy': 0.5 * (jnp.mean(s_data > 0) + jnp.mean(s_noise < 0)),
      'log_ratio_data': jnp.mean(s_data),
      'log_ratio_noise': jnp.mean(s_noise),
      'kl_lower_bound': 1.0 - loss,
  }
  return loss, diagnostics


def ranking_nce_loss(log_ratio_data, log_ratio_noise):
  """Ranking (softmax) NCE: find the data point among ``N`` candidates.

  ``L = mean_i [ -s(x_i) + logsumexp(s(x_i), s(y_i1), ..., s(y_i,N-1)) ]``

  Shapes: ``[n]`` and ``[n, N-1]`` (or ``[n * (N-1)]``, row ``i`` holding the noise of data
  point ``i``) -> scalar. The optimum is ``s = log q*/q0 + const``: log Z is not identified.
  """
  s_data = _at_least_float32(log_ratio_data)
  s_noise = _at_least_float32(log_ratio_noise).reshape(s_data.shape[0], -1)
  logits = jnp.concatenate([s_data[:, None], s_noise], axis=1)
  loss = jnp.mean(jax.nn.logsumexp(logits, axis=1) - s_data)
  diagnostics = {
      'accuracy': jnp.mean(jnp.argmax(logits, axis=1) == 0),
      'log_ratio_data': jnp.mean(s_data),
      'log_ratio_noise': jnp.mean(s_noise),
  }
  return loss, diagnostics


def log_ratio_l2_penalty(log_ratio_data, log_ratio_noise, weight):
  """Variance control for high-dimensional critics: ``lambda * E[s^2]``.

  ``P = weight * (mean_i s(x_i)^2 + mean_j s(y_j)^2) / 2``; shapes ``[n]``, ``[m]`` -> scalar.
  """
  s_data = _at_least_float32(log_ratio_data)
  s_noise = _at_least_float32(log_ratio_noise)
  return weight * 0.5 * (jnp.mean(jnp.square(s_data)) + jnp.mean(jnp.square(s_noise)))


def telescoping(loss_fn: BinaryLoss) -> BinaryLoss:
  """Applies a binary objective to ``K`` telescoping stages (TRE) and sums the losses.

  Stage ``k`` classifies waymark ``k-1`` (its "data") against waymark ``k`` (its "noise")
  with its own head ``s_k = log p_{k-1} / p_k``; the total log-ratio is
  ``log q*/q0 = sum_k s_k`` (:func:`telescoped_log_ratio`).

  ``L = sum_k loss_fn(s_k(x_{k-1}), s_k(x_k))``; shapes ``[K, n]``, ``[K, m]`` -> scalar.
  Diagnostics are averaged over stages.
  """

  def telescoped_loss(stage_log_ratio_data, stage_log_ratio_noise):
    chex.assert_rank([stage_log_ratio_data, stage_log_ratio_noise], 2)
    chex.assert_equal_shape_prefix([stage_log_ratio_data, stage_log_ratio_noise], 1)
    losses, diagnostics = jax.vmap(loss_fn)(stage_log_ratio_data, stage_log_ratio_noise)
    return jnp.sum(losses), jax.tree.map(jnp.mean, diagnostics)

  return telescoped_loss


def telescoped_log_ratio(stage_log_ratios: jax.Array) -> jax.Array:
  """``log q*/q0 (x) = sum_k s_k(x)``: stage heads on the last axis, ``[..., K] -> [...]``."""
  return jnp.sum(_at_least_float32(stage_log_ratios), axis=-1)


class Objective(NamedTuple):
  """A telescoped objective ready for training.

  ``loss(stage_log_ratio_data [K, n], stage_log_ratio_noise [K, n * noise_per_data], step=0,
  log_magnitude=None)`` returns ``(loss, diagnostics)``; ``step`` feeds a magnitude schedule;
  ``log_magnitude``, a (traced) scalar, overrides N^2CE's magnitude for this call: the
  automatic magnitude of :mod:`nnce_jax.schedules`, set between steps by the host.
  """
  loss: Callable[..., tuple[jax.Array, Diagnostics]]
  noise_per_data: int


def _cross_fitted_noisier_nce(log_ratio_data, log_ratio_noise):
  """N^2CE with ``M`` picked by :func:`~nnce_jax.schedules.effective_sample_size_log_magnitude`
  on one half of the noise and applied to the other half, and the other way round:

  ``L = (L_{M(B)}(x, y_A) + L_{M(A)}(x, y_B)) / 2``.

  An ``M`` read off the very noise points it weighs is small exactly when a point with a
  large ratio is present, so those points, which hold ``E_q0[exp(s)]`` at 1, would be
  systematically under-weighted and the ratio would drift upwards; each half's ``M`` is
  independent of the other half, so every term stays a proper scoring rule.
  """
  half = log_ratio_noise.shape[0] // 2
  if half < 1:
    raise ValueError('the ess magnitude needs at least 2 noise points per stage')
  first, second = log_ratio_noise[:half], log_ratio_noise[half:]
  log_m_first = schedules.effective_sample_size_log_magnitude(first)
  log_m_second = schedules.effective_sample_size_log_magnitude(second)
  loss_a, diagnostics_a = noisier_nce_loss(log_ratio_data, second, log_magnitude=log_m_first)
  loss_b, diagnostics_b = noisier_nce_loss(log_ratio_data, first, log_magnitude=log_m_second)
  diagnostics = jax.tree.map(lambda a, b: 0.5 * (a + b), diagnostics_a, diagnostics_b)
  return 0.5 * (loss_a + loss_b), {**diagnostics, 'log_magnitude': 0.5 * (log_m_first + log_m_second)}


def make_objective(name: str, *, magnitude: float | Callable = 1.0, log_magnitude: float | None = None,
                   noise_ratio: int = 1, num_candidates: int = 2, l2_penalty: float = 0.0) -> Objective:
  """Builds the objective ``name`` (one of :data:`OBJECTIVES`).

  ``noise_ratio`` real noise samples are drawn per data sample (``nce`` also uses it as its
  ``nu``); ``ranking_nce`` draws ``num_candidates - 1``. ``magnitude`` is N^2CE's ``M``, a
  schedule ``step -> M`` (:mod:`nnce_jax.schedules`), or ``'ess'``: each step's own ``M`` from
  its noise logits (:func:`~nnce_jax.schedules.effective_sample_size_log_magnitude`,
  cross-fitted over two halves of the noise, reported as the diagnostic ``log_magnitude``);
  ``log_magnitude``, when given, is a constant ``log M`` used instead (for ``M`` past 1e12).
  ``l2_penalty`` adds :func:`log_ratio_l2_penalty` with that weight to every stage.
  """
  def weight_at(step):
    """N^2CE's keyword for this step's ``M``, or ``None`` for ``'ess'`` (set by each stage)."""
    if log_magnitude is not None:
      return {'log_magnitude': log_magnitude}
    if magnitude == 'ess':
      return None
    return {'magnitude': magnitude(step) if callable(magnitude) else magnitude}

  if name == 'nce':
    base, noise_per_data = (lambda d, n, weight: nce_loss(d, n, noise_ratio)), noise_ratio
  elif name == 'noisier_nce':
    def base(d, n, weight):
      return _cross_fitted_noisier_nce(d, n) if weight is None else noisier_nce_loss(d, n, **weight)
    noise_per_data = noise_ratio
  elif name == 'nwj':
    base, noise_per_data = (lambda d, n, weight: nwj_loss(d, n)), noise_ratio
  elif name == 'ranking_nce':
    base, noise_per_data = (lambda d, n, weight: ranking_nce_loss(d, n)), num_candidates - 1
  else:
    raise ValueError(f'objective.name={name!r} is not one of {", ".join(OBJECTIVES)}')

  def loss(stage_log_ratio_data, stage_log_ratio_noise, step=0, log_magnitude=None):
    if log_magnitude is not None and name != 'noisier_nce':
      raise ValueError(f'log_magnitude is noisier_nce\'s, not {name}\'s')
    weight = weight_at(step) if log_magnitude is None else {'log_magnitude': log_magnitude}

    def stage_loss(log_ratio_data, log_ratio_noise):
      value, diagnostics = base(log_ratio_data, log_ratio_noise, weight)
      if l2_penalty:
        penalty = log_ratio_l2_penalty(log_ratio_data, log_ratio_noise, l2_penalty)
        value, diagnostics = value + penalty, {**diagnostics, 'l2_penalty': penalty}
      return value, diagnostics
    return telescoping(stage_loss)(stage_log_ratio_data, stage_log_ratio_noise)

  return Objective(loss, noise_per_data)
