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

from nnce_jax import estimation, models, noise, objectives, sampling


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


@dataclasses.dataclass(frozen=True)
class LatentEBM:
  """The model's pieces and the Langevin settings; :func:`init`, :func:`make_loss`."""
  generator: nn.Module            # apply(params, z [B, d_z]) -> [B, H, W, C]
  prior: nn.Module              # log-ratio model over z: apply(params, z [B, d_z]) -> [B, K]
  latent_dim: int
  observation_std: float = 0.3  # sigma
  posterior_steps: int = 20
  posterior_step_size: float = 0.1  # Langevin's s: z += s^2/2 grad + s xi

  def init(self, key):
    gen_key, prior_key = jax.random.split(key)
    z = jnp.zeros((1, self.latent_dim))
    return {'generator': self.generator.init(gen_key, z), 'prior': self.prior.init(prior_key, z)}

  def prior_log_density(self, params, z):
    """Unnormalised ``log p(z) = s(z) + log N(z; 0, I)``, ``[B]``."""
    base = noise.isotropic_gaussian(self.latent_dim)
    return objectives.telescoped_log_ratio(self.prior.apply(params['prior'], z)) + base.log_prob(z)

  def log_likelihood(self, params, x, z):
    """``log p(x | z)`` up to a constant, ``[B]``."""
    residual = x - self.generator.apply(params['generator'], z)
    return -0.5 * jnp.sum(jnp.square(residual), axis=(1, 2, 3)) / self.observation_std ** 2

  def log_joint(self, params, x, z):
    """``log p(x, z)`` up to the constants ``log Z`` and the Gaussian's, ``[B]``."""
    return self.log_likelihood(params, x, z) + self.prior_log_density(params, z)

  def sample_posterior(self, key, params, x, num_steps: int | None = None):
    """Short-run ULA on ``log p(z | x)`` from ``N(0, I)``: ``[B, d_z]`` (one chain per image)."""
    init_key, chain_key = jax.random.split(key)
    z0 = jax.random.normal(init_key, (x.shape[0], self.latent_dim))
    trace, _ = sampling.langevin(chain_key, lambda z: self.log_joint(params, x, z), z0,
                                 step_size=0.5 * self.posterior_step_size ** 2,
                                 num_steps=num_steps or self.posterior_steps, adjusted=False)
    return trace[-1]

  def anomaly_score(self, key, params, x, num_steps: int | None = None):
    """``-log p(x, z)`` at a short-run posterior sample ``z``: ``[B]``, higher = more anomalous.

    An approximate negative log-likelihood: ``log p(x) = log p(x, z) - log p(z | x)``, and at
    a posterior sample the second term is roughly the (similar across images) posterior
    entropy, so ranking by the joint ranks by ``log p(x)``; it costs one Langevin run, where an
    importance-sampled ``log p(x)`` needs thousands of generator calls per image. The prior's
    ``log Z`` is shared by all images and left out.
    """
    return self.anomaly_scores(key, params, x, num_steps)['joint']

  def anomaly_scores(self, key, params, x, num_steps: int | None = None) -> dict:
    """At one short-run posterior sample ``z``: ``joint = -log p(x, z)`` (:meth:`anomaly_score`)
    and its two terms, ``reconstruction = -log p(x | z)`` and ``prior = -log p(z)``, each ``[B]``.
    The terms tell whether the learned prior, the only part the objectives differ in, ranks
    anomalies at all."""
    z = self.sample_posterior(key, params, x, num_steps)
    reconstruction, prior = -self.log_likelihood(params, x, z), -self.prior_log_density(params, z)
    return {'joint': reconstruction + prior, 'reconstruction': reconstruction, 'prior': prior}

  def sample_prior(self, key, params, num_samples: int, num_proposals: int = 10_000):
    """``z ~ p(z)`` by importance resampling from ``N(0, I)``: ``[n, d_z]``."""
    base = noise.isotropic_gaussian(self.latent_dim)
    log_ratio = lambda z: objectives.telescoped_log_ratio(self.prior.apply(params['prior'], z))  # noqa: E731
    z, _ = sampling.sampling_importance_resampling(key, log_ratio, base, num_proposals, num_samples)
    return z

  def make_sampler(self, objective: objectives.Objective):
    """``sample_batch(key, inputs) -> {'image': [B, H, W, C], 'noise': [B, nu, d_z]}``: the
    host images with the prior's noise ``y ~ N(0, I)``, drawn for the global batch."""
    base = noise.isotropic_gaussian(self.latent_dim)

    def sample_batch(key, inputs):
      images = inputs['image']
      return {'image': images, 'noise': base.sample(key, (images.shape[0], objective.noise_per_data))}

    return sample_batch

  def make_loss(self, objective: objectives.Objective):
    """``loss_fn(params, rng, batch, step) -> (loss, metrics)`` on a batch of
    :meth:`make_sampler` (``image [b, H, W, C]``, ``noise [b, nu, d_z]``):

        loss = mean_i ||x_i - g(z_i)||^2 / (2 sigma^2)  +  objective(s(z) vs s(y)),
        z_i ~ p(z | x_i) (stopped),  y the batch's noise

    The prior's number of telescoping stages is its number of heads.
    """

    def loss_fn(params, rng, batch, step=0):
      x = batch['image']
      chex.assert_rank(x, 4)
      z = jax.lax.stop_gradient(self.sample_posterior(rng, jax.lax.stop_gradient(params), x))
      reconstruction = -jnp.mean(self.log_likelihood(params, x, z))
      prior_loss, diagnostics = estimation.ratio_loss(
          lambda p, v: self.prior.apply(p['prior'], v), params, z, batch['noise'], objective, step)
      loss = reconstruction + prior_loss
      return loss, {**diagnostics, 'loss': loss, 'prior_loss': prior_loss,
                    'reconstruction_nll': reconstruction,
                    'mean_squared_error': reconstruction * 2 * self.observation_std ** 2 / x[0].size,
                    'posterior_norm': jnp.mean(jnp.linalg.norm(z, axis=-1))}

    return loss_fn


GENERATORS = ('conv', 'mlp')


def make_latent_ebm(image_shape, *, generator='conv', latent_dim=16, generator_features=64,
                    generator_hidden=(256, 512), prior_hidden=(200, 200), num_stages=1,
                    **settings) -> LatentEBM:
  """A :class:`LatentEBM` with a ``conv`` (:class:`Generator`) or ``mlp`` generator and an
  MLP prior with ``num_stages`` telescoping heads."""
  if generator not in GENERATORS:
    raise ValueError(f'generator={generator!r} is not one of {", ".join(GENERATORS)}')
  network = (Generator(tuple(image_shape), generator_features) if generator == 'conv'
             else MLPGenerator(tuple(image_shape), tuple(generator_hidden)))
  return LatentEBM(network,
                   models.MLPRatio(hidden=tuple(prior_hidden), num_stages=num_stages,
                                   activation=nn.gelu), latent_dim, **settings)
