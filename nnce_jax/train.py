"""Train state, the step factory and the training loop.

A step has two halves (:class:`TrainStep`): ``sample`` draws the step's random global batch
under ``jit`` (sharded over devices, so each generates its own shard and the values do not
depend on how many there are), and ``update`` is the per-device body that averages gradients
over the ``'data'`` axis. The loop is the only stateful piece: it dispatches
``steps_per_dispatch`` steps per call (a ``lax.scan``), blocks on their outputs at least every
``sync_every`` steps (collectives over fake CPU devices deadlock when too many steps are in
flight), logs, evaluates, checkpoints, and on SIGTERM (agreed by all processes of a
multi-host run) saves and raises :class:`Preempted`. Per-step keys are ``fold_in(rng,
step)``, so a resumed run continues bit for bit.
"""

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.experimental import multihost_utils

from nnce_jax import checkpoint
from nnce_jax.parallel import AXIS, DataParallel

LossFn = Callable[[Any, jax.Array, Any, jax.Array], tuple[jax.Array, dict]]  # (params, rng, batch, step)
SampleBatch = Callable[[jax.Array, Any], Any]  # (key, host inputs or None) -> global batch [B, ...]


class Preempted(Exception):
  """Raised by :func:`train` after SIGTERM, once a checkpoint of the current step is saved."""


@struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any
  ema_params: Any  # Polyak average, what evaluation sees: Adam's last steps jitter
  rng: jax.Array  # raw uint32 key: the root of every per-step key


def create_train_state(params, tx: optax.GradientTransformation, rng: jax.Array) -> TrainState:
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                    ema_params=params, rng=rng)


class TrainStep(NamedTuple):
  """``sample(state, inputs) -> batch``: the global batch of ``state.step`` (under ``jit``,
  before the batch is split over devices); ``update(state, shard) -> (state, metrics)``: the
  per-device body."""
  sample: Callable[[TrainState, Any], Any]
  update: Callable[[TrainState, Any], tuple[TrainState, dict]]


def step_keys(state: TrainState) -> tuple[jax.Array, jax.Array]:
  """``(sample_key, loss_key)`` of ``state.step``: two streams split from ``fold_in(rng, step)``."""
  return tuple(jax.random.split(jax.random.fold_in(state.rng, state.step)))


def make_train_step(loss_fn: LossFn, tx: optax.GradientTransformation, ema_decay: float = 0.0,
                    skip_nonfinite: bool = False, sample_batch: SampleBatch | None = None) -> TrainStep:
  """Returns the :class:`TrainStep` of ``loss_fn``.

  ``sample_batch(sample_key, inputs)`` draws the global batch ``[B, ...]`` from the host
  ``inputs`` of the step (or ``None``); without it the inputs are the batch. All randomness
  that should not depend on the device count belongs there. ``loss_fn(params, loss_key,
  shard, state.step)`` is evaluated on this device's shard (``loss_key`` is the same on every
  device); gradients and metrics are averaged over the ``'data'`` axis, so equal shards give
  the gradient of the global mean loss. ``ema_params <- d * ema_params + (1 - d) * params``
  with ``d = min(ema_decay, (1 + step) / (10 + step))`` (warm-up as in TF's EMA). With
  ``skip_nonfinite`` a step whose loss or gradient is not finite leaves the state untouched
  (``metrics['skipped']``).
  """

  def sample(state: TrainState, inputs):
    return inputs if sample_batch is None else sample_batch(step_keys(state)[0], inputs)

  def update(state: TrainState, batch):
    # Differentiate per-device copies: under shard_map the gradient of *replicated* params is
    # already summed over devices, and the pmean below would then give the sum, not the mean.
    local_params = jax.lax.pcast(state.params, AXIS, to='varying')
    grads, metrics = jax.grad(loss_fn, has_aux=True)(local_params, step_keys(state)[1], batch, state.step)
    grads, metrics = jax.lax.pmean((grads, metrics), AXIS)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new = (params, opt_state)
    if ema_decay:
      decay = jnp.minimum(ema_decay, (1.0 + state.step) / (10.0 + state.step))
      new += (optax.incremental_update(params, state.ema_params, 1.0 - decay),)
    metrics['grad_norm'] = optax.tree.norm(grads)
    if skip_nonfinite:
      finite = jnp.isfinite(metrics['loss']) & jnp.isfinite(metrics['grad_norm'])
      old = (state.params, state.opt_state, state.ema_params)[:len(new)]
      new = jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
      metrics['skipped'] = 1.0 - finite.astype(jnp.float32)
    params, opt_state = new[:2]
    ema_params = new[2] if ema_decay else params  # no EMA: evaluation sees the params
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                         ema_params=ema_params), metrics

  return TrainStep(sample, update)


def per_group(optimizers: dict) -> optax.GradientTransformation:
  """Independent optimisers for the top-level groups of a params dict. ``update`` takes the
  gradients of any subset of the groups and steps only those: DxMI and DAMC's reference
  step update their networks one after another within an iteration."""

  def init(params):
    return {group: tx.init(params[group]) for group, tx in optimizers.items()}

  def update(grads, state, params=None):
    updates, state = {}, dict(state)
    for group, grad in grads.items():
      updates[group], state[group] = optimizers[group].update(
          grad, state[group], None if params is None else params[group])
    return updates, state

  return optax.GradientTransformation(init, update)


class _Preemption:
  """Decides, after each dispatch, whether to save and stop.

  One process: a SIGTERM handler sets a flag (installed from the main thread only). Several
  processes: JAX's preemption sync manager owns SIGTERM; a notice to any process makes all of
  them agree on one dispatch (``reached_preemption_sync_point``, called with the same counter
  by every process), so all save the same step and none is left waiting in a collective.
  """

  def __init__(self):
    self.multi_process = jax.process_count() > 1
    self.event = threading.Event()
    self._previous = None

  def __enter__(self):
    if not self.multi_process and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, lambda *_: self.event.set())
    return self

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)

  def reached(self, dispatch: int) -> bool:
    if self.multi_process:
      return multihost_utils.reached_preemption_sync_point(dispatch)
    return self.event.is_set()


def _first_nonfinite(chunks, first_step):
  for i, metrics in enumerate(chunks):
    for name, values in metrics.items():
      bad = np.flatnonzero(~np.isfinite(values))
      if bad.size:
        return first_step + i * values.shape[0] + int(bad[0]) + 1, name
  return None


def train(state: TrainState, train_step: TrainStep, *, parallel: DataParallel, config,
          batches_for: Callable[[int], Any] | None = None, eval_fn=None, on_eval=None, manager=None,
          writer=None) -> tuple[TrainState, list[dict]]:
  """Runs ``train_step`` from ``state.step`` to ``config.num_steps``.

  ``batches_for(step)`` gives the host inputs ``[steps_per_dispatch, B, ...]`` of the steps
  starting at ``step``: the global batch, or with several processes this process's slice of
  it; ``None`` when ``train_step.sample`` draws the whole batch itself.
  ``config`` holds ``num_steps, steps_per_dispatch, sync_every, log_every, eval_every,
  checkpoint_every, on_nonfinite`` (``eval_every``/``checkpoint_every`` 0: only at the end).
  ``eval_fn(params) -> dict`` runs on the logical EMA params; ``on_eval(step, record,
  params) -> bool`` sees each evaluation (``record`` as in the history) with those params on
  the host, e.g. :class:`~nnce_jax.selection.HeldOutSelection`, and ``True`` stops training
  there (early stopping; a checkpoint of that step is saved). ``writer`` has
  ``write(step, scalars)``. Returns the final logical state (on the host) and the eval history.
  """
  spd, num_steps = config.steps_per_dispatch, config.num_steps
  step = int(state.step)
  start_step, history, pending, window = step, [], [], []
  compiled = parallel.compile(train_step, spd)
  placed = parallel.put_state(state)
  last_sync = step
  host_batches = placed_batches = None
  timer = (time.perf_counter(), step)

  def due(every):
    return step == num_steps or (every > 0 and step % every == 0)

  with _Preemption() as preemption:
    dispatch = 0
    while step < num_steps:
      if batches_for and (batches := batches_for(step)) is not host_batches:  # constant: place once
        host_batches, placed_batches = batches, parallel.put_batch(batches)
      placed, metrics = compiled(placed, placed_batches)
      pending.append(metrics)
      step += spd
      stopping = preemption.reached(dispatch)
      dispatch += 1
      boundary = due(config.log_every) or due(config.eval_every) or due(config.checkpoint_every)
      if step - last_sync >= config.sync_every or boundary or stopping:
        chunks = jax.device_get(pending)  # blocks: the sync the fake-device collectives need
        if config.on_nonfinite == 'stop' and (bad := _first_nonfinite(chunks, last_sync)):
          raise FloatingPointError(
              f'non-finite train_{bad[1]} at step {bad[0]}; set train.on_nonfinite="skip" to '
              'skip such updates, or lower the learning rate')
        window.extend(chunks)
        pending, last_sync = [], step

      if due(config.log_every) and window:
        means = {f'train_{k}': float(np.nanmean(np.concatenate([np.atleast_1d(c[k]) for c in window])))
                 for k in window[0]}
        now = time.perf_counter()
        rate = (step - timer[1]) / max(now - timer[0], 1e-9)
        timer, window = (now, step), []
        means['train_steps_per_sec'] = rate
        logging.info('step %d/%d  loss %.5g  %.1f steps/s  ETA %s', step, num_steps,
                     means['train_loss'], rate, _eta(num_steps - step, rate))
        if writer:
          writer.write(step, means)

      stopping_early = False
      if eval_fn is not None and due(config.eval_every):
        ema_params = parallel.host_state(placed).ema_params
        record = {f'eval_{k}': float(v) for k, v in eval_fn(ema_params).items()}
        history.append({'step': step, **record})
        if writer:
          writer.write(step, record)
        if on_eval is not None and on_eval(step, record, ema_params):
          logging.info('stopped early at step %d/%d: the held-out score stopped improving', step, num_steps)
          stopping_early = True

      if manager is not None and (due(config.checkpoint_every) or stopping or stopping_early):
        checkpoint.save(manager, step, parallel.get_state(placed))
      if stopping:
        if manager is not None:
          manager.wait_until_finished()
        raise Preempted(f'SIGTERM at step {step}; checkpoint saved, rerun to resume')
      if stopping_early:
        break

  if manager is not None:
    manager.wait_until_finished()
  logging.info('trained steps %d..%d', start_step, step)
  return parallel.host_state(placed), history


def _eta(remaining_steps: int, rate: float) -> str:
  seconds = int(remaining_steps / max(rate, 1e-9))
  return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'
