"""Noise-magnitude schedules ``M(step)`` for N^2CE: constant (the paper), a decay, or automatic.

A large ``M`` follows the MLE gradient (fast early), a small one has low gradient variance
(accurate late); a decay from ``initial`` to ``final`` over ``num_steps`` tries to get both.
Each schedule is a pure ``step -> M`` usable inside ``jit`` (``step`` may be traced).
:class:`AutomaticMagnitude` instead decides ``M`` from held-out evaluations as training goes.
"""

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

SCHEDULES = ('constant', 'linear', 'cosine', 'exponential')


def magnitude_schedule(kind: str, initial: float, final: float, num_steps: int) -> Callable:
  """``M(step)``: ``constant`` = ``initial``; from ``initial`` at step 0 to ``final`` at
  ``num_steps`` (then held): ``linear`` in ``M``, ``cosine`` in ``M`` (half a cosine), or
  ``exponential`` (linear in ``log M``)."""
  if kind not in SCHEDULES:
    raise ValueError(f'objective.magnitude_schedule={kind!r} is not one of {", ".join(SCHEDULES)}')
  if kind == 'constant':
    return lambda step: jnp.float32(initial)

  def magnitude(step):
    t = jnp.clip(jnp.asarray(step, jnp.float32) / num_steps, 0.0, 1.0)
    if kind == 'linear':
      return initial + (final - initial) * t
    if kind == 'cosine':
      return final + (initial - final) * 0.5 * (1.0 + jnp.cos(math.pi * t))
    return jnp.exp(math.log(initial) + (math.log(final) - math.log(initial)) * t)

  return magnitude


AUTOMATIC = ('kl', 'plateau')  # host-side rules of AutomaticMagnitude; 'ess' is decided inside the step


def effective_sample_size_log_magnitude(log_ratio_noise: jax.Array, fraction: float = 0.5,
                                        max_log_magnitude: float = math.log(1e4), num_candidates: int = 9):
  """``log M`` from the step's own noise logits: the largest on a grid ``[0, max_log_magnitude]``
  whose noise-term weights keep an effective sample size of at least ``fraction`` of NCE's.

  N^2CE's noise term weighs ``grad s(y_j)`` by ``w_j = M sigmoid(s(y_j) - log M) = M r_j / (M + r_j)``:
  ``r_j`` for ``r_j << M``, capped at ``M``. A larger ``M`` un-saturates the data term (the
  chasm) but lets the few noise points with a large ratio dominate the step: the
  ``O(M^2 / n)`` variance of Prop. 3.3. ``ESS = (sum w)^2 / sum w^2`` measures that dominance on
  the batch itself; this rule grows ``M`` while the ESS stays within ``fraction`` of its value
  at ``M = 1``. ``[m] -> scalar``, no gradient (``M`` is a setting, not a parameter).
  """
  s = jax.lax.stop_gradient(jnp.asarray(log_ratio_noise, jnp.float32))
  candidates = jnp.linspace(0.0, max_log_magnitude, num_candidates)
  log_w = candidates[:, None] + jax.nn.log_sigmoid(s[None, :] - candidates[:, None])   # [C, m]
  log_ess = 2 * jax.nn.logsumexp(log_w, axis=1) - jax.nn.logsumexp(2 * log_w, axis=1)  # [C]
  allowed = log_ess >= log_ess[0] + math.log(fraction)
  return jnp.max(jnp.where(allowed, candidates, 0.0))


class AutomaticMagnitude:
  """N^2CE's ``M`` chosen during training from the held-out evaluations (host side).

  Why: every ``M`` has the same optimum (``s = log q*/q0``), so ``M`` only decides the path
  and the noise of the estimate. Far from the optimum a large ``M`` follows the MLE gradient,
  which NCE's saturated classifier does not (the chasm); near it the noise term is an
  importance-sampling average with ``O(M^2 / n)`` variance, and NCE (``M = 1``) has the
  smaller error on a finite sample. Rules:

  - ``kl`` (the default, :func:`nnce_jax.fit.fit_ratio`'s ``'auto'``): ``M = exp(KL)`` of the
    current held-out estimate ``E_q*[s]``, clipped to ``[final, initial]`` (``initial`` until
    the first evaluation): the shift ``log M`` sits where typical data points' logits are, so
    they do not saturate. On 10 benchmarks with a closed-form KL it was never worse than NCE
    nor than ``M = 100`` at the last step, and far better than NCE on deep chasms;
  - ``plateau``: start at ``initial`` and divide ``M`` by ``factor`` (not below ``final``)
    whenever the held-out objective at the current ``M`` has not improved for ``patience``
    evaluations: large while it makes progress, NCE once it stalls. Measured worse: a large
    early ``M`` is slow where its variance shows (a 10-D MLP), and Adam carries that phase.

  :meth:`update` takes one evaluation (``loss``: the held-out objective at the current ``M``;
  ``kl``: the held-out ``E_q*[s]``) and returns the new ``log M``; :attr:`log_magnitude` is
  the one in force. :func:`nnce_jax.fit.fit_ratio` feeds it.
  """

  def __init__(self, rule: str = 'kl', initial: float = 1e4, final: float = 1.0, factor: float = 10.0,
               patience: int = 2):
    if rule not in AUTOMATIC:
      raise ValueError(f'magnitude rule {rule!r} is not one of {", ".join(AUTOMATIC)}')
    if not (np.isfinite(initial) and np.isfinite(final) and 1.0 <= final <= initial):
      raise ValueError(f'the automatic magnitude needs 1 <= final={final} <= initial={initial}, finite')
    if factor <= 1.0 or patience < 1:
      raise ValueError(f'factor={factor} must be > 1 and patience={patience} must be >= 1')
    self.rule, self.factor, self.patience = rule, factor, patience
    self.log_initial, self.log_final = math.log(initial), math.log(final)
    self.log_magnitude = self.log_initial
    self._best, self._stale = math.inf, 0

  @property
  def at_final(self) -> bool:
    return self.log_magnitude <= self.log_final

  def update(self, *, loss: float, kl: float) -> float:
    if self.rule == 'kl':
      if np.isfinite(kl):
        self.log_magnitude = min(max(float(kl), self.log_final), self.log_initial)
      return self.log_magnitude
    if np.isfinite(loss) and loss < self._best:
      self._best, self._stale = loss, 0
    else:
      self._stale += 1
    if self._stale >= self.patience and not self.at_final:
      self.log_magnitude = max(self.log_magnitude - math.log(self.factor), self.log_final)
      self._best, self._stale = math.inf, 0  # the loss at a new M is on a new scale
    return self.log_magnitude
