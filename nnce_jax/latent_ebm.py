"""Latent-space EBM: a generator with an energy-based prior learned as a density ratio.

    x = g(z) + eps,  eps ~ N(0, sigma^2 I),    p(z) ∝ exp(s(z)) N(z; 0, I)

``s`` is a log-ratio model (``models.MLPRatio``, ``K`` telescoping heads) over ``z``. One
training step (Pang et al. 2020; the N²CE paper's §4 variant):

1. posterior samples ``z ~ p(z | x)`` by short-run (unadjusted) Langevin on
   ``log p(x | z) + s(z) + log N(z; 0, I)`` from ``z_0 ~ N(0, I)``, gradients stopped;
2. the generator maximises ``log p(x | z)``: ``||x - g(z)||^2 / (2 sigma^2)`` per image;
3. the prior is the ratio between the aggregated posterior and ``N(0, I)``: any objective of
   :mod:`nnce_jax.objectives` on posterior samples against ``N(0, I)`` samples
   (:func:`nnce_jax.estimation.ratio_loss`), e.g. N²CE with ``M = 100`` and ``K = 3``.

The two losses touch disjoint parameters (``{'generator', 'prior'}``), so their sum is
minimised by one optimizer step. ``log Z`` of the prior is never needed: samples come from
Langevin or SIR, and anomaly scores compare images under the same ``Z``.
"""

import dataclasses
from collections.abc import Sequence

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from nnce_jax import damc, estimation, models, noise, objectives, sampling


class Generator(nn.Module):
  """``g(z [B, d_z]) -> [B, H, W, C]`` in ``(-1, 1)``: a dense map to a ``side x side``
  grid (``side = H / 2^n``, halving while above 8 and even), ``n`` stride-2 transposed
  convolutions, ``tanh``. 28 x 28: 7 -> 14 -> 28; 32 x 32: 8 -> 16 -> 32."""
  image_shape: Sequence[int]  # (H, W, C)
  features: int = 64

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    height, width, channels = self.image_shape
    ups = 0
    while height % 2 ** (ups + 1) == 0 and height // 2 ** ups > 8:
      ups += 1
    side_h, side_w = height // 2 ** ups, width // 2 ** ups
    width_at = lambda i: self.features * 2 ** (ups - 1 - i)  # noqa: E731 (halves as it grows)
    h = nn.Dense(side_h * side_w * (width_at(-1) if ups else self.features))(z)
    h = nn.leaky_relu(h.reshape(z.shape[0], side_h, side_w, -1), 0.2)
    for i in range(ups):
      last = i == ups - 1
      h = nn.ConvTranspose(channels if last else width_at(i), (4, 4), strides=(2, 2), padding='SAME')(h)
      h = h if last else nn.leaky_relu(h, 0.2)
    if not ups:
      h = nn.Dense(channels)(h)
    return jnp.tanh(h)


class MLPGenerator(nn.Module):
  """``g(z [B, d_z]) -> [B, H, W, C]`` in ``(-1, 1)`` by an MLP: ~30x cheaper than
  :class:`Generator` at 28 x 28, which is what keeps 20 Langevin steps per update
  affordable on a CPU."""
  image_shape: Sequence[int]
  hidden: Sequence[int] = (256, 512)

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    h = z
    for width in self.hidden:
      h = nn.leaky_relu(nn.Dense(width)(h), 0.2)
    return jnp.tanh(nn.Dense(int(np.prod(self.image_shape)))(h)).reshape(z.shape[0], *self.image_shape)


class MLPEncoder(nn.Module):
  """``x [B, H, W, C] -> [B, features[-1]]``: the amortiser's image embedding on a CPU."""
  features: Sequence[int] = (256, 128)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = x.reshape(x.shape[0], -1)
    for i, width in enumerate(self.features):
      h = nn.Dense(width)(h)
      h = nn.leaky_relu(h, 0.2) if i < len(self.features) - 1 else h
    return h


class ConvEncoder(nn.Module):
  """``x [B, H, W, C] -> [B, embed_dim]``: three stride-2 convolutions (the reference's MNIST
  encoder, without its instance norm), then a dense map."""
  embed_dim: int = 128
  features: int = 64

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = x
    for i in range(3):
      h = nn.leaky_relu(nn.Conv(self.features * 2 ** i, (4, 4), strides=(2, 2))(h), 0.2)
    return nn.Dense(self.embed_dim)(h.reshape(x.shape[0], -1))


class ReferenceGenerator(nn.Module):
  """The DAMC reference's MNIST generator, ``ngf = features``: ``z`` as a 1 x 1 map, a 7 x 7
  transposed convolution to ``8 ngf`` channels, two stride-2 ones (``4 ngf``, ``2 ngf``), a
  3 x 3 convolution to the image's channels, ``tanh``. 10.9M parameters at ``ngf = 128``."""
  image_shape: Sequence[int]  # (28, 28, C)
  features: int = 128

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    h = nn.ConvTranspose(self.features * 8, (7, 7), padding='VALID')(z[:, None, None, :])
    for width in (self.features * 4, self.features * 2):
      h = nn.ConvTranspose(width, (4, 4), strides=(2, 2), padding='SAME')(nn.leaky_relu(h, 0.2))
    return jnp.tanh(nn.Conv(self.image_shape[-1], (3, 3))(nn.leaky_relu(h, 0.2)))


@dataclasses.dataclass(frozen=True)
class DAMCSampler:
  """DAMC's amortiser ``Q`` and its settings (:mod:`nnce_jax.damc`)."""
  amortizer: damc.Amortizer
  diffusion_steps: int = 100
  prior_fraction: float = 0.2  # p_mask: share of training examples whose embedding is the prior's
  logsnr_min: float = -5.1
  logsnr_max: float = 9.8

  def sample(self, params, key, x=None, num_samples=None):
    """``z ~ Q(z | x)`` (``[B, d]``), or ``num_samples`` from the prior embedding when ``x`` is None."""
    return damc.sample(self.amortizer, params, key, x, num_samples=num_samples,
                       num_steps=self.diffusion_steps, logsnr_min=self.logsnr_min, logsnr_max=self.logsnr_max)

  def loss(self, params, key, z, x):
    return damc.denoising_loss(self.amortizer, params, key, z, x, prior_fraction=self.prior_fraction,
                               logsnr_min=self.logsnr_min, logsnr_max=self.logsnr_max)


@dataclasses.dataclass(frozen=True)
class LatentEBM:
  """The model's pieces and the Langevin settings; :meth:`init`, :meth:`make_loss`.

  ``damc`` None: chains start at ``N(0, I)`` (short-run Langevin); else at ``Q``'s samples,
  and ``Q`` is fitted to the refined posterior samples in every step (DAMC)."""
  generator: nn.Module            # apply(params, z [B, d_z]) -> [B, H, W, C]
  prior: nn.Module              # log-ratio model over z: apply(params, z [B, d_z]) -> [B, K]
  latent_dim: int
  observation_std: float = 0.3  # sigma
  posterior_steps: int = 20
  posterior_step_size: float = 0.1  # Langevin's s: z += s^2/2 grad + s xi
  prior_steps: int = 60             # prior Langevin (MLE's negative samples)
  prior_step_size: float = 0.4
  damc: DAMCSampler | None = None

  def init(self, key):
    gen_key, prior_key, q_key = jax.random.split(key, 3)
    z = jnp.zeros((1, self.latent_dim))
    params = {'generator': self.generator.init(gen_key, z), 'prior': self.prior.init(prior_key, z)}
    if self.damc is not None:  # the amortiser reads images shaped as the generator writes them
      x = self.generator.apply(params['generator'], z)
      params['amortizer'] = damc.init_amortizer(self.damc.amortizer, q_key, x)
    return params

  def log_ratio(self, params, z):
    """The prior's ``s(z) = log p(z) / N(z; 0, I)`` up to ``log Z``, ``[B]`` (``-E(z)``)."""
    return objectives.telescoped_log_ratio(self.prior.apply(params['prior'], z))

  def prior_log_density(self, params, z):
    """Unnormalised ``log p(z) = s(z) + log N(z; 0, I)``, ``[B]``."""
    return self.log_ratio(params, z) + noise.isotropic_gaussian(self.latent_dim).log_prob(z)

  def log_likelihood(self, params, x, z, observation_std=None):
    """``log p(x | z)`` up to a constant, ``[B]``."""
    residual = x - self.generator.apply(params['generator'], z)
    std = observation_std or self.observation_std
    return -0.5 * jnp.sum(jnp.square(residual), axis=(1, 2, 3)) / std ** 2

  def log_joint(self, params, x, z, observation_std=None):
    """``log p(x, z)`` up to the constants ``log Z`` and the Gaussian's, ``[B]``."""
    return self.log_likelihood(params, x, z, observation_std) + self.prior_log_density(params, z)

  def initial_posterior(self, key, params, x):
    """Where posterior chains start: ``Q(z | x)`` with DAMC, ``N(0, I)`` otherwise; ``[B, d_z]``."""
    if self.damc is None:
      return jax.random.normal(key, (x.shape[0], self.latent_dim))
    return self.damc.sample(params['amortizer'], key, x)

  def sample_posterior(self, key, params, x, num_steps: int | None = None):
    """Langevin on ``log p(z | x)`` from :meth:`initial_posterior`: ``[B, d_z]`` (one chain per image)."""
    init_key, chain_key = jax.random.split(key)
    return damc.refine(chain_key, lambda z: self.log_joint(params, x, z),
                       self.initial_posterior(init_key, params, x),
                       num_steps=num_steps or self.posterior_steps, step_size=self.posterior_step_size)

  def sample_prior_chain(self, key, params, num_samples: int):
    """``prior_steps`` Langevin steps on ``log p(z)`` from ``Q``'s prior samples (DAMC) or
    ``N(0, I)``: MLE's negative samples, ``[n, d_z]``."""
    init_key, chain_key = jax.random.split(key)
    z0 = (jax.random.normal(init_key, (num_samples, self.latent_dim)) if self.damc is None
          else self.damc.sample(params['amortizer'], init_key, None, num_samples))
    return damc.refine(chain_key, lambda z: self.prior_log_density(params, z), z0, num_steps=self.prior_steps,
                       step_size=self.prior_step_size)

  def anomaly_scores(self, key, params, x, *, num_steps: int = 5,
                     observation_std: float | None = None) -> dict:
    """The reference's anomaly score and its terms, each ``[B]``, higher = more anomalous:

        joint = ||x - g(z)||^2  +  E(z) + ||z||^2 / 2,    E = -s

    at ``z`` from :meth:`initial_posterior` refined by ``num_steps`` noise-free Langevin
    steps on ``log p(x, z)`` with likelihood std ``observation_std`` (the training one when
    None). ``reconstruction`` is the first term, ``prior`` the other two (``-log p(z)`` up
    to ``log Z``): they tell whether the learned prior, the only part the objectives differ
    in, ranks anomalies at all.
    """
    init_key, chain_key = jax.random.split(key)
    z = damc.refine(chain_key, lambda v: self.log_joint(params, x, v, observation_std),
                    self.initial_posterior(init_key, params, x), num_steps=num_steps,
                    step_size=self.posterior_step_size, noise=False)
    reconstruction = jnp.sum(jnp.square(x - self.generator.apply(params['generator'], z)), axis=(1, 2, 3))
    prior = -self.log_ratio(params, z) + 0.5 * jnp.sum(jnp.square(z), -1)
    return {'joint': reconstruction + prior, 'reconstruction': reconstruction, 'prior': prior, 'z': z}

  def sample_prior(self, key, params, num_samples: int, num_proposals: int = 10_000):
    """``z ~ p(z)`` by importance resampling from ``N(0, I)``: ``[n, d_z]``."""
    base = noise.isotropic_gaussian(self.latent_dim)
    z, _ = sampling.sampling_importance_resampling(key, lambda z: self.log_ratio(params, z), base,
                                                   num_proposals, num_samples)
    return z

  def make_sampler(self, objective: objectives.Objective | None):
    """``sample_batch(key, inputs) -> {'image': [B, H, W, C], 'noise': [B, nu, d_z]}``: the
    host images with the prior's noise ``y ~ N(0, I)``, drawn for the global batch (one
    noise point per image for maximum likelihood, ``objective=None``, where it only feeds
    the diagnostics)."""
    base = noise.isotropic_gaussian(self.latent_dim)
    noise_per_data = 1 if objective is None else objective.noise_per_data

    def sample_batch(key, inputs):
      images = inputs['image']
      return {'image': images, 'noise': base.sample(key, (images.shape[0], noise_per_data))}

    return sample_batch

  def make_loss(self, objective: objectives.Objective | None):
    """``loss_fn(params, rng, batch, step) -> (loss, metrics)`` on a batch of
    :meth:`make_sampler` (``image [b, H, W, C]``, ``noise [b, nu, d_z]``):

        loss = mean_i ||x_i - g(z_i)||^2 / (2 sigma^2)  +  prior_loss  (+ Q's denoising loss),
        z_i ~ p(z | x_i) (stopped),  y the batch's noise

    ``prior_loss`` is the ratio ``objective`` of ``s(z)`` against ``s(y)``, ``y ~ N(0, I)``
    (its telescoping stages are the prior's heads), or, with ``objective=None``, maximum
    likelihood: ``mean E(z) - mean E(z^-)``, ``E = -s``, ``z^-`` from :meth:`sample_prior_chain`.
    With DAMC, ``Q`` learns the refined posterior samples (its prior embedding, their aggregate).
    The losses touch disjoint parameters, so one optimizer step updates all.
    """

    def loss_fn(params, rng, batch, step=0):
      x = batch['image']
      chex.assert_rank(x, 4)
      posterior_key, prior_key, q_key = jax.random.split(rng, 3)
      frozen = jax.lax.stop_gradient(params)
      z = jax.lax.stop_gradient(self.sample_posterior(posterior_key, frozen, x))
      reconstruction = -jnp.mean(self.log_likelihood(params, x, z))
      if objective is None:
        z_negative = jax.lax.stop_gradient(self.sample_prior_chain(prior_key, frozen, x.shape[0]))
        prior_loss = jnp.mean(self.log_ratio(params, z_negative)) - jnp.mean(self.log_ratio(params, z))
        diagnostics = {}
      else:
        prior_loss, diagnostics = estimation.ratio_loss(
            lambda p, v: self.prior.apply(p['prior'], v), params, z, batch['noise'], objective, step)
      # The chasm the prior crosses: s on posterior samples against s on N(0, I) noise.
      s_posterior = self.log_ratio(frozen, z)
      s_noise = self.log_ratio(frozen, batch['noise'][:, 0])
      loss = reconstruction + prior_loss
      metrics = {**diagnostics, 'prior_loss': prior_loss, 'reconstruction_nll': reconstruction,
                 'mean_squared_error': reconstruction * 2 * self.observation_std ** 2 / x[0].size,
                 'posterior_norm': jnp.mean(jnp.linalg.norm(z, axis=-1)),
                 'posterior_log_ratio': jnp.mean(s_posterior) - jnp.mean(s_noise),
                 'prior_accuracy': 0.5 * (jnp.mean(s_posterior > 0) + jnp.mean(s_noise < 0))}
      if self.damc is not None:
        amortizer_loss = self.damc.loss(params['amortizer'], q_key, z, x)
        loss, metrics['amortizer_loss'] = loss + amortizer_loss, amortizer_loss
      return loss, {**metrics, 'loss': loss}

    return loss_fn


GENERATORS = ('conv', 'mlp', 'reference')
SAMPLERS = ('short_run', 'damc')


def make_latent_ebm(image_shape, *, generator='conv', latent_dim=16, generator_features=64,
                    generator_hidden=(256, 512), prior_hidden=(200, 200), num_stages=1,
                    sampler='short_run', encoder='mlp', embed_dim=128, amortizer_widths=(128, 256, 256),
                    diffusion_steps=100,
                    prior_fraction=0.2, **settings) -> LatentEBM:
  """A :class:`LatentEBM`: a ``conv`` (:class:`Generator`), ``mlp`` or ``reference``
  (:class:`ReferenceGenerator`, ``generator_features`` = its ngf) generator, an MLP prior with
  ``num_stages`` telescoping heads, and posterior chains started at ``N(0, I)``
  (``sampler='short_run'``) or by DAMC's amortiser (``'damc'``, with an ``mlp`` or ``conv``
  image encoder)."""
  if generator not in GENERATORS:
    raise ValueError(f'generator={generator!r} is not one of {", ".join(GENERATORS)}')
  if sampler not in SAMPLERS:
    raise ValueError(f'sampler={sampler!r} is not one of {", ".join(SAMPLERS)}')
  shape = tuple(image_shape)
  network = {'conv': lambda: Generator(shape, generator_features),
             'mlp': lambda: MLPGenerator(shape, tuple(generator_hidden)),
             'reference': lambda: ReferenceGenerator(shape, generator_features)}[generator]()
  amortiser = None
  if sampler == 'damc':
    image_encoder = (ConvEncoder(embed_dim) if encoder == 'conv' else MLPEncoder((256, embed_dim)))
    amortiser = DAMCSampler(damc.Amortizer(latent_dim, image_encoder, embed_dim, tuple(amortizer_widths)),
                            diffusion_steps, prior_fraction)
  return LatentEBM(network,
                   models.MLPRatio(hidden=tuple(prior_hidden), num_stages=num_stages,
                                   activation=nn.gelu), latent_dim, damc=amortiser, **settings)
