"""Noise-magnitude schedules ``M(step)`` for N^2CE: constant (the paper) or a decay.

A large ``M`` follows the MLE gradient (fast early), a small one has low gradient variance
(accurate late); a decay from ``initial`` to ``final`` over ``num_steps`` tries to get both.
Each schedule is a pure ``step -> M`` usable inside ``jit`` (``step`` may be traced).
"""

import math
from collections.abc import Callable

import jax.numpy as jnp

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
