"""What the sampler tasks share (``ddpm_toy2d``, ``dxmi_toy2d``, ``ddpm_images``, ``sid_toy2d``,
``dxmi_images``): the teacher's network and schedule from a config, its restored checkpoint,
the DxMI fine-tuning and SiD distillation set-ups, and how 2-D samples are judged against held-out data."""

import functools
import json
import os
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import linen as nn

from experiments.core import plotting
from experiments.core.checks import MAX_MAGNITUDE, ConfigError, boolean, number, one_of, widths
from nnce_jax import checkpoint, ddpm, dxmi, few_step, sample_distances, sid, train
from nnce_jax.data import toy2d
from nnce_jax.objectives import make_objective

MMD_POINTS = 5000  # the kernel matrix is quadratic in the sample size
LIMIT = 4.5  # the toy densities lie in [-LIMIT, LIMIT]^2
THRESHOLD_STEPS = 100  # DxMI's bar: the teacher's quality with its 100-step VAR sampler
REFERENCE_STEPS = (1, 4, 10, 100)  # the teacher's cut samplers beside a one-step generator


def check_teacher(config) -> None:
  number(config, 'teacher.diffusion_steps', low=2, integer=True)
  number(config, 'teacher.beta_start', low=0, low_open=True, high=1, high_open=True)
  number(config, 'teacher.beta_end', low=config.teacher.beta_start, high=1, high_open=True)
  one_of(config, 'teacher.prediction', ddpm.PREDICTIONS)
  widths(config, 'teacher.hidden')
  for steps in config.teacher.eval_steps:
    if not isinstance(steps, int) or steps < 1:
      raise ConfigError(f'config.teacher.eval_steps={config.teacher.eval_steps!r} is invalid; '
                        'it must hold integers >= 1')


def teacher(config) -> tuple[ddpm.EpsilonMLP, ddpm.Schedule]:
  t = config.teacher
  settings = (t.diffusion_steps, t.beta_start, t.beta_end)
  network = ddpm.EpsilonMLP(tuple(t.hidden), prediction=t.prediction, schedule=settings)
  return network, ddpm.linear_schedule(*settings)


def teacher_loss(network, schedule):
  """The teacher's training loss: :func:`nnce_jax.ddpm.denoising_loss` of ``network``, in its
  own parameterisation's units."""
  def loss_fn(params, rng, batch, step=0):
    loss = ddpm.denoising_loss(lambda x, n: network.apply(params, x, n), rng, batch, schedule,
                               network.prediction)
    return loss, {'loss': loss}
  return loss_fn


def cut_samplers(network, schedule, steps, key, shape, x0_bound: float | None = None) -> Callable:
  """``params -> {T: samples [shape]}`` (jitted): the ``T``-step VAR samplers cut from the teacher
  ``network`` for each ``T`` in ``steps``, all from ``key`` (``x0_bound``: clip each step's
  denoised guess, :func:`nnce_jax.few_step.step_mean`)."""
  schedules = {t: few_step.var_schedule(schedule, t) for t in steps}

  @jax.jit
  def samples(params):
    epsilon = lambda x, n: network.apply(params, x, n)  # noqa: E731
    return {t: few_step.sample_trajectory(epsilon, jnp.log(s.sigma), s, key, shape, x0_bound)[-1]
            for t, s in schedules.items()}
  return samples


def evaluation_key(config) -> jax.Array:
  """The key every sampler task draws its evaluation samples from: a teacher run and the tasks
  that read it (``dxmi_images``, ``teacher_sampling``) at the same seed see the same samples."""
  return jax.random.fold_in(jax.random.PRNGKey(config.seed), 3)


def check_teacher_run(config) -> None:
  """The fields of a config that reads a finished teacher run (``config.teacher.workdir``)."""
  check_teacher(config)
  if not config.teacher.workdir:
    raise ConfigError('config.teacher.workdir is empty; it must name the teacher\'s run directory')


def check_fine_tuning(config) -> None:
  """The fields of a DxMI fine-tuning config (``dxmi_toy2d``, ``dxmi_images``)."""
  check_teacher_run(config)
  number(config, 'sampler.steps', low=1, integer=True)
  number(config, 'energy.magnitude', low=0, low_open=True, high=MAX_MAGNITUDE)
  for field in ('sampler.network_learning_rate', 'sampler.sigma_learning_rate', 'energy.learning_rate',
                'value.learning_rate'):
    number(config, field, low=0, low_open=True)
  number(config, 'sampler.grad_clip_norm', low=0, low_open=True)
  one_of(config, 'energy.loss', dxmi.ENERGY_LOSSES)
  for field in ('dxmi.tau_entropy', 'dxmi.tau_velocity', 'dxmi.gamma'):
    number(config, field, low=0)
  number(config, 'dxmi.velocity_decay', low=0, high=1, high_open=True)
  for field in ('value.shared_with_energy', 'dxmi.costs_in_value', 'dxmi.train_last_sigma'):
    boolean(config, field)
  widths(config, 'energy.hidden')
  widths(config, 'value.hidden')


def restore_teacher(config, network, dim: int, teacher_config: str):
  """The teacher's EMA parameters from ``config.teacher.workdir`` (a run of ``teacher_config``
  on ``dim``-dimensional data); a missing run or one of another shape is refused in one line."""
  workdir = os.path.expanduser(config.teacher.workdir)
  command = (f'python -m experiments.main --config={teacher_config} '
             f'--config.data.dataset={config.data.dataset} --workdir={config.teacher.workdir}')
  directory = os.path.join(workdir, 'checkpoints')
  manager = checkpoint.make_manager(directory, 1) if os.path.isdir(directory) else None
  if manager is None or manager.latest_step() is None:
    raise FileNotFoundError(f'no teacher checkpoint in config.teacher.workdir={workdir}; train one with '
                            f'`{command}`')
  with open(os.path.join(workdir, 'config.json')) as f:
    trained = json.load(f)
  for field in ('hidden', 'diffusion_steps', 'beta_start', 'beta_end', 'prediction'):
    if _plain(trained['teacher'].get(field, 'epsilon')) != _plain(config.teacher[field]):
      raise ConfigError(f'config.teacher.{field}={config.teacher[field]!r} differs from the teacher run in '
                        f'{workdir} ({trained["teacher"][field]!r}); match it or train another teacher')
  if trained['data']['dataset'] != config.data.dataset:
    raise ConfigError(f'config.data.dataset={config.data.dataset!r}, but the teacher in {workdir} learned '
                      f'{trained["data"]["dataset"]!r}')
  restored = manager.restore(manager.latest_step(), args=ocp.args.StandardRestore())['ema_params']
  manager.close()
  expected = network.init(jax.random.PRNGKey(0), jnp.zeros((1, dim)), jnp.zeros(1))
  shapes = lambda tree: jax.tree.map(lambda x: tuple(np.shape(x)), tree)  # noqa: E731
  if shapes(restored) != shapes(expected):
    raise ConfigError(f'the teacher checkpoint in {workdir} has parameters of another shape than '
                      f'config.teacher.hidden={tuple(config.teacher.hidden)}')
  return jax.tree.map(jnp.asarray, restored)


def _plain(value):
  return list(value) if isinstance(value, (list, tuple)) else value


class ValueMLP(nn.Module):
  """``V(x [B, d], t [B]) -> [B]`` (``t`` None: the energy ``E(x)``, no time input)."""
  hidden: tuple[int, ...]

  @nn.compact
  def __call__(self, x, t=None):
    h = x if t is None else jnp.concatenate([x, ddpm.timestep_embedding(t.astype(jnp.float32), 32)], -1)
    for width in self.hidden:
      h = nn.silu(nn.Dense(width)(h))
    return nn.Dense(1)(h)[:, 0]


class FineTuning(NamedTuple):
  """DxMI's parameters, optimiser and train step for a task, and the functions it evaluates
  with: ``sample(params, key, n) -> [T + 1, n, d]`` (jitted; ``n`` static), ``energy(params,
  x [n, d]) -> [n]``, and ``before``: the parameters with the teacher's sampler put back."""
  params: dict
  optimizer: optax.GradientTransformation
  train_step: object
  sample: Callable
  energy: Callable
  before: Callable
  schedule: few_step.FewStepSchedule


def fine_tuning(config, network, schedule, teacher_params, dim: int, draw_data: Callable,
                velocity_samples: int) -> FineTuning:
  """The ``T``-step VAR sampler cut from ``teacher_params``, the energy (and value) networks
  of ``config``, and :func:`nnce_jax.dxmi.make_train_step` on data from ``draw_data(key,
  inputs) -> [B, dim]``; the running velocity starts from ``velocity_samples`` trajectories."""
  var = few_step.var_schedule(schedule, config.sampler.steps)
  energy, value = ValueMLP(tuple(config.energy.hidden)), ValueMLP(tuple(config.value.hidden))
  shared = config.value.shared_with_energy  # one time-independent network, as the reference's CIFAR-10
  networks = dxmi.Networks(energy=energy.apply, value=None if shared else value.apply, epsilon=network.apply)
  root, x = jax.random.PRNGKey(config.seed), jnp.zeros((1, dim))
  teacher_sampler = {'epsilon': teacher_params, 'log_sigma': jnp.log(var.sigma)}
  params = {'energy': energy.init(jax.random.fold_in(root, 1), x), 'sampler': teacher_sampler}
  if not shared:
    params['value'] = value.init(jax.random.fold_in(root, 2), x, jnp.zeros(1))

  @functools.partial(jax.jit, static_argnums=2)
  def sample(params, key, n):
    epsilon = lambda x, t: network.apply(params['sampler']['epsilon'], x, t)  # noqa: E731
    return few_step.sample_trajectory(epsilon, params['sampler']['log_sigma'], var, key, (n, dim))

  params['velocity'] = dxmi.mean_squared_step(sample(params, jax.random.fold_in(root, 4), velocity_samples))
  c = config.sampler
  labels = lambda p: {'epsilon': jax.tree.map(lambda _: 'network', p['epsilon']), 'log_sigma': 'sigma'}  # noqa: E731
  sampler_tx = optax.multi_transform({'network': optax.adam(c.network_learning_rate),
                                      'sigma': optax.adam(c.sigma_learning_rate)}, labels)
  optimizers = {'energy': optax.adam(config.energy.learning_rate),
                'sampler': optax.chain(optax.clip_by_global_norm(c.grad_clip_norm), sampler_tx)}
  if not shared:
    optimizers['value'] = optax.adam(config.value.learning_rate)
  tx = train.per_group(optimizers)
  objective = (None if config.energy.loss == 'dxmi'
               else make_objective(config.energy.loss, magnitude=config.energy.magnitude))
  hyper = dxmi.Hyper(**config.dxmi.to_dict())
  train_step = dxmi.make_train_step(networks, var, tx, objective, draw_data, hyper)
  energy_on = jax.jit(lambda params, points: energy.apply(params['energy'], points))
  before = lambda params: {**params, 'sampler': teacher_sampler}  # noqa: E731
  return FineTuning(params, tx, train_step, sample, energy_on, before, var)


def modes_covered(name: str, samples: np.ndarray, min_fraction: float = 0.02) -> int | None:
  """Modes of ``name`` holding at least ``min_fraction`` of ``samples``: the 8 Gaussians
  (within 3 standard deviations of a centre) or the 8 squares of the checkerboard; None for
  other datasets."""
  samples = np.asarray(samples)
  if name == '8gaussians':
    angles = 2 * np.pi * np.arange(8) / 8
    centres = 4.0 * np.stack([np.cos(angles), np.sin(angles)], -1) / 1.414
    distance = np.linalg.norm(samples[:, None] - centres[None], axis=-1)
    return int(np.sum(np.mean(distance < 3 * 0.5 / 1.414, 0) >= min_fraction))
  if name == 'checkerboard':  # squares of side 2 on [-4, 4]^2 whose column + row index is even
    column, row = np.floor(samples[:, 0] / 2), np.floor(samples[:, 1] / 2)
    inside = (np.abs(samples) < 4).all(-1) & ((column + row) % 2 == 0)
    cells = [(c, r) for c in range(-2, 2) for r in range(-2, 2) if (c + r) % 2 == 0]
    return int(sum(np.mean(inside & (column == c) & (row == r)) >= min_fraction for c, r in cells))
  return None


def sample_metrics(key, name: str, samples: jax.Array, held_out: jax.Array) -> dict:
  """Sliced W2 (100 projections) over equal-size samples, MMD on the first
  :data:`MMD_POINTS`, and :func:`modes_covered`."""
  n = min(samples.shape[0], held_out.shape[0])
  metrics = {'sliced_w2': float(sample_distances.sliced_wasserstein(key, samples[:n], held_out[:n], 100)),
             'mmd': float(sample_distances.mmd(samples[:MMD_POINTS], held_out[:MMD_POINTS]))}
  modes = modes_covered(name, samples)
  if modes is not None:
    metrics['modes_covered'] = modes
  return metrics


def held_out(config) -> jax.Array:
  """``data.num_test`` points of the toy density, independent of the training draws."""
  return toy2d.sample(config.data.dataset, jax.random.fold_in(jax.random.PRNGKey(config.seed), 99),
                      config.data.num_test)


def uniform_box(key, n: int) -> jax.Array:
  return jax.random.uniform(key, (n, 2), minval=-LIMIT, maxval=LIMIT)


def sample_panels(shown: dict, extra: int = 0):
  """A row of scatter plots, one per ``{title: points [n, 2]}`` (5,000 points at most), and
  ``extra`` more panels for the caller, all on the toy box: ``(figure, axes)``."""
  figure, axes = plotting.panels(len(shown) + extra, columns=len(shown) + extra, width=3.2, height=3.2)
  for ax, (title, points) in zip(axes, shown.items()):
    ax.scatter(*np.asarray(points[:5000]).T, s=1, alpha=0.4)
    ax.set_title(title)
  for ax in axes:
    ax.set_xlim(-LIMIT, LIMIT)
    ax.set_ylim(-LIMIT, LIMIT)
    ax.set_aspect('equal')
  return figure, axes


def check_distillation(config) -> None:
  """The fields of a SiD config (``sid_toy2d``)."""
  check_teacher_run(config)
  one_of(config, 'sid.real_term', sid.REAL_TERMS)
  for field in ('magnitude', 'init_sigma', 'sigma_data', 'generator_learning_rate',
                'fake_score_learning_rate', 'discriminator_learning_rate'):
    number(config, f'sid.{field}', low=0, low_open=True)
  number(config, 'sid.alpha', low=0)
  number(config, 'sid.real_weight', low=0)
  number(config, 'sid.t_max', low=0, high=1, low_open=True)
  number(config, 'sid.b1', low=0, high=1, high_open=True)
  widths(config, 'sid.discriminator_hidden')


class Distillation(NamedTuple):
  """SiD's parameters, optimiser and train step for a task, and ``generate(params, key, n) ->
  [n, d]`` (jitted; ``n`` static): the one-step generator's samples."""
  params: dict
  optimizer: optax.GradientTransformation
  train_step: object
  generate: Callable


def distillation(config, network, schedule, teacher_params, dim: int, draw_data: Callable) -> Distillation:
  """SiD (:mod:`nnce_jax.sid`) from ``teacher_params``: the generator and the fake score start as
  copies of the teacher, the discriminator (with ``sid.real_term``) is a time-conditioned
  :class:`ValueMLP` on noised inputs; one Adam per network, betas ``(sid.b1, 0.999)``."""
  c = config.sid
  hyper = sid.Hyper(alpha=c.alpha, t_max=c.t_max, sigma_data=c.sigma_data, real_term=c.real_term,
                    magnitude=c.magnitude, real_weight=c.real_weight)
  generator = sid.one_step_generator(network.apply, schedule, c.init_sigma)
  discriminator = ValueMLP(tuple(c.discriminator_hidden))
  real = c.real_term != 'none'
  networks = sid.Networks(teacher=lambda x, n: network.apply(teacher_params, x, n), fake_score=network.apply,
                          generator=generator, discriminator=discriminator.apply if real else None)
  params = {'generator': teacher_params, 'fake_score': teacher_params}
  adam = lambda rate: optax.adam(rate, b1=c.b1, b2=0.999)  # noqa: E731
  optimizers = {'generator': adam(c.generator_learning_rate), 'fake_score': adam(c.fake_score_learning_rate)}
  if real:
    root = jax.random.PRNGKey(config.seed)
    params['discriminator'] = discriminator.init(jax.random.fold_in(root, 6), jnp.zeros((1, dim)),
                                                 jnp.zeros(1))
    optimizers['discriminator'] = adam(c.discriminator_learning_rate)
  tx = train.per_group(optimizers)
  train_step = sid.make_train_step(networks, schedule, tx, draw_data, hyper)

  @functools.partial(jax.jit, static_argnums=2)
  def generate(params, key, n):
    return generator(params['generator'], jax.random.normal(key, (n, dim)))

  return Distillation(params, tx, train_step, generate)
