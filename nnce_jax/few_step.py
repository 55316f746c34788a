"""A ``T``-step Gaussian sampler cut from a DDPM teacher (FastDPM's VAR schedule), the policy
that DxMI fine-tunes.

From ``x_0 ~ N(0, I)``, generation step ``i = 0 .. T-1`` draws

    x_{i+1} = mu_i(x_i) + sigma_i xi,   mu_i(x) = a_i x + b_i eps_hat(x, tau_i),   xi ~ N(0, I).

The user noise levels ``eta_k = beta_1 (1 + k c)^2`` (quadratic in ``k``) define
``G_k = prod_{j <= k} (1 - eta_j)``, with ``c`` chosen so that ``G_{T-1}`` equals the teacher's
``abar_N`` (or as near as FastDPM's bound on ``c`` allows: see :func:`var_noise_levels`).
Step ``i`` goes from ``g = G_{T-1-i}`` to ``g' = G_{T-2-i}`` (``g' = 1`` at the last):

    a_i = sqrt(g' / g),   sigma_i = sqrt((1 - g') / (1 - g) * (1 - g / g')),
    b_i = sqrt(1 - g' - sigma_i^2) - sqrt(1 - g) a_i,

the DDPM posterior step between the two noise levels, and ``tau_i`` is the teacher's
(fractional) step whose ``abar`` is ``g``. Equivalently ``mu_i = sqrt(g') x0_hat + sqrt(1 - g' -
sigma_i^2) eps_hat`` with the denoised guess ``x0_hat = (x - sqrt(1 - g) eps_hat) / sqrt(g)``;
``x0_bound`` clips that guess to the data's range (DDPM's ``clip_denoised``), which the reference
sampler does not do. The noise ``sigma_i`` is the policy's own parameter
(``log_sigma``, initialised here; the last step's, 0 in the teacher, starts at 1e-3 so that its
log is finite); ``a_i``, ``b_i`` and ``tau_i`` stay fixed.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nnce_jax.ddpm import EpsilonFn, Schedule

LAST_SIGMA = 1e-3


class FewStepSchedule(NamedTuple):
  teacher_steps: jax.Array  # [T] tau_i, decreasing to 0
  x_scale: jax.Array        # [T] a_i
  epsilon_scale: jax.Array  # [T] b_i
  sigma: jax.Array          # [T] sigma_i, the initial noise of each step
  alpha_cumprod: jax.Array  # [T] g, the noise level each step starts from


def var_noise_levels(teacher: Schedule, num_steps: int) -> np.ndarray:
  """``eta [T]``: quadratic levels ``beta_1 (1 + k c)^2`` whose product ``prod (1 - eta)``
  matches the teacher's ``abar_N`` (bisection on ``c``), with ``c <= 0.95 / sqrt(beta_1) / T``
  as FastDPM and DxMI bound it. Below about 30 steps that bound binds (``T = 10`` gives
  ``eta = 1e-4 .. 0.748`` and ``G_{T-1} = 0.021``): the sampler then starts from ``N(0, I)`` at a
  lower noise level than the teacher's last. ``[1 - abar_N]`` for one step."""
  beta_1 = float(teacher.betas[0])
  target = float(teacher.alphas_cumprod[-1])
  if num_steps == 1:  # one step from the teacher's last noise level straight to data
    return np.array([1 - target])
  levels = lambda c: beta_1 * (1 + np.arange(num_steps) * c) ** 2  # noqa: E731
  low, high = 0.0, 0.95 / np.sqrt(beta_1) / num_steps  # eta < 0.95 at the top end
  if np.prod(1 - levels(high)) > target:  # too few steps to reach abar_N
    return levels(high)
  for _ in range(200):
    middle = 0.5 * (low + high)
    low, high = (middle, high) if np.prod(1 - levels(middle)) > target else (low, middle)
  return levels(high)


def teacher_step(teacher: Schedule, alpha_cumprod: np.ndarray) -> np.ndarray:
  """The fractional teacher step ``n`` with ``abar(n) = alpha_cumprod`` (``log abar`` linear
  between integer steps; clipped to ``[0, N - 1]``)."""
  log_abar = np.log(np.asarray(teacher.alphas_cumprod, np.float64))
  return np.interp(-np.log(alpha_cumprod), -log_abar, np.arange(log_abar.shape[0]))


def var_schedule(teacher: Schedule, num_steps: int) -> FewStepSchedule:
  """The ``T = num_steps`` step schedule of the module docstring, in generation order."""
  if num_steps < 1:
    raise ValueError(f'num_steps={num_steps}: a sampler needs at least 1 step')
  g_all = np.cumprod(1 - var_noise_levels(teacher, num_steps))  # G_0 .. G_{T-1}
  g = g_all[::-1]                                     # step i starts at G_{T-1-i}
  g_next = np.concatenate([g_all[-2::-1], [1.0]])     # and ends at G_{T-2-i}, 1 at the last
  x_scale = np.sqrt(g_next / g)
  sigma = np.sqrt(np.maximum((1 - g_next) / (1 - g) * (1 - g / g_next), 0.0))
  epsilon_scale = np.sqrt(np.maximum(1 - g_next - sigma ** 2, 0.0)) - np.sqrt(1 - g) * x_scale
  sigma[-1] = LAST_SIGMA
  as_array = lambda v: jnp.asarray(v, jnp.float32)  # noqa: E731
  return FewStepSchedule(as_array(teacher_step(teacher, g)), as_array(x_scale), as_array(epsilon_scale),
                         as_array(sigma), as_array(g))


def step_mean(epsilon_fn: EpsilonFn, schedule: FewStepSchedule, x: jax.Array, step: jax.Array,
              x0_bound: float | None = None) -> jax.Array:
  """``mu_i(x) = a_i x + b_i eps_hat(x, tau_i)`` for ``x [B, ...]`` and steps ``i`` ``[B]`` (int).

  ``x0_bound``: the same step from ``clip(x0_hat, -x0_bound, x0_bound)``, i.e. with ``eps_hat``
  replaced by the noise ``(x - sqrt(g) x0) / sqrt(1 - g)`` that the clipped guess implies."""
  shape = (-1,) + (1,) * (x.ndim - 1)
  per_step = lambda v: v[step].reshape(shape)  # noqa: E731
  eps = epsilon_fn(x, schedule.teacher_steps[step])
  if x0_bound is not None:
    g = per_step(schedule.alpha_cumprod)
    signal, noise = jnp.sqrt(g), jnp.sqrt(1 - g)
    x0 = jnp.clip((x - noise * eps) / signal, -x0_bound, x0_bound)
    eps = (x - signal * x0) / noise
  return per_step(schedule.x_scale) * x + per_step(schedule.epsilon_scale) * eps


def sample_trajectory(epsilon_fn: EpsilonFn, log_sigma: jax.Array, schedule: FewStepSchedule, key,
                      shape, x0_bound: float | None = None) -> jax.Array:
  """``[T + 1, *shape]``: ``x_0 ~ N(0, I)`` and the ``T`` states after it, noise
  ``exp(log_sigma) [T]`` (``x0_bound``: see :func:`step_mean`)."""
  init_key, key = jax.random.split(key)
  num_steps = schedule.sigma.shape[0]

  def step(x, inputs):
    i, noise_key = inputs
    steps = jnp.full(shape[:1], i)
    noise = jnp.exp(log_sigma[i]) * jax.random.normal(noise_key, shape)
    x = step_mean(epsilon_fn, schedule, x, steps, x0_bound) + noise
    return x, x

  x0 = jax.random.normal(init_key, shape)
  _, states = jax.lax.scan(step, x0, (jnp.arange(num_steps), jax.random.split(key, num_steps)))
  return jnp.concatenate([x0[None], states])
