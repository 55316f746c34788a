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
import optax
from flax import linen as nn

from nnce_jax import damc, estimation, models, noise, objectives, sampling
from nnce_jax.parallel import AXIS
from nnce_jax.train import TrainState, TrainStep, per_group, step_keys


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


class ReferenceEncoder(nn.Module):
  """The DAMC reference's MNIST encoder, ``nif = features``: a 3 x 3 convolution, three 4 x 4
  stride-2 ones doubling the channels (28 -> 14 -> 7 -> 3), each with an affine instance norm
  and LeakyReLU(0.2), then a 3 x 3 valid convolution to ``embed_dim`` (3 -> 1). 20.5M parameters
  at ``features = 128``, ``embed_dim = 1024``."""
  embed_dim: int = 1024
  features: int = 128

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = x
    for i, (kernel, stride) in enumerate(((3, 1), (4, 2), (4, 2), (4, 2))):
      h = nn.Conv(self.features * 2 ** i, (kernel, kernel), strides=(stride, stride), padding=1)(h)
      h = nn.leaky_relu(nn.InstanceNorm(epsilon=1e-5)(h), 0.2)  # torch's InstanceNorm2d(affine=True)
    h = nn.Conv(self.embed_dim, (3, 3), padding='VALID')(h)
    return h.reshape(x.shape[0], -1)


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
  combine: str = 'mixed'  # 'mixed' (prior_fraction) | 'sum': conditional + prior loss, the reference's
  updates_per_step: int = 1  # Q's updates per iteration on the same samples (reference: 6)
  target_rate: float = 0.0  # > 0: training chains start at a target Q, EMA'd at this rate (reference: 0.005)
  target_every: int = 10    # iterations between the target's EMA updates

  def sample(self, params, key, x=None, num_samples=None):
    """``z ~ Q(z | x)`` (``[B, d]``), or ``num_samples`` from the prior embedding when ``x`` is None."""
    return damc.sample(self.amortizer, params, key, x, num_samples=num_samples,
                       num_steps=self.diffusion_steps, logsnr_min=self.logsnr_min, logsnr_max=self.logsnr_max)

  def loss(self, params, key, z, x):
    return damc.denoising_loss(self.amortizer, params, key, z, x, prior_fraction=self.prior_fraction,
                               logsnr_min=self.logsnr_min, logsnr_max=self.logsnr_max, combine=self.combine)


@dataclasses.dataclass(frozen=True)
class LatentEBM:
  """The model's pieces and the Langevin settings; :meth:`init`, :meth:`make_loss`.

  ``damc`` None: chains start at ``N(0, I)`` (short-run Langevin); else at ``Q``'s samples,
  and ``Q`` is fitted to the refined posterior samples in every step (DAMC). With a target
  amortiser (``damc.target_rate > 0``, ``params['amortizer_target']``) the training chains
  start at the target, evaluation's at the live ``Q``. MLE's negative chains start at ``Q``'s
  prior samples (``negatives_from='prior'``) or, as the reference, where the training
  posterior chains start (``'posterior_start'``)."""
  generator: nn.Module            # apply(params, z [B, d_z]) -> [B, H, W, C]
  prior: nn.Module              # log-ratio model over z: apply(params, z [B, d_z]) -> [B, K]
  latent_dim: int
  observation_std: float = 0.3  # sigma
  posterior_steps: int = 20
  posterior_step_size: float = 0.1  # Langevin's s: z += s^2/2 grad + s xi
  prior_steps: int = 60             # prior Langevin (MLE's negative samples)
  prior_step_size: float = 0.4
  damc: DAMCSampler | None = None
  negatives_from: str = 'prior'

  def init(self, key):
    gen_key, prior_key, q_key = jax.random.split(key, 3)
    z = jnp.zeros((1, self.latent_dim))
    params = {'generator': self.generator.init(gen_key, z), 'prior': self.prior.init(prior_key, z)}
    if self.damc is not None:  # the amortiser reads images shaped as the generator writes them
      x = self.generator.apply(params['generator'], z)
      params['amortizer'] = damc.init_amortizer(self.damc.amortizer, q_key, x)
      if self.damc.target_rate > 0:
        params['amortizer_target'] = params['amortizer']
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

  def initial_posterior(self, key, params, x, training: bool = False):
    """Where posterior chains start: ``Q(z | x)`` with DAMC (the target ``Q`` in training when
    there is one), ``N(0, I)`` otherwise; ``[B, d_z]``."""
    if self.damc is None:
      return jax.random.normal(key, (x.shape[0], self.latent_dim))
    amortizer = 'amortizer_target' if training and 'amortizer_target' in params else 'amortizer'
    return self.damc.sample(params[amortizer], key, x)

  def posterior_chain(self, key, params, x, num_steps: int | None = None,
                      training: bool = False) -> tuple[jax.Array, jax.Array]:
    """``(z_0, z_K)``: :meth:`initial_posterior` and ``K`` Langevin steps on ``log p(z | x)``
    from it, ``[B, d_z]`` each (one chain per image)."""
    init_key, chain_key = jax.random.split(key)
    z0 = self.initial_posterior(init_key, params, x, training)
    return z0, damc.refine(chain_key, lambda z: self.log_joint(params, x, z), z0,
                           num_steps=num_steps or self.posterior_steps, step_size=self.posterior_step_size)

  def sample_posterior(self, key, params, x, num_steps: int | None = None):
    """Langevin on ``log p(z | x)`` from :meth:`initial_posterior`: ``[B, d_z]`` (one chain per image)."""
    return self.posterior_chain(key, params, x, num_steps)[1]

  def sample_prior_chain(self, key, params, num_samples: int, start: jax.Array | None = None):
    """``prior_steps`` Langevin steps on ``log p(z)`` from ``start [n, d_z]``, else from ``Q``'s
    prior samples (DAMC) or ``N(0, I)``: MLE's negative samples, ``[n, d_z]``."""
    init_key, chain_key = jax.random.split(key)
    if start is not None:
      z0 = start
    elif self.damc is None:
      z0 = jax.random.normal(init_key, (num_samples, self.latent_dim))
    else:
      z0 = self.damc.sample(params['amortizer'], init_key, None, num_samples)
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

  def generator_prior_loss(self, objective, params, key, batch, z, z0, step=0) -> tuple[jax.Array, dict]:
    """The generator's and the prior's loss at posterior samples ``z`` (chains started at ``z0``)
    and their diagnostics: ``mean_i ||x_i - g(z_i)||^2 / (2 sigma^2) + prior_loss``
    (:meth:`make_loss`). Touches ``params['generator']`` and ``params['prior']`` only."""
    x = batch['image']
    frozen = jax.lax.stop_gradient(params)
    reconstruction = -jnp.mean(self.log_likelihood(params, x, z))
    if objective is None:
      start = z0 if self.negatives_from == 'posterior_start' else None
      z_negative = jax.lax.stop_gradient(self.sample_prior_chain(key, frozen, x.shape[0], start))
      prior_loss = jnp.mean(self.log_ratio(params, z_negative)) - jnp.mean(self.log_ratio(params, z))
      diagnostics = {}
    else:
      prior_loss, diagnostics = estimation.ratio_loss(
          lambda p, v: self.prior.apply(p['prior'], v), params, z, batch['noise'], objective, step)
    # The chasm the prior crosses: s on posterior samples against s on N(0, I) noise.
    s_posterior = self.log_ratio(frozen, z)
    s_noise = self.log_ratio(frozen, batch['noise'][:, 0])
    return reconstruction + prior_loss, {
        **diagnostics, 'prior_loss': prior_loss, 'reconstruction_nll': reconstruction,
        'mean_squared_error': reconstruction * 2 * self.observation_std ** 2 / x[0].size,
        'posterior_norm': jnp.mean(jnp.linalg.norm(z, axis=-1)),
        'posterior_log_ratio': jnp.mean(s_posterior) - jnp.mean(s_noise),
        'prior_accuracy': 0.5 * (jnp.mean(s_posterior > 0) + jnp.mean(s_noise < 0))}

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
      chex.assert_rank(batch['image'], 4)
      posterior_key, prior_key, q_key = jax.random.split(rng, 3)
      z0, z = jax.lax.stop_gradient(self.posterior_chain(posterior_key, jax.lax.stop_gradient(params),
                                                         batch['image'], training=True))
      loss, metrics = self.generator_prior_loss(objective, params, prior_key, batch, z, z0, step)
      if self.damc is not None:
        amortizer_loss = self.damc.loss(params['amortizer'], q_key, z, batch['image'])
        loss, metrics['amortizer_loss'] = loss + amortizer_loss, amortizer_loss
      return loss, {**metrics, 'loss': loss}

    return loss_fn


def reference_optimizer(learning_rates: dict, *, b1: float = 0.5, b2: float = 0.999, clip_norm: float = 100.0,
                        decay_rate: float = 0.99, decay_every: int = 1000, final_learning_rate: float = 1e-5,
                        amortizer_updates: int = 1) -> optax.GradientTransformation:
  """The DAMC reference's optimisers (:func:`nnce_jax.train.per_group`): one Adam per network
  (``learning_rates``: ``{'generator': 1e-4, 'prior': 5e-5, 'amortizer': 1e-4}`` there), betas
  ``(b1, b2)``, each network's gradient clipped to ``clip_norm`` on its own, the rate times
  ``decay_rate`` every ``decay_every`` iterations down to ``final_learning_rate``. The
  amortiser's count advances ``amortizer_updates`` times per iteration, so its decay counts them."""
  def adam(group, rate):
    every = decay_every * (amortizer_updates if group == 'amortizer' else 1)
    schedule = optax.exponential_decay(rate, every, decay_rate, staircase=True,
                                       end_value=min(final_learning_rate, rate))
    return optax.chain(optax.clip_by_global_norm(clip_norm), optax.adam(schedule, b1=b1, b2=b2))

  return per_group({group: adam(group, rate) for group, rate in learning_rates.items()})


def make_reference_train_step(model: LatentEBM, objective: objectives.Objective | None,
                              tx: optax.GradientTransformation) -> TrainStep:
  """The DAMC reference's iteration as an engine :class:`~nnce_jax.train.TrainStep`, with ``tx``
  of :func:`reference_optimizer`:

  1. posterior samples ``z_K`` by Langevin from ``z_0 ~`` the target ``Q`` (the live one without);
  2. ``model.damc.updates_per_step`` updates of ``Q`` on the same ``(z_K, x)``, fresh noise each;
  3. one update of the generator and the prior on :meth:`LatentEBM.generator_prior_loss`;
  4. every ``target_every`` iterations, ``Q_target <- rate Q + (1 - rate) Q_target``.

  Without DAMC (short-run chains from ``N(0, I)``) steps 2 and 4 drop out: the same optimisers
  and iteration, the baseline sampler. Gradients are averaged over the ``'data'`` axis;
  evaluation sees the parameters (no EMA)."""
  q = model.damc
  sample_batch = model.make_sampler(objective)
  local = lambda tree: jax.lax.pcast(tree, AXIS, to='varying')  # noqa: E731  (see train.make_train_step)

  def sample(state: TrainState, inputs):
    return sample_batch(step_keys(state)[0], inputs)

  def update(state: TrainState, batch):
    params, x = state.params, batch['image']
    posterior_key, prior_key, q_key = jax.random.split(step_keys(state)[1], 3)
    z0, z = jax.lax.stop_gradient(model.posterior_chain(posterior_key, params, x, training=True))

    def amortizer_update(carry, key):
      q_params, opt_state = carry
      loss, grads = jax.lax.pmean(jax.value_and_grad(lambda p: q.loss(p, key, z, x))(local(q_params)), AXIS)
      updates, opt_state = tx.update({'amortizer': grads}, opt_state, {'amortizer': q_params})
      return (optax.apply_updates(q_params, updates['amortizer']), opt_state), loss

    opt_state = state.opt_state
    if q is not None:
      (q_params, opt_state), q_losses = jax.lax.scan(
          amortizer_update, (params['amortizer'], opt_state), jax.random.split(q_key, q.updates_per_step))
      params = {**params, 'amortizer': q_params}
    trained = {group: params[group] for group in ('generator', 'prior')}
    loss_fn = lambda p: model.generator_prior_loss(objective, p, prior_key, batch, z, z0, state.step)  # noqa: E731
    grads, metrics = jax.grad(loss_fn, has_aux=True)(local(trained))
    grads, metrics = jax.lax.pmean((grads, metrics), AXIS)
    updates, opt_state = tx.update(grads, opt_state, trained)
    params = {**params, **optax.apply_updates(trained, updates)}
    if 'amortizer_target' in params:
      rate = jnp.where((state.step + 1) % q.target_every == 0, q.target_rate, 0.0)
      target = params['amortizer_target']
      params['amortizer_target'] = optax.incremental_update(params['amortizer'], target, rate)
    metrics = {**metrics, 'grad_norm': optax.tree.norm(grads)}
    if q is not None:
      metrics['amortizer_loss'] = q_losses[-1]
    metrics['loss'] = (metrics['reconstruction_nll'] + metrics['prior_loss']
                       + metrics.get('amortizer_loss', 0.0))
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state, ema_params=params), metrics

  return TrainStep(sample, update)


GENERATORS = ('conv', 'mlp', 'reference')
SAMPLERS = ('short_run', 'damc')
ENCODERS = ('mlp', 'conv', 'reference')
PRIOR_ACTIVATIONS = {'gelu': nn.gelu, 'leaky_relu': lambda h: nn.leaky_relu(h, 0.2)}  # the reference's: 0.2
NEGATIVE_STARTS = ('prior', 'posterior_start')


def make_latent_ebm(image_shape, *, generator='conv', latent_dim=16, generator_features=64,
                    generator_hidden=(256, 512), prior_hidden=(200, 200), num_stages=1,
                    sampler='short_run', encoder='mlp', embed_dim=128, amortizer_widths=(128, 256, 256),
                    diffusion_steps=100, prior_fraction=0.2, time_features=64, denoiser_output='dense',
                    amortizer_loss='mixed', amortizer_updates=1, target_rate=0.0, target_every=10,
                    prior_activation='gelu', **settings) -> LatentEBM:
  """A :class:`LatentEBM`: a ``conv`` (:class:`Generator`), ``mlp`` or ``reference``
  (:class:`ReferenceGenerator`, ``generator_features`` = its ngf) generator, an MLP prior with
  ``num_stages`` telescoping heads and ``prior_activation``, and posterior chains started at
  ``N(0, I)`` (``sampler='short_run'``) or by DAMC's amortiser (``'damc'``, with an ``mlp``,
  ``conv`` or ``reference`` (:class:`ReferenceEncoder`) image encoder; the other amortiser
  settings are :class:`DAMCSampler`'s and :class:`~nnce_jax.damc.Amortizer`'s)."""
  for name, value, allowed in (('generator', generator, GENERATORS), ('sampler', sampler, SAMPLERS),
                               ('encoder', encoder, ENCODERS), ('prior_activation', prior_activation,
                                                                tuple(PRIOR_ACTIVATIONS)),
                               ('denoiser_output', denoiser_output, damc.OUTPUT_LAYERS),
                               ('amortizer_loss', amortizer_loss, damc.AMORTIZER_LOSSES),
                               ('negatives_from', settings.get('negatives_from', 'prior'), NEGATIVE_STARTS)):
    if value not in allowed:
      raise ValueError(f'{name}={value!r} is not one of {", ".join(allowed)}')
  shape = tuple(image_shape)
  network = {'conv': lambda: Generator(shape, generator_features),
             'mlp': lambda: MLPGenerator(shape, tuple(generator_hidden)),
             'reference': lambda: ReferenceGenerator(shape, generator_features)}[generator]()
  amortiser = None
  if sampler == 'damc':
    image_encoder = {'conv': lambda: ConvEncoder(embed_dim), 'mlp': lambda: MLPEncoder((256, embed_dim)),
                     'reference': lambda: ReferenceEncoder(embed_dim)}[encoder]()
    amortiser = DAMCSampler(damc.Amortizer(latent_dim, image_encoder, embed_dim, tuple(amortizer_widths),
                                           time_features=time_features, output_layer=denoiser_output),
                            diffusion_steps, prior_fraction, combine=amortizer_loss,
                            updates_per_step=amortizer_updates, target_rate=target_rate,
                            target_every=target_every)
  return LatentEBM(network,
                   models.MLPRatio(hidden=tuple(prior_hidden), num_stages=num_stages,
                                   activation=PRIOR_ACTIVATIONS[prior_activation]),
                   latent_dim, damc=amortiser, **settings)
