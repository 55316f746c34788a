"""Score identity distillation (SiD; Zhou et al., ICML 2024): a one-step generator distilled
from a DDPM teacher, with an optional term on real data (SiD²A's adversarial loss, NCE or N²CE).

The teacher is an epsilon network ``eps_phi(x_n, n)`` on the variance-preserving schedule of
:mod:`nnce_jax.ddpm`; a noise level ``sigma`` (EDM's, ``x + sigma eps``) is the teacher's
fractional step ``n`` with ``abar(n) = 1 / (1 + sigma^2)``, and every network is read as a
denoiser ``f(x_n, n) = (x_n - sqrt(1 - abar) eps_hat) / sqrt(abar)``. Parameters are one dict:

- ``generator``: ``x_g = G_theta(z) = f_theta(sqrt(1 - abar_init) z, n_init)``, the teacher's
  denoiser applied to pure noise at ``sigma_init = 2.5`` and initialised at the teacher
  (:func:`one_step_generator`);
- ``fake_score``: ``f_psi``, initialised at the teacher, fitted to noised generator samples;
- ``discriminator`` (with a term on real data): ``s(x_n, n)``, a log ratio of noised data to
  noised generator samples.

One iteration (:func:`make_update`), each phase on its own draw of ``z``:

1. **fake score** (and discriminator): ``x_g`` stop-gradient, ``sigma`` log-normal
   (``ln sigma ~ N(-1.2, 1.2^2)``), EDM's weighted denoising loss
   ``sum_d (sigma^2 + sigma_data^2) / (sigma sigma_data)^2 (f_psi(x_n) - x_g)^2``, which in the
   epsilon parameterisation is ``sum_d (1 + sigma^2 / sigma_data^2) (eps_hat - eps)^2``; the
   discriminator's loss at the same noise: data against ``x_g`` (below);
2. **generator**, ``sigma`` on EDM's rho schedule at ``u ~ U(0, t_max)``, ``x_n`` from ``x_g``
   with the gradient flowing through it into both frozen denoisers:

       L_SiD = sum_d (f_phi - f_psi) ((f_phi - x_g) - alpha (f_phi - f_psi)) / w,
       w = stop(mean_d |x_g - f_phi|),

   plus ``real_weight * d * softplus(log M - s(x_n)) / w`` with a term on real data.

The term on real data (``real_term``): ``'adversarial'`` is SiD²A's (the discriminator's
logistic loss weighted per sample by EDM's weight, the generator's logit clipped to ±10, M = 1);
``'nce'`` and ``'noisier_nce'`` train ``s`` by :func:`~nnce_jax.objectives.nce_loss` (M = 1) or
:func:`~nnce_jax.objectives.noisier_nce_loss` (``M``) and the generator by the same classifier's
data term at its samples, ``softplus(log M - s)``; at ``M = 1`` the two ratio terms coincide.
Losses are means over the batch, so under ``shard_map`` the per-device gradients are averaged.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from nnce_jax import ddpm, objectives
from nnce_jax.parallel import AXIS
from nnce_jax.train import TrainState, TrainStep, step_keys

REAL_TERMS = ('none', 'adversarial', 'nce', 'noisier_nce')
LOGIT_CLIP = 10.0  # SiD²A clamps the generator's discriminator logits


class Networks(NamedTuple):
  """``teacher(x [B, ...], n [B]) -> eps_hat`` (its parameters closed over, frozen);
  ``fake_score(params, x, n) -> eps_hat``; ``generator(params, z [B, ...]) -> x_g``;
  ``discriminator(params, x, n) -> s [B]`` or None without a term on real data."""
  teacher: Callable
  fake_score: Callable
  generator: Callable
  discriminator: Callable | None = None


class Hyper(NamedTuple):
  alpha: float = 1.2          # the score identity's weight (SiD's scripts: 1.2)
  t_max: float = 0.8          # the generator's u ~ U(0, t_max) on the rho schedule (SiD: 800 / 1000)
  sigma_min: float = 0.002    # EDM's rho schedule ...
  sigma_max: float = 80.0
  rho: float = 7.0
  log_sigma_mean: float = -1.2  # ... and the fake score's log-normal noise levels
  log_sigma_std: float = 1.2
  sigma_data: float = 0.5     # EDM's weight (sigma^2 + sigma_data^2) / (sigma sigma_data)^2
  real_term: str = 'none'     # one of REAL_TERMS
  magnitude: float = 1.0      # M of 'noisier_nce' (> 0)
  real_weight: float = 1e-4   # the generator's real-data term per pixel against L_SiD's (SiD²A: 0.01 / 100)


def check_hyper(hyper: Hyper) -> None:
  """Raises ValueError naming the setting that is out of range."""
  if hyper.real_term not in REAL_TERMS:
    raise ValueError(f'real_term={hyper.real_term!r} is not one of {", ".join(REAL_TERMS)}')
  if not hyper.magnitude > 0:
    raise ValueError(f'magnitude={hyper.magnitude} must be > 0')
  if not 0 < hyper.t_max <= 1 or not 0 < hyper.sigma_min < hyper.sigma_max:
    raise ValueError(f'need 0 < t_max <= 1 and 0 < sigma_min < sigma_max, got {hyper.t_max}, '
                     f'{hyper.sigma_min}, {hyper.sigma_max}')


def teacher_step(schedule: ddpm.Schedule, sigma: jax.Array) -> jax.Array:
  """The fractional step ``n`` of EDM's noise level ``sigma``: ``abar(n) = 1 / (1 + sigma^2)``
  (clipped to the schedule's range), ``[B]``."""
  return ddpm.step_at(schedule, 1 / (1 + jnp.square(sigma)))


def one_step_generator(epsilon_apply: Callable, schedule: ddpm.Schedule, init_sigma: float = 2.5) -> Callable:
  """SiD's generator ``G(params, z) = f_params(sqrt(1 - abar_init) z, n_init)`` with ``abar_init =
  1 / (1 + init_sigma^2)``: ``epsilon_apply(params, x, n)`` is the teacher's network, so that
  ``G`` starts as the teacher's one-step denoiser of pure noise."""
  n_init = teacher_step(schedule, jnp.asarray([init_sigma], jnp.float32))

  def generator(params, z):
    n = jnp.broadcast_to(n_init, z.shape[:1])
    x = jnp.sqrt(1 - ddpm.broadcast(ddpm.alpha_cumprod_at(schedule, n), z)) * z
    return ddpm.denoise(lambda v, m: epsilon_apply(params, v, m), schedule, x, n)

  return generator


def generator_sigma(hyper: Hyper, u: jax.Array) -> jax.Array:
  """EDM's rho schedule at ``u`` in ``[0, t_max]``: ``(s_max^(1/rho) + (1 - u) (s_min^(1/rho) -
  s_max^(1/rho)))^rho`` (``u = 0``: ``sigma_min``; ``t_max = 0.8``: about 24.4)."""
  a, b = hyper.sigma_max ** (1 / hyper.rho), hyper.sigma_min ** (1 / hyper.rho)
  return (a + (1 - u) * (b - a)) ** hyper.rho


def sid_generator_loss(x_g: jax.Array, y_real: jax.Array, y_fake: jax.Array, alpha: float) -> tuple:
  """``(L [B], w [B])``: the per-sample SiD loss of the module docstring (summed over the data's
  dimensions) and its normaliser ``w``, for generator samples and the two denoisers' guesses at
  their noised copies, all ``[B, ...]``."""
  axes = tuple(range(1, x_g.ndim))
  w = jax.lax.stop_gradient(jnp.maximum(jnp.mean(jnp.abs(x_g - y_real), axes), 1e-5))
  gap = y_real - y_fake
  return jnp.sum(gap * ((y_real - x_g) - alpha * gap), axes) / w, w


def real_data_losses(hyper: Hyper, s_data: jax.Array, s_generated: jax.Array,
                     weight: jax.Array | None = None) -> tuple[jax.Array, dict]:
  """The discriminator's loss between log ratios of data ``[B]`` and generator samples ``[B]``:
  SiD²A's logistic loss weighted per sample by ``weight`` (``'adversarial'``), NCE or N²CE."""
  if hyper.real_term == 'adversarial':
    per_sample = jax.nn.softplus(-s_data) + jax.nn.softplus(s_generated)
    return jnp.mean(weight * per_sample) / 2, {'accuracy': _accuracy(s_data, s_generated, 0.0)}
  objective = objectives.make_objective(hyper.real_term, magnitude=hyper.magnitude)
  loss, diagnostics = objective.loss(s_data[None], s_generated[None])
  return loss, diagnostics


def generator_real_loss(hyper: Hyper, s_generated: jax.Array) -> jax.Array:
  """The generator's real-data term per sample, ``[B]``: the classifier's data term at its own
  samples, ``softplus(log M - s)`` (``'adversarial'``: ``s`` clipped to ±10, ``M = 1``)."""
  if hyper.real_term == 'adversarial':
    return jax.nn.softplus(-jnp.clip(s_generated, -LOGIT_CLIP, LOGIT_CLIP))
  log_magnitude = jnp.log(hyper.magnitude) if hyper.real_term == 'noisier_nce' else 0.0
  return jax.nn.softplus(log_magnitude - s_generated)


def sample_batch(key, data: jax.Array, hyper: Hyper, schedule: ddpm.Schedule) -> dict:
  """One iteration's randomness for ``data [B, ...]``, batch-first (a device's shard is whole
  examples): the two phases' latents ``z``, noises ``eps`` and fractional steps ``n``."""
  keys = jax.random.split(key, 6)
  batch_size, shape = data.shape[0], data.shape
  log_sigma = hyper.log_sigma_mean + hyper.log_sigma_std * jax.random.normal(keys[0], (batch_size,))
  u = jax.random.uniform(keys[1], (batch_size,), maxval=hyper.t_max)
  return {'data': data,
          'z_fake': jax.random.normal(keys[2], shape), 'eps_fake': jax.random.normal(keys[3], shape),
          'n_fake': teacher_step(schedule, jnp.exp(log_sigma)),
          'z_generator': jax.random.normal(keys[4], shape),
          'eps_generator': jax.random.normal(keys[5], shape),
          'n_generator': teacher_step(schedule, generator_sigma(hyper, u))}


def make_update(networks: Networks, schedule: ddpm.Schedule, tx: optax.GradientTransformation,
                hyper: Hyper = Hyper(), axis_name: str | None = None) -> Callable:
  """``update(params, opt_state, batch) -> (params, opt_state, metrics)``: one SiD iteration
  of the module docstring on a :func:`sample_batch` batch (or a device's shard of it, with
  ``axis_name`` the axis its gradients and means are averaged over). ``tx`` is
  :func:`nnce_jax.train.per_group` over ``generator``, ``fake_score`` (and ``discriminator``)."""
  check_hyper(hyper)
  real = hyper.real_term != 'none'
  if real and networks.discriminator is None:
    raise ValueError(f'real_term={hyper.real_term!r} needs a discriminator network')
  mean = (lambda tree: jax.lax.pmean(tree, axis_name)) if axis_name else (lambda tree: tree)
  local = (lambda tree: jax.lax.pcast(tree, axis_name, to='varying')) if axis_name else (lambda tree: tree)
  teacher = lambda x, n: ddpm.denoise(networks.teacher, schedule, x, n)  # noqa: E731

  def fake_denoiser(params):
    return lambda x, n: ddpm.denoise(lambda v, m: networks.fake_score(params, v, m), schedule, x, n)

  def update(params, opt_state, batch):
    groups = ('fake_score', 'discriminator') if real else ('fake_score',)
    x_g = jax.lax.stop_gradient(networks.generator(params['generator'], batch['z_fake']))
    n, eps = batch['n_fake'], batch['eps_fake']
    sigma_squared = jnp.expm1(-jnp.log(ddpm.alpha_cumprod_at(schedule, n)))  # (1 - abar) / abar
    edm_weight = 1 + sigma_squared / hyper.sigma_data ** 2  # EDM's weight times sigma^2

    def fake_loss(trained):
      x_n = ddpm.noised(schedule, x_g, n, eps)
      residual = networks.fake_score(trained['fake_score'], x_n, n) - eps
      loss = jnp.mean(edm_weight * jnp.sum(jnp.square(residual).reshape(x_g.shape[0], -1), -1))
      metrics = {'fake_score_loss': loss}
      if real:  # data and generator samples at the same noise, as SiD²A's discriminator sees them
        data_n = ddpm.noised(schedule, batch['data'], n, eps)
        s_data = networks.discriminator(trained['discriminator'], data_n, n)
        s_generated = networks.discriminator(trained['discriminator'], x_n, n)
        real_loss, diagnostics = real_data_losses(hyper, s_data, s_generated, edm_weight / sigma_squared)
        loss = loss + real_loss
        metrics['discriminator_loss'] = real_loss
        metrics.update({f'discriminator_{k}': v for k, v in diagnostics.items()})
      return loss, metrics

    trained = {group: params[group] for group in groups}
    grads, metrics = mean(jax.grad(fake_loss, has_aux=True)(local(trained)))
    updates, opt_state = tx.update(grads, opt_state, trained)
    params = {**params, **optax.apply_updates(trained, updates)}

    fake = fake_denoiser(params['fake_score'])

    def generator_loss(generator_params):
      x_g = networks.generator(generator_params, batch['z_generator'])
      n = batch['n_generator']
      x_n = ddpm.noised(schedule, x_g, n, batch['eps_generator'])
      y_real, y_fake = teacher(x_n, n), fake(x_n, n)
      sid, w = sid_generator_loss(x_g, y_real, y_fake, hyper.alpha)
      loss, metrics = jnp.mean(sid), {'sid_loss': jnp.mean(sid), 'sid_normaliser': jnp.mean(w)}
      if real:
        dims = x_g[0].size
        real_term = generator_real_loss(hyper, networks.discriminator(params['discriminator'], x_n, n))
        metrics['generator_real_loss'] = jnp.mean(real_term)
        loss = loss + hyper.real_weight * dims * jnp.mean(real_term / w)
      return loss, {**metrics, 'generator_loss': loss}

    grads, generator_metrics = mean(jax.grad(generator_loss, has_aux=True)(local(params['generator'])))
    updates, opt_state = tx.update({'generator': grads}, opt_state, {'generator': params['generator']})
    params = {**params, 'generator': optax.apply_updates(params['generator'], updates['generator'])}
    return params, opt_state, {**metrics, **generator_metrics}

  return update


def make_train_step(networks: Networks, schedule: ddpm.Schedule, tx: optax.GradientTransformation,
                    draw_data: Callable, hyper: Hyper = Hyper()) -> TrainStep:
  """The engine's :class:`~nnce_jax.train.TrainStep` of :func:`make_update`: ``sample`` draws the
  global batch (``draw_data(key, inputs) -> data [B, ...]`` and :func:`sample_batch`), so the
  result does not depend on the device count. Evaluation sees the parameters (no EMA)."""
  update_fn = make_update(networks, schedule, tx, hyper, AXIS)

  def sample(state: TrainState, inputs):
    data_key, key = jax.random.split(step_keys(state)[0])
    return sample_batch(key, draw_data(data_key, inputs), hyper, schedule)

  def update(state: TrainState, batch):
    params, opt_state, metrics = update_fn(state.params, state.opt_state, batch)
    metrics['loss'] = metrics['generator_loss']
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state, ema_params=params), metrics

  return TrainStep(sample, update)


def _accuracy(s_data, s_generated, threshold):
  return 0.5 * (jnp.mean(s_data > threshold) + jnp.mean(s_generated < threshold))
