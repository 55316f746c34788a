"""DxMI on a 2-D toy density: a ``T``-step sampler cut from a trained DDPM teacher
(``ddpm_toy2d``) and fine-tuned against an energy learned by DxMI's own loss, NCE, N²CE or NWJ.

Each evaluation judges ``T``-step samples against held-out data (sliced W2, MMD, modes) and the
energy (AUROC of ``-E`` between held-out data and uniform points). The summary's truth holds the
teacher's ``T``-step numbers before fine-tuning, the teacher's 100-step sliced W2 (the threshold
of ``steps_to_tolerance``) and the floor: the distance between two held-out samples.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import linen as nn

from experiments.core import plotting
from experiments.core.checks import ConfigError, boolean, number, one_of, widths
from experiments.core.task import Task
from experiments.tasks import samplers
from nnce_jax import checkpoint, ddpm, dxmi, few_step, ranking_metrics
from nnce_jax.data import toy2d
from nnce_jax.objectives import make_objective

THRESHOLD_STEPS = 100  # the teacher's quality to reach: its 100-step VAR sampler


class ValueMLP(nn.Module):
  """``V(x [B, d], t [B]) -> [B]`` (``t`` None: the energy ``E(x)``, no time input)."""
  hidden: tuple[int, ...]

  @nn.compact
  def __call__(self, x, t=None):
    h = x if t is None else jnp.concatenate([x, ddpm.timestep_embedding(t.astype(jnp.float32), 32)], -1)
    for width in self.hidden:
      h = nn.silu(nn.Dense(width)(h))
    return nn.Dense(1)(h)[:, 0]


def check(config) -> None:
  one_of(config, 'data.dataset', toy2d.DATASETS)
  samplers.check_teacher(config)
  if not config.teacher.workdir:
    raise ConfigError('config.teacher.workdir is empty; it must name a ddpm_toy2d run directory')
  number(config, 'sampler.num_steps', low=1, integer=True)
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


def restore_teacher(config, network):
  """The teacher's EMA parameters from ``config.teacher.workdir``; a missing run or one of
  another shape is refused in one line."""
  workdir = os.path.expanduser(config.teacher.workdir)
  command = ('python -m experiments.main --config=experiments/configs/ddpm_toy2d.py '
             f'--config.data.dataset={config.data.dataset} --workdir={config.teacher.workdir}')
  directory = os.path.join(workdir, 'checkpoints')
  manager = checkpoint.make_manager(directory, 1) if os.path.isdir(directory) else None
  if manager is None or manager.latest_step() is None:
    raise FileNotFoundError(f'no teacher checkpoint in config.teacher.workdir={workdir}; train one with '
                            f'`{command}`')
  with open(os.path.join(workdir, 'config.json')) as f:
    trained = json.load(f)
  for field in ('hidden', 'diffusion_steps', 'beta_start', 'beta_end'):
    if _plain(trained['teacher'][field]) != _plain(config.teacher[field]):
      raise ConfigError(f'config.teacher.{field}={config.teacher[field]!r} differs from the teacher run in '
                        f'{workdir} ({trained["teacher"][field]!r}); match it or train another teacher')
  if trained['data']['dataset'] != config.data.dataset:
    raise ConfigError(f'config.data.dataset={config.data.dataset!r}, but the teacher in {workdir} learned '
                      f'{trained["data"]["dataset"]!r}')
  restored = manager.restore(manager.latest_step(), args=ocp.args.StandardRestore())['ema_params']
  manager.close()
  expected = network.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)), jnp.zeros(1))
  shapes = lambda tree: jax.tree.map(lambda x: tuple(np.shape(x)), tree)  # noqa: E731
  if shapes(restored) != shapes(expected):
    raise ConfigError(f'the teacher checkpoint in {workdir} has parameters of another shape than '
                      f'config.teacher.hidden={tuple(config.teacher.hidden)}')
  return jax.tree.map(jnp.asarray, restored)


def _plain(value):
  return list(value) if isinstance(value, (list, tuple)) else value


def build(config) -> Task:
  network, schedule = samplers.teacher(config)
  teacher_params = restore_teacher(config, network)
  num_steps = config.sampler.num_steps
  var = few_step.var_schedule(schedule, num_steps)
  energy, value = ValueMLP(tuple(config.energy.hidden)), ValueMLP(tuple(config.value.hidden))
  shared = config.value.shared_with_energy  # one time-independent network, as the reference's CIFAR-10
  networks = dxmi.Networks(energy=energy.apply, value=None if shared else value.apply, epsilon=network.apply)
  root = jax.random.PRNGKey(config.seed)
  x = jnp.zeros((1, 2))
  params = {'energy': energy.init(jax.random.fold_in(root, 1), x),
            'sampler': {'epsilon': teacher_params, 'log_sigma': jnp.log(var.sigma)}}
  if not shared:
    params['value'] = value.init(jax.random.fold_in(root, 2), x, jnp.zeros(1))
  eval_key, held_out = jax.random.fold_in(root, 3), samplers.held_out(config)

  @jax.jit
  def sampler_output(params, key, n=held_out.shape[0]):
    epsilon = lambda x, t: network.apply(params['sampler']['epsilon'], x, t)  # noqa: E731
    return few_step.sample_trajectory(epsilon, params['sampler']['log_sigma'], var, key, (n, 2))

  params['velocity'] = dxmi.mean_squared_step(sampler_output(params, jax.random.fold_in(root, 4)))
  c = config.sampler
  labels = lambda p: {'epsilon': jax.tree.map(lambda _: 'network', p['epsilon']), 'log_sigma': 'sigma'}  # noqa: E731
  sampler_tx = optax.multi_transform({'network': optax.adam(c.network_learning_rate),
                                      'sigma': optax.adam(c.sigma_learning_rate)}, labels)
  optimizers = {'energy': optax.adam(config.energy.learning_rate),
                'sampler': optax.chain(optax.clip_by_global_norm(c.grad_clip_norm), sampler_tx)}
  if not shared:
    optimizers['value'] = optax.adam(config.value.learning_rate)
  tx = dxmi.per_group(optimizers)
  objective = (None if config.energy.loss == 'dxmi'
               else make_objective(config.energy.loss, magnitude=config.objective.magnitude))
  hyper = dxmi.Hyper(**config.dxmi.to_dict())
  draw_data = lambda key, inputs: toy2d.sample(config.data.dataset, key, config.train.batch_size)  # noqa: E731
  train_step = dxmi.make_train_step(networks, var, tx, objective, draw_data, hyper)

  uniform = samplers.uniform_box(jax.random.fold_in(root, 5), held_out.shape[0])
  is_data = np.concatenate([np.ones(held_out.shape[0]), np.zeros(uniform.shape[0])])
  energy_on = jax.jit(lambda params, points: energy.apply(params['energy'], points))

  def eval_fn(params):
    samples = sampler_output(params, eval_key)[-1]
    metrics = samplers.sample_metrics(eval_key, config.data.dataset, samples, held_out)
    scores = -np.asarray(energy_on(params, jnp.concatenate([held_out, uniform])))
    metrics['energy_auroc'] = ranking_metrics.roc_auc(scores, is_data)
    metrics['mean_sigma'] = float(jnp.mean(jnp.exp(params['sampler']['log_sigma'][:-1])))
    return metrics

  teacher = samplers.sample_metrics(eval_key, config.data.dataset, sampler_output(params, eval_key)[-1],
                                    held_out)
  hundred = few_step.var_schedule(schedule, THRESHOLD_STEPS)
  epsilon = lambda x, t: network.apply(teacher_params, x, t)  # noqa: E731
  threshold = samplers.sample_metrics(eval_key, config.data.dataset, few_step.sample_trajectory(
      epsilon, jnp.log(hundred.sigma), hundred, eval_key, held_out.shape)[-1], held_out)['sliced_w2']
  floor = _floor(config, eval_key, held_out)
  truth = {**{f'teacher_{k}': v for k, v in teacher.items()},
           f'teacher_{THRESHOLD_STEPS}_step_sliced_w2': threshold, 'data_floor_sliced_w2': floor}

  def report(params, workdir):
    before = {**params, 'sampler': {'epsilon': teacher_params, 'log_sigma': jnp.log(var.sigma)}}
    shown = {'held-out data': held_out, f'teacher, {num_steps} steps': sampler_output(before, eval_key)[-1],
             f'DxMI ({config.energy.loss}), {num_steps} steps': sampler_output(params, eval_key)[-1]}
    figure, axes = samplers.sample_panels(shown, extra=1)
    limit = samplers.LIMIT
    axis = np.linspace(-limit, limit, 120)
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    axes[-1].imshow(-np.asarray(energy_on(params, jnp.asarray(grid))).reshape(120, 120), origin='lower',
                    extent=[-limit, limit, -limit, limit], cmap='viridis')
    axes[-1].set_title('-E(x), the learned energy')
    return {'samples_png': plotting.save(figure, os.path.join(workdir, 'dxmi_samples.png'))}

  return Task(energy, params, None, eval_fn, truth, table_metrics=('sliced_w2', 'mmd', 'energy_auroc'),
              tolerance_metric='sliced_w2', tolerance=threshold, report=report, optimizer=tx,
              train_step=train_step)


def _floor(config, key, held_out) -> float:
  """Sliced W2 between two independent held-out samples: what sampling noise alone gives."""
  other = toy2d.sample(config.data.dataset, jax.random.fold_in(jax.random.PRNGKey(config.seed), 98),
                       held_out.shape[0])
  return samplers.sample_metrics(key, config.data.dataset, other, held_out)['sliced_w2']
