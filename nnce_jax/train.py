"""Train state, the per-device step factory and the training loop.

The loop is the only stateful piece: it dispatches ``steps_per_dispatch`` optimizer steps
per call (a ``lax.scan``), blocks on their outputs at least every ``sync_every`` steps
(collectives over fake CPU devices deadlock when too many steps are in flight), logs,
evaluates, checkpoints, and on SIGTERM saves and raises :class:`Preempted`. Per-step keys
are ``fold_in(rng, step)``, so a resumed run continues bit for bit.
"""

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from nnce_jax import checkpoint
from nnce_jax.parallel import AXIS, DataParallel

LossFn = Callable[[Any, jax.Array, Any, jax.Array], tuple[jax.Array, dict]]  # (params, rng, batch, step)


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


def make_train_step(loss_fn: LossFn, tx: optax.GradientTransformation,
                    ema_decay: float = 0.0, skip_nonfinite: bool = False):
  """Returns the per-device ``train_step(state, batch) -> (state, metrics)``.

  ``loss_fn(params, fold_in(state.rng, state.step), batch, state.step)`` is evaluated on this device's
  shard; gradients and metrics are averaged over the ``'data'`` axis, so equal shards give
  the gradient of the global mean loss. ``ema_params <- d * ema_params + (1 - d) * params``
  with ``d = min(ema_decay, (1 + step) / (10 + step))`` (warm-up as in TF's EMA). With
  ``skip_nonfinite`` a step whose loss or gradient is not finite leaves the state untouched
  (``metrics['skipped']``).
  """

  def train_step(state: TrainState, batch):
    rng = jax.random.fold_in(state.rng, state.step)
    # Differentiate per-device copies: under shard_map the gradient of *replicated* params is
    # already summed over devices, and the pmean below would then give the sum, not the mean.
    local_params = jax.lax.pcast(state.params, AXIS, to='varying')
    grads, metrics = jax.grad(loss_fn, has_aux=True)(local_params, rng, batch, state.step)
    grads, metrics = jax.lax.pmean((grads, metrics), AXIS)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    decay = jnp.minimum(ema_decay, (1.0 + state.step) / (10.0 + state.step))
    ema_params = optax.incremental_update(params, state.ema_params, 1.0 - decay)
    metrics['grad_norm'] = optax.tree.norm(grads)
    new = (params, opt_state, ema_params)
    if skip_nonfinite:
      finite = jnp.isfinite(metrics['loss']) & jnp.isfinite(metrics['grad_norm'])
      old = (state.params, state.opt_state, state.ema_params)
      new = jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
      metrics['skipped'] = 1.0 - finite.astype(jnp.float32)
    params, opt_state, ema_params = new
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                         ema_params=ema_params), metrics

  return train_step


def scan_steps(train_step):
  """``(state, batches [S, ...]) -> (state, metrics [S])``: ``S`` steps in one dispatch."""
  return lambda state, batches: jax.lax.scan(train_step, state, batches)


class _StopFlag:
  """Set by SIGTERM while :func:`train` runs (handler installed from the main thread only)."""

  def __init__(self):
    self.event = threading.Event()
    self._previous = None

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, lambda *_: self.event.set())
    return self

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def _first_nonfinite(chunks, first_step):
  for i, metrics in enumerate(chunks):
    for name, values in metrics.items():
      bad = np.flatnonzero(~np.isfinite(values))
      if bad.size:
        return first_step + i * values.shape[0] + int(bad[0]) + 1, name
  return None


def train(state: TrainState, train_step, *, parallel: DataParallel,
          batches_for: Callable[[int], Any], config, eval_fn=None, manager=None,
          writer=None) -> tuple[TrainState, list[dict]]:
  """Runs ``train_step`` from ``state.step`` to ``config.num_steps``.

  ``batches_for(step)`` gives the batches ``[steps_per_dispatch, B, ...]`` starting at
  ``step``: the global batch, or with several processes this process's slice of it.
  ``config`` holds ``num_steps, steps_per_dispatch, sync_every, log_every, eval_every,
  checkpoint_every, on_nonfinite`` (``eval_every``/``checkpoint_every`` 0: only at the end).
  ``eval_fn(params) -> dict`` runs on the logical EMA params; ``writer`` has
  ``write(step, scalars)``. Returns the final logical state (on the host) and the eval history.
  """
  spd, num_steps = config.steps_per_dispatch, config.num_steps
  step = int(state.step)
  start_step, history, pending, window = step, [], [], []
  compiled = parallel.compile(scan_steps(train_step))
  placed = parallel.put_state(state)
  last_sync = step
  host_batches = placed_batches = None
  timer = (time.perf_counter(), step)

  def due(every):
    return step == num_steps or (every > 0 and step % every == 0)

  with _StopFlag() as stop:
    while step < num_steps:
      if (batches := batches_for(step)) is not host_batches:  # constant batches: place once
        host_batches, placed_batches = batches, parallel.put_batch(batches)
      placed, metrics = compiled(placed, placed_batches)
      pending.append(metrics)
      step += spd
      stopping = stop.event.is_set()
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

      if eval_fn is not None and due(config.eval_every):
        record = {f'eval_{k}': float(v) for k, v in eval_fn(parallel.host_state(placed).ema_params).items()}
        history.append({'step': step, **record})
        if writer:
          writer.write(step, record)

      if manager is not None and (due(config.checkpoint_every) or stopping):
        checkpoint.save(manager, step, parallel.get_state(placed))
      if stopping:
        if manager is not None:
          manager.wait_until_finished()
        raise Preempted(f'SIGTERM at step {step}; checkpoint saved, rerun to resume')

  if manager is not None:
    manager.wait_until_finished()
  logging.info('trained steps %d..%d', start_step, step)
  return parallel.host_state(placed), history


def _eta(remaining_steps: int, rate: float) -> str:
  seconds = int(remaining_steps / max(rate, 1e-9))
  return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'
