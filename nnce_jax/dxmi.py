"""DxMI (Yoon et al., 2024): a ``T``-step sampler fine-tuned by maximum-entropy inverse RL
against an energy, with the energy learned by DxMI's own loss or by NCE / N²CE.

Parameters are one dict: ``energy`` (``E(x)``, time-independent), ``value`` (``V(x, t)`` for
``t < T``; ``V^T = E``), ``sampler`` (``{'epsilon': ..., 'log_sigma': [T]}``, the policy of
:mod:`nnce_jax.few_step`) and ``velocity`` (``s_t^2 [T]``, a running average, not trained). One
iteration (:func:`make_update`), on a buffer of ``B`` trajectories ``x_0 .. x_T`` of the sampler:

1. **energy**, data ``x+`` against sampler outputs ``x_T`` (stop-gradient):
   DxMI's ``mean E(x+) - mean E(x_T) + gamma (mean E(x+)^2 + mean E(x_T)^2)``, or a ratio
   objective of :mod:`nnce_jax.objectives` on ``s(x) = -E(x)`` with ``x_T`` as its noise. The
   noise density is the current sampler's, unknown, so ``-E`` estimates ``log p_data / p_sampler``
   up to a constant, a correction to the sampler, and not a normalised density;
2. **values**, backwards ``t = T-1 .. 0``, one optimiser step each (dynamic programming):
   ``V(x_t, t) <- V^{t+1}(x_{t+1}) + tau2 c_t - tau1 log sigma_t``, with the running cost
   ``c_t = mean_d (x_{t+1} - x_t)^2 / (2 s_t^2)`` (``Hyper.costs_in_value=False`` drops the two
   cost terms; ``Networks.value=None`` makes the energy every ``V^t``: the reference's CIFAR-10
   setting, one time-independent network);
3. **sampler**, reparameterised over the buffer's transitions:
   ``mean_{t, b} V^{t+1}(mu_t(x_t) + sigma_t xi) + tau2 c_t - tau1 log sigma_t``.

Every loss is a mean over the batch, so under ``shard_map`` the per-device gradients are
averaged over ``axis_name`` and the result equals the single-device one.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from nnce_jax import few_step
from nnce_jax.objectives import Objective
from nnce_jax.parallel import AXIS
from nnce_jax.train import TrainState, TrainStep, step_keys

ENERGY_LOSSES = ('dxmi', 'nce', 'noisier_nce', 'nwj')


class Networks(NamedTuple):
  """``energy(params, x [B, ...]) -> [B]``, ``value(params, x [B, ...], t [B]) -> [B]``,
  ``epsilon(params, x [B, ...], n [B]) -> [B, ...]`` (the teacher's noise predictor). ``value``
  None makes the energy every ``V^t`` (the reference's CIFAR-10 setting: one time-independent
  network, whose value steps then train the energy's parameters)."""
  energy: Callable
  value: Callable | None
  epsilon: Callable


class Hyper(NamedTuple):
  tau_entropy: float = 0.1     # tau1 >= 0: weight of -log sigma_t
  tau_velocity: float = 0.01   # tau2 >= 0: weight of the running cost
  gamma: float = 1.0           # DxMI energy loss's square penalty, >= 0
  velocity_decay: float = 0.99  # s_t^2's running-average decay, in [0, 1)
  costs_in_value: bool = True   # the value target adds tau2 c_t - tau1 log sigma_t (False: V^{t+1} only)
  train_last_sigma: bool = True  # False: the last step's sigma stays at its initial value


def dxmi_energy_loss(energy_data: jax.Array, energy_sample: jax.Array, gamma: float):
  """``mean E(x+) - mean E(x_T) + gamma (mean E(x+)^2 + mean E(x_T)^2)``: ``[n], [m]`` -> scalar."""
  loss = jnp.mean(energy_data) - jnp.mean(energy_sample)
  penalty = jnp.mean(energy_data ** 2) + jnp.mean(energy_sample ** 2)
  return loss + gamma * penalty, _energy_means(energy_data, energy_sample)


def _energy_means(energy_data, energy_sample):
  return {'energy_data': jnp.mean(energy_data), 'energy_sample': jnp.mean(energy_sample)}


def running_cost(states: jax.Array, velocity: jax.Array) -> jax.Array:
  """``c_t = mean_d (x_{t+1} - x_t)^2 / (2 s_t^2)``: states ``[T+1, B, ...]``, ``s^2 [T]`` -> ``[T, B]``."""
  squared = jnp.mean((states[1:] - states[:-1]).reshape(states.shape[0] - 1, states.shape[1], -1) ** 2, -1)
  return squared / (2 * velocity[:, None])


def mean_squared_step(states: jax.Array) -> jax.Array:
  """``mean_{b, d} (x_{t+1} - x_t)^2``: states ``[T+1, B, ...]`` -> ``[T]``. The running cost's
  scale ``s_t^2`` starts here and then follows it as a running average (``velocity_decay``)."""
  return jnp.mean((states[1:] - states[:-1]).reshape(states.shape[0] - 1, -1) ** 2, -1)


def sample_buffer(networks: Networks, schedule: few_step.FewStepSchedule, params, key,
                  data: jax.Array) -> dict:
  """One iteration's inputs, batch-first so that a device's shard is whole trajectories:
  ``data [B, ...]``, the sampler's ``states [B, T+1, ...]`` (stop-gradient) and the sampler
  step's reparameterisation ``noise [B, T, ...]``."""
  trajectory_key, noise_key = jax.random.split(key)
  epsilon = lambda x, n: networks.epsilon(params['sampler']['epsilon'], x, n)  # noqa: E731
  states = few_step.sample_trajectory(epsilon, params['sampler']['log_sigma'], schedule, trajectory_key,
                                      data.shape)
  num_steps = schedule.sigma.shape[0]
  return {'data': data, 'states': jax.lax.stop_gradient(jnp.moveaxis(states, 0, 1)),
          'noise': jax.random.normal(noise_key, (data.shape[0], num_steps) + data.shape[1:])}


def make_update(networks: Networks, schedule: few_step.FewStepSchedule, tx: optax.GradientTransformation,
                energy_objective: Objective | None, hyper: Hyper = Hyper(), axis_name: str | None = None):
  """``update(params, opt_state, batch) -> (params, opt_state, metrics)``: one DxMI iteration
  of the module docstring on a :func:`sample_buffer` batch (or a device's shard of it, with
  ``axis_name`` the axis its gradients and means are averaged over). ``tx`` is
  :func:`nnce_jax.train.per_group` over ``energy``, ``value`` and ``sampler``; ``energy_objective`` None is
  DxMI's own energy loss, else a ratio objective (``make_objective``) on ``s = -E``."""
  num_steps = schedule.sigma.shape[0]
  mean = (lambda tree: jax.lax.pmean(tree, axis_name)) if axis_name else (lambda tree: tree)
  # Differentiate per-device copies: under shard_map the gradient of replicated parameters
  # is already summed over devices, and the mean would then be the sum.
  local = (lambda tree: jax.lax.pcast(tree, axis_name, to='varying')) if axis_name else (lambda tree: tree)

  def step(group, loss_fn, params, opt_state):
    grads, metrics = mean(jax.grad(loss_fn, has_aux=True)(local(params[group])))
    updates, opt_state = tx.update({group: grads}, opt_state, {group: params[group]})
    return {**params, group: optax.apply_updates(params[group], updates[group])}, opt_state, metrics

  shared = networks.value is None
  value_group = 'energy' if shared else 'value'
  value_fn = (lambda p, x, t: networks.energy(p, x)) if shared else networks.value  # noqa: E731

  def next_value(params, x, t):
    """``V^{t+1}(x)`` for ``x [B, ...]`` and ``t [B]``: the energy at ``t + 1 = T``."""
    energy = networks.energy(params['energy'], x)
    if shared:
      return energy
    later = networks.value(params['value'], x, jnp.minimum(t + 1, num_steps - 1))
    return jnp.where(t + 1 == num_steps, energy, later)

  def update(params, opt_state, batch):
    data, states = batch['data'], jnp.moveaxis(batch['states'], 1, 0)  # [T+1, b, ...]
    batch_size = data.shape[0]
    squared = mean(mean_squared_step(states))
    velocity = hyper.velocity_decay * params['velocity'] + (1 - hyper.velocity_decay) * squared
    params = {**params, 'velocity': velocity}
    cost = running_cost(states, velocity)
    log_sigma = jax.lax.stop_gradient(params['sampler']['log_sigma'])

    def energy_loss(energy_params):
      energy_data = networks.energy(energy_params, data)
      energy_sample = networks.energy(energy_params, states[-1])
      if energy_objective is None:
        return dxmi_energy_loss(energy_data, energy_sample, hyper.gamma)
      loss, diagnostics = energy_objective.loss(-energy_data[None], -energy_sample[None])
      return loss, {**diagnostics, **_energy_means(energy_data, energy_sample)}

    params, opt_state, metrics = step('energy', energy_loss, params, opt_state)
    metrics = {k if k.startswith('energy') else f'energy_{k}': v for k, v in metrics.items()}

    for t in reversed(range(num_steps)):  # dynamic programming: V^{t+1} is already updated
      times = jnp.full((batch_size,), t)
      target = next_value(params, states[t + 1], times)
      if hyper.costs_in_value:
        target = target + hyper.tau_velocity * cost[t] - hyper.tau_entropy * log_sigma[t]
      target = jax.lax.stop_gradient(target)

      def value_loss(value_params, t=t, times=times, target=target):
        residual = value_fn(value_params, states[t], times) - target
        return jnp.mean(residual ** 2), {'value_loss': jnp.mean(residual ** 2)}

      params, opt_state, value_metrics = step(value_group, value_loss, params, opt_state)
    metrics['value_loss'] = value_metrics['value_loss']  # at t = 0, the whole trajectory's value

    def sampler_loss(sampler_params):
      times = jnp.repeat(jnp.arange(num_steps), batch_size)
      x = states[:-1].reshape((-1,) + data.shape[1:])
      log_sigma = sampler_params['log_sigma']
      if not hyper.train_last_sigma:
        log_sigma = log_sigma.at[-1].set(jax.lax.stop_gradient(log_sigma[-1]))
      sigma = jnp.exp(log_sigma)[times].reshape((-1,) + (1,) * (x.ndim - 1))
      noise = jnp.moveaxis(batch['noise'], 1, 0).reshape(x.shape)
      epsilon = lambda x, n: networks.epsilon(sampler_params['epsilon'], x, n)  # noqa: E731
      moved = few_step.step_mean(epsilon, schedule, x, times) + sigma * noise
      step_cost = jnp.mean((moved - x).reshape(x.shape[0], -1) ** 2, -1) / (2 * velocity[times])
      value = next_value(params, moved, times)
      entropy = log_sigma[times]
      loss = jnp.mean(value + hyper.tau_velocity * step_cost - hyper.tau_entropy * entropy)
      return loss, {'sampler_loss': loss, 'sampler_value': jnp.mean(value),
                    'running_cost': jnp.mean(step_cost)}

    params, opt_state, sampler_metrics = step('sampler', sampler_loss, params, opt_state)
    return params, opt_state, {**metrics, **sampler_metrics}

  return update


def make_train_step(networks: Networks, schedule: few_step.FewStepSchedule, tx: optax.GradientTransformation,
                    energy_objective: Objective | None, draw_data: Callable,
                    hyper: Hyper = Hyper()) -> TrainStep:
  """The engine's :class:`~nnce_jax.train.TrainStep` of :func:`make_update`: ``sample`` draws the
  global buffer (``draw_data(key, inputs) -> data [B, ...]`` and the sampler's trajectories), so
  the result does not depend on the device count; ``update`` runs one iteration per device.
  Evaluation sees the parameters themselves (no EMA)."""

  def sample(state: TrainState, inputs):
    data_key, buffer_key = jax.random.split(step_keys(state)[0])
    return sample_buffer(networks, schedule, state.params, buffer_key, draw_data(data_key, inputs))

  update_fn = make_update(networks, schedule, tx, energy_objective, hyper, AXIS)

  def update(state: TrainState, batch):
    params, opt_state, metrics = update_fn(state.params, state.opt_state, batch)
    metrics['loss'] = metrics['sampler_loss']
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state, ema_params=params), metrics

  return TrainStep(sample, update)
