"""Diffusion-amortised MCMC (DAMC, Yu et al. 2023): a latent diffusion model ``Q`` that tracks
a Langevin chain, so short runs start where long runs would end.

``Q(z | x)`` is a DDPM over ``z`` that predicts the noise ``eps`` of

    z_t = alpha_t z + sigma_t eps,   alpha_t^2 = sigmoid(lambda_t),  sigma_t^2 = sigmoid(-lambda_t),

with the log-SNR ``lambda_t`` on the cosine schedule of :func:`logsnr_schedule`, conditioned on
an embedding of ``x`` (``encoder``). With probability ``prior_fraction`` an example's embedding
is replaced by a *prior embedding* (an MLP of fresh noise, no ``x``), so the same network also
samples the aggregate posterior, i.e. the prior the data imply. One DAMC iteration
(:func:`amortised_samples` then :func:`denoising_loss`):

1. ``z_0 ~ Q(z | x)`` by ancestral sampling (:func:`sample`);
2. ``z_K = T_K z_0``: ``K`` Langevin steps on the target (``log p(x | z) + log p(z)``);
3. ``Q`` is fitted to ``z_K`` by its denoising loss, ``1/2 |eps - eps_hat(z_t, lambda_t, c)|^2``.

So ``Q`` chases ``T_K Q``, whose fixed point is the target: with ``K`` steps per iteration ``Q``
accumulates a long chain. Everything is a pure function of parameters and keys.
"""

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import linen as nn

from nnce_jax import sampling
from nnce_jax.ddpm import timestep_embedding


def logsnr_schedule(t: jax.Array, logsnr_min: float, logsnr_max: float) -> jax.Array:
  """``lambda(t) = -2 log tan(a t + b)``: ``logsnr_max`` at ``t = 0``, ``logsnr_min`` at 1."""
  b = math.atan(math.exp(-0.5 * logsnr_max))
  a = math.atan(math.exp(-0.5 * logsnr_min)) - b
  return -2.0 * jnp.log(jnp.tan(a * t + b))


class ConcatSquash(nn.Module):
  """``W h * sigmoid(G c) + B c + S h``: a dense layer gated and shifted by the context ``c``."""
  features: int

  @nn.compact
  def __call__(self, h: jax.Array, context: jax.Array) -> jax.Array:
    c = nn.silu(nn.Dense(self.features)(nn.silu(context)))
    gate = nn.sigmoid(nn.Dense(self.features)(c))
    return nn.Dense(self.features)(h) * gate + nn.Dense(self.features, use_bias=False)(c) + nn.Dense(
        self.features)(h)


OUTPUT_LAYERS = ('dense', 'concat_squash')


class Denoiser(nn.Module):
  """``eps_hat(z_t [B, d], lambda [B], embedding [B, e]) -> [B, d]``: Fourier features of
  ``z_t``, concat-squash layers down ``widths`` and back up with skip connections. The output
  layer is a zero-initialised dense map (``'dense'``: an untrained network predicts ``eps = z_t``)
  or, as the reference, one more concat-squash layer conditioned on the step and ``x``."""
  latent_dim: int
  widths: Sequence[int] = (128, 256, 256)
  time_features: int = 64  # reference: 128
  residual: bool = True  # predict eps as z_t + f(...), as the reference does
  output_layer: str = 'dense'

  @nn.compact
  def __call__(self, z: jax.Array, logsnr: jax.Array, embedding: jax.Array) -> jax.Array:
    # The time in [0, 1] recovered from lambda, then sinusoidal features.
    t = jnp.arctan(jnp.exp(-0.5 * jnp.clip(logsnr, -20.0, 20.0))) / (0.5 * jnp.pi)
    time = timestep_embedding(t, self.time_features, scale=1000.0)
    time = nn.Dense(self.time_features)(nn.silu(nn.Dense(self.time_features)(time)))
    context = jnp.concatenate([time, embedding], -1)
    projection = self.param('fourier', nn.initializers.normal(1.0),
                            (self.latent_dim, max(self.latent_dim // 2, 1)))
    angles = 2 * jnp.pi * z @ projection
    h = jnp.concatenate([jnp.sin(angles), jnp.cos(angles), z], -1)
    skips = []
    for width in self.widths:
      h = ConcatSquash(width)(h, context)
      skips.append(h)
      h = nn.leaky_relu(h, 0.01)
    h = ConcatSquash(self.widths[-1])(h, context)
    for width in self.widths[-2::-1]:
      h = nn.leaky_relu(jnp.concatenate([h, skips.pop()], -1), 0.01)
      h = ConcatSquash(width)(h, context)
    h = nn.leaky_relu(jnp.concatenate([h, skips.pop()], -1), 0.01)
    if self.output_layer == 'concat_squash':
      h = ConcatSquash(self.latent_dim)(h, context)
    else:  # zero-initialised: the first samples stay near the origin instead of blowing up by 1 / alpha_t
      h = nn.Dense(self.latent_dim, kernel_init=nn.initializers.zeros)(h)
    return z + h if self.residual else h


class Amortizer(nn.Module):
  """``Q(z | x)``: the denoiser, an ``encoder`` of ``x`` to ``embed_dim`` features, and the
  prior embedding (an MLP of ``latent_dim`` noise). Call with ``method='embed'`` /
  ``'prior_embed'`` / ``'denoise'``; :func:`init_amortizer` initialises all three."""
  latent_dim: int
  encoder: nn.Module  # x [B, ...] -> [B, embed_dim]
  embed_dim: int = 128
  widths: Sequence[int] = (128, 256, 256)
  residual: bool = True
  time_features: int = 64
  output_layer: str = 'dense'  # of :data:`OUTPUT_LAYERS`

  def setup(self):
    if self.output_layer not in OUTPUT_LAYERS:
      raise ValueError(f'output_layer={self.output_layer!r} is not one of {", ".join(OUTPUT_LAYERS)}')
    self.denoiser = Denoiser(self.latent_dim, self.widths, self.time_features, self.residual,
                             self.output_layer)
    self.prior_mlp = nn.Sequential([nn.Dense(128), nn.leaky_relu, nn.Dense(self.embed_dim)])

  def embed(self, x: jax.Array) -> jax.Array:
    return self.encoder(x)

  def prior_embed(self, noise: jax.Array) -> jax.Array:
    return self.prior_mlp(noise)

  def denoise(self, z: jax.Array, logsnr: jax.Array, embedding: jax.Array) -> jax.Array:
    return self.denoiser(z, logsnr, embedding)

  def __call__(self, x: jax.Array, z: jax.Array) -> jax.Array:
    embedding = self.embed(x) + self.prior_embed(z)  # touches every parameter once, for init
    return self.denoise(z, jnp.zeros(z.shape[:1]), embedding)


def init_amortizer(amortizer: Amortizer, key, x_example: jax.Array):
  """Parameters of ``amortizer`` for inputs shaped like ``x_example [B, ...]``."""
  return amortizer.init(key, x_example, jnp.zeros((x_example.shape[0], amortizer.latent_dim)))


def _embedding(amortizer, params, key, x, batch: int, prior_mask) -> jax.Array:
  """``[B, e]``: x's embedding, or the prior embedding where ``prior_mask`` (all when ``x`` is None)."""
  prior = amortizer.apply(params, jax.random.normal(key, (batch, amortizer.latent_dim)), method='prior_embed')
  if x is None:
    return prior
  conditional = amortizer.apply(params, x, method='embed')
  return jnp.where(prior_mask[:, None], prior, conditional)


AMORTIZER_LOSSES = ('mixed', 'sum')


def denoising_loss(amortizer: Amortizer, params, key, z: jax.Array, x: jax.Array | None, *,
                   prior_fraction: float = 0.2, logsnr_min: float = -5.1, logsnr_max: float = 9.8,
                   combine: str = 'mixed'):
  """``E_t,eps 1/2 |eps - eps_hat(alpha_t z + sigma_t eps, lambda_t, c)|^2`` for ``z [B, d]``,
  ``t ~ U(0, 1)``, summed over ``d`` and averaged over the batch; a scalar. ``combine='mixed'``:
  ``c`` is the embedding of ``x [B, ...]``, replaced by the prior embedding with probability
  ``prior_fraction``; ``'sum'`` (the reference's update): the loss with every ``c`` the
  embedding of ``x`` plus the loss with every ``c`` the prior embedding, each with its own
  ``t`` and ``eps``. With ``x`` None, always the prior embedding."""
  if combine not in AMORTIZER_LOSSES:
    raise ValueError(f'combine={combine!r} is not one of {", ".join(AMORTIZER_LOSSES)}')
  batch = z.shape[0]
  if combine == 'mixed' or x is None:
    t_key, eps_key, mask_key, prior_key = jax.random.split(key, 4)
    mask = jax.random.uniform(mask_key, (batch,)) < prior_fraction
    return _denoising_loss(amortizer, params, (t_key, eps_key, prior_key), z, x, mask, logsnr_min, logsnr_max)
  return sum(_denoising_loss(amortizer, params, jax.random.split(k, 3), z, x, jnp.full((batch,), on_prior),
                             logsnr_min, logsnr_max)
             for k, on_prior in zip(jax.random.split(key), (False, True)))


def _denoising_loss(amortizer, params, keys, z, x, prior_mask, logsnr_min, logsnr_max):
  t_key, eps_key, prior_key = keys
  embedding = _embedding(amortizer, params, prior_key, x, z.shape[0], prior_mask)
  logsnr = logsnr_schedule(jax.random.uniform(t_key, (z.shape[0],)), logsnr_min, logsnr_max)
  eps = jax.random.normal(eps_key, z.shape, z.dtype)
  z_t = jnp.sqrt(nn.sigmoid(logsnr))[:, None] * z + jnp.sqrt(nn.sigmoid(-logsnr))[:, None] * eps
  eps_hat = amortizer.apply(params, z_t, logsnr, embedding, method='denoise')
  return jnp.mean(0.5 * jnp.sum(jnp.square(eps - eps_hat), -1))


def sample(amortizer: Amortizer, params, key, x: jax.Array | None = None, *, num_samples: int | None = None,
           num_steps: int = 100, logsnr_min: float = -5.1, logsnr_max: float = 9.8, noise: bool = True):
  """``z ~ Q(z | x)`` (``[B, d]``, one per row of ``x``) or, with ``x=None``, ``num_samples``
  draws of the prior embedding's model: ``num_steps`` ancestral steps from ``z_1 ~ N(0, I)``,
  each ``z_s ~ q(z_s | z_t, z_hat)`` with the "large" variance ``(1 - SNR_t/SNR_s) sigma_t^2``,
  ``z_hat = (z_t - sigma_t eps_hat) / alpha_t``; the last step returns ``z_hat``."""
  batch = x.shape[0] if x is not None else num_samples
  init_key, embed_key, loop_key = jax.random.split(key, 3)
  embedding = _embedding(amortizer, params, embed_key, x, batch, jnp.zeros((batch,), bool))

  def step(z, inputs):
    i, step_key = inputs
    full = jnp.full((batch,), 1.0)
    logsnr_t = logsnr_schedule(full * i / (num_steps - 1), logsnr_min, logsnr_max)
    logsnr_s = logsnr_schedule(full * jnp.maximum(i - 1, 0) / (num_steps - 1), logsnr_min, logsnr_max)
    eps_hat = amortizer.apply(params, z, logsnr_t, embedding, method='denoise')
    lt, ls = logsnr_t[:, None], logsnr_s[:, None]
    z_hat = jnp.sqrt(1 + jnp.exp(-lt)) * (z - eps_hat * jax.lax.rsqrt(1 + jnp.exp(lt)))
    ratio = jnp.exp(lt - ls)  # SNR_t / SNR_s < 1
    alpha_ts = jnp.sqrt((1 + jnp.exp(-lt)) / (1 + jnp.exp(-ls)))
    mean = ratio * alpha_ts * z + (1 - ratio) * jnp.sqrt(nn.sigmoid(ls)) * z_hat
    std = jnp.sqrt((1 - ratio) * nn.sigmoid(-lt))
    drawn = mean + (std * jax.random.normal(step_key, z.shape) if noise else 0.0)
    return jnp.where(i == 0, z_hat, drawn), None

  # zeros_like gives the chain the embedding's type: varying over devices under shard_map.
  z_1 = jax.random.normal(init_key, (batch, amortizer.latent_dim)) + jnp.zeros_like(embedding[:, :1])
  steps = jnp.arange(num_steps - 1, -1, -1)
  z, _ = jax.lax.scan(step, z_1, (steps, jax.random.split(loop_key, num_steps)))
  return z


def refine(key, log_density: Callable, z: jax.Array, *, num_steps: int, step_size: float,
           noise: bool = True) -> jax.Array:
  """``num_steps`` of the reference's Langevin, ``z + s^2/2 grad log p(z) + s xi`` (``s =
  step_size``), per chain; without ``noise``, gradient ascent with the same steps."""
  if noise:
    trace, _ = sampling.langevin(key, log_density, z, step_size=0.5 * step_size**2, num_steps=num_steps,
                                 adjusted=False)
    return trace[-1]
  grad = jax.grad(lambda v: jnp.sum(log_density(v)))

  def ascend(v, _):
    return v + 0.5 * step_size**2 * grad(v), None

  return jax.lax.scan(ascend, z, None, length=num_steps)[0]


def amortised_samples(amortizer: Amortizer, params, key, x: jax.Array, log_density: Callable, *,
                      num_langevin: int, step_size: float, num_steps: int = 100, logsnr_min: float = -5.1,
                      logsnr_max: float = 9.8) -> tuple[jax.Array, jax.Array]:
  """``(z_0, z_K)``: ``z_0 ~ Q(z | x)`` and ``T_K z_0``, ``num_langevin`` Langevin steps on
  ``log_density(z [B, d]) -> [B]`` (the posterior of each row of ``x``); gradients stopped."""
  sample_key, chain_key = jax.random.split(key)
  z0 = jax.lax.stop_gradient(sample(amortizer, params, sample_key, x, num_steps=num_steps,
                                    logsnr_min=logsnr_min, logsnr_max=logsnr_max))
  return z0, jax.lax.stop_gradient(refine(chain_key, log_density, z0, num_steps=num_langevin,
                                          step_size=step_size))
