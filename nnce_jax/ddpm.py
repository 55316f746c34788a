"""Denoising diffusion (DDPM, Ho et al. 2020) in data space: the teacher of few-step samplers.

The variance-preserving forward process over ``N`` steps with a linear ``beta`` schedule,

    x_n = sqrt(abar_n) x + sqrt(1 - abar_n) eps,   abar_n = prod_{k <= n} (1 - beta_k),

an epsilon-prediction network ``eps_hat(x_n, n)`` fitted by :func:`denoising_loss`, and
ancestral sampling (:func:`ancestral_sample`). ``n`` enters the network as a float, so a
few-step sampler can query it between integer steps (:mod:`nnce_jax.few_step`).
"""

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import linen as nn

EpsilonFn = Callable[[jax.Array, jax.Array], jax.Array]  # (x [B, ...], n [B]) -> eps_hat [B, ...]


class Schedule(NamedTuple):
  betas: jax.Array           # [N]
  alphas_cumprod: jax.Array  # [N]: abar_n


def linear_schedule(num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> Schedule:
  """The DDPM schedule: ``beta`` linear from ``beta_start`` to ``beta_end`` over ``num_steps``."""
  if num_steps < 2 or not 0 < beta_start <= beta_end < 1:
    raise ValueError(f'need num_steps >= 2 and 0 < beta_start <= beta_end < 1, got {num_steps}, '
                     f'{beta_start}, {beta_end}')
  betas = jnp.linspace(beta_start, beta_end, num_steps, dtype=jnp.float32)
  return Schedule(betas, jnp.exp(jnp.cumsum(jnp.log1p(-betas))))


def alpha_cumprod_at(schedule: Schedule, n: jax.Array) -> jax.Array:
  """``abar(n)`` at fractional steps ``n`` (``log abar`` linear between integer steps)."""
  log_abar = jnp.log(schedule.alphas_cumprod)
  return jnp.exp(jnp.interp(n, jnp.arange(log_abar.shape[0], dtype=jnp.float32), log_abar))


def step_at(schedule: Schedule, alpha_cumprod: jax.Array) -> jax.Array:
  """The fractional step ``n`` with ``abar(n) = alpha_cumprod``: the inverse of
  :func:`alpha_cumprod_at`, clipped to ``[0, N - 1]``."""
  log_abar = jnp.log(schedule.alphas_cumprod)
  return jnp.interp(-jnp.log(alpha_cumprod), -log_abar, jnp.arange(log_abar.shape[0], dtype=jnp.float32))


def timestep_embedding(t: jax.Array, features: int, scale: float = 1.0) -> jax.Array:
  """Sinusoidal features of ``scale * t`` for ``t [B]`` (any float): ``[B, features]``."""
  half = features // 2
  freqs = jnp.exp(-math.log(10000.0) * jnp.arange(half) / max(half - 1, 1))
  angles = scale * t[:, None] * freqs[None]
  return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], -1)


PREDICTIONS = ('epsilon', 'v')


class EpsilonMLP(nn.Module):
  """``eps_hat(x [B, d], n [B]) -> [B, d]``: an MLP on ``x`` and the step's sinusoidal
  features, SiLU activations; the epsilon network of low-dimensional data.

  ``prediction='v'``: the MLP's output is ``v = sqrt(abar) eps - sqrt(1 - abar) x_0`` (Salimans
  & Ho 2022), read back as ``eps_hat = sqrt(abar) v_hat + sqrt(1 - abar) x_n`` with ``abar`` of
  the linear ``schedule`` ``(N, beta_start, beta_end)``: where ``abar`` is small the network
  predicts the clean image, so an error is not multiplied by ``1 / sqrt(abar)`` in the guess
  of ``x_0``, as an epsilon network's is."""
  hidden: Sequence[int] = (256, 256, 256)
  time_features: int = 64
  prediction: str = 'epsilon'
  schedule: tuple = (1000, 1e-4, 0.02)

  @nn.compact
  def __call__(self, x: jax.Array, n: jax.Array) -> jax.Array:
    time = timestep_embedding(n, self.time_features)
    time = nn.Dense(self.time_features)(nn.silu(nn.Dense(self.time_features)(time)))
    h = x
    for width in self.hidden:
      h = nn.silu(nn.Dense(width)(h) + nn.Dense(width, use_bias=False)(time))
    out = nn.Dense(x.shape[-1])(h)
    if self.prediction == 'epsilon':
      return out
    abar = alpha_cumprod_at(linear_schedule(*self.schedule), n)[:, None]
    return jnp.sqrt(abar) * out + jnp.sqrt(1 - abar) * x


def broadcast(coefficient: jax.Array, x: jax.Array) -> jax.Array:
  """``coefficient [B]`` shaped to multiply ``x [B, ...]``."""
  return coefficient.reshape(coefficient.shape + (1,) * (x.ndim - coefficient.ndim))


def noised(schedule: Schedule, x: jax.Array, n: jax.Array, eps: jax.Array) -> jax.Array:
  """``x_n = sqrt(abar(n)) x + sqrt(1 - abar(n)) eps`` at fractional steps ``n [B]``: the forward
  process that :func:`denoise` inverts."""
  abar = broadcast(alpha_cumprod_at(schedule, n), x)
  return jnp.sqrt(abar) * x + jnp.sqrt(1 - abar) * eps


def denoise(epsilon_fn: EpsilonFn, schedule: Schedule, x_n: jax.Array, n: jax.Array) -> jax.Array:
  """``x0_hat = (x_n - sqrt(1 - abar_n) eps_hat(x_n, n)) / sqrt(abar_n)``: the clean-data guess at
  fractional steps ``n [B]``; an error in ``eps_hat`` is multiplied by ``sqrt((1 - abar) / abar)``."""
  abar = broadcast(alpha_cumprod_at(schedule, n), x_n)
  return (x_n - jnp.sqrt(1 - abar) * epsilon_fn(x_n, n)) / jnp.sqrt(abar)


def denoising_loss(epsilon_fn: EpsilonFn, key, x: jax.Array, schedule: Schedule,
                   prediction: str = 'epsilon') -> jax.Array:
  """``E_{n, eps} w_n mean_d (eps_hat(sqrt(abar_n) x + sqrt(1 - abar_n) eps, n) - eps)^2`` for
  data ``x [B, ...]`` and ``n`` uniform over the steps: a scalar. ``w_n = 1`` fits an epsilon
  network; ``prediction='v'``, ``w_n = 1 / abar_n``, is the squared error of ``v`` (``eps_hat -
  eps = sqrt(abar) (v_hat - v)``)."""
  if prediction not in PREDICTIONS:
    raise ValueError(f'prediction={prediction!r} is not one of {", ".join(PREDICTIONS)}')
  step_key, noise_key = jax.random.split(key)
  n = jax.random.randint(step_key, x.shape[:1], 0, schedule.betas.shape[0])
  abar = broadcast(schedule.alphas_cumprod[n], x)
  eps = jax.random.normal(noise_key, x.shape, x.dtype)
  noisy = jnp.sqrt(abar) * x + jnp.sqrt(1 - abar) * eps
  squared = (epsilon_fn(noisy, n.astype(jnp.float32)) - eps) ** 2
  return jnp.mean(squared / abar if prediction == 'v' else squared)


def ancestral_sample(epsilon_fn: EpsilonFn, key, shape: Sequence[int], schedule: Schedule) -> jax.Array:
  """``x_0`` by the ``N`` ancestral steps from ``x_N ~ N(0, I)``, shape ``shape``:

      x_{n-1} = (x_n - beta_n / sqrt(1 - abar_n) eps_hat) / sqrt(1 - beta_n) + sigma_n z,

  ``sigma_n^2 = beta_n (1 - abar_{n-1}) / (1 - abar_n)`` (no noise at the last step)."""
  betas, abar = schedule.betas, schedule.alphas_cumprod
  abar_prev = jnp.concatenate([jnp.ones(1), abar[:-1]])
  sigmas = jnp.sqrt(betas * (1 - abar_prev) / (1 - abar))
  init_key, key = jax.random.split(key)

  def step(x, inputs):
    n, noise_key = inputs
    eps = epsilon_fn(x, jnp.full(shape[:1], n, jnp.float32))
    mean = (x - betas[n] / jnp.sqrt(1 - abar[n]) * eps) / jnp.sqrt(1 - betas[n])
    noise = jnp.where(n > 0, sigmas[n], 0.0) * jax.random.normal(noise_key, shape)
    return mean + noise, None

  steps = jnp.arange(betas.shape[0] - 1, -1, -1)
  keys = jax.random.split(key, steps.shape[0])
  x, _ = jax.lax.scan(step, jax.random.normal(init_key, shape), (steps, keys))
  return x
