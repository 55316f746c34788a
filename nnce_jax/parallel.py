"""Data parallelism: one per-device step body, run under ``jit(shard_map)`` or ``pmap``.

The step body sees its device's shard of the batch and averages gradients and metrics
with ``lax.pmean(..., 'data')``. Both backends run that same body over the same devices
and give the same numbers; ``shard_map`` is the default (``pmap`` is in maintenance mode
since JAX 0.8 and is itself built on ``jit`` + ``shard_map``).

Batches are stacked per dispatch: ``[steps_per_dispatch, batch, ...]``, split over devices
along axis 1. With several processes (multi-host) each passes only its own slice of the
global batch, and the mesh spans the devices of all of them. The state is replicated.
"""

import os
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, SingleDeviceSharding
from jax.sharding import PartitionSpec as P

AXIS = 'data'
BACKENDS = ('shard_map', 'pmap')


def initialize_multihost(coordinator_address: str | None = None, num_processes: int | None = None,
                         process_id: int | None = None) -> None:
  """Joins a multi-process run. Unset arguments come from ``JAX_COORDINATOR_ADDRESS``,
  ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``, else JAX detects them (TPU pods, SLURM)."""
  env = lambda name: int(os.environ[name]) if name in os.environ else None  # noqa: E731
  jax.distributed.initialize(
      coordinator_address or os.environ.get('JAX_COORDINATOR_ADDRESS'),
      num_processes if num_processes is not None else env('JAX_NUM_PROCESSES'),
      process_id if process_id is not None else env('JAX_PROCESS_ID'))


class DataParallel:
  """Places state and batches on devices and compiles a per-device step for a backend."""

  def __init__(self, backend: str = 'shard_map', devices: Sequence[jax.Device] | None = None):
    if backend not in BACKENDS:
      raise ValueError(f'parallel.backend={backend!r} is not one of {", ".join(BACKENDS)}')
    self.backend = backend
    self.devices = list(devices if devices is not None else jax.devices())
    self.mesh = Mesh(np.array(self.devices), (AXIS,))
    self._replicated = NamedSharding(self.mesh, P())
    self._batch_sharding = NamedSharding(self.mesh, P(None, AXIS))
    self._device_sharding = NamedSharding(self.mesh, P(AXIS))  # pmap's leading device axis

  @property
  def num_devices(self) -> int:
    return len(self.devices)

  def compile(self, step_body: Callable) -> Callable:
    """``step_body(state, batches) -> (state, metrics)`` -> a compiled global step.

    The returned function takes the placed state and batches and returns the new placed
    state (the old one is donated) and the metrics of device 0 (equal on all devices).
    """
    if self.backend == 'pmap':
      stepped = jax.pmap(step_body, axis_name=AXIS, devices=self.devices, donate_argnums=0)
      return lambda state, batches: _first_metrics(stepped(state, batches))
    stepped = jax.shard_map(step_body, mesh=self.mesh, in_specs=(P(), P(None, AXIS)),
                            out_specs=(P(), P()))
    return jax.jit(stepped, donate_argnums=0)

  def put_state(self, state):
    """Replicates a (host or single-device) state over the devices, one fresh copy per leaf.

    The compiled step donates the placed state: a buffer shared by two leaves (``ema_params``
    starts as ``params``) or with the caller would be freed twice (a segfault on CPU).
    """
    if self.backend == 'pmap':
      # Placed explicitly: pmap (built on jit) rejects inputs committed to one device, which
      # is how a restored checkpoint arrives.
      stacked = lambda x: jnp.stack([jnp.asarray(x)] * self.num_devices)  # noqa: E731
      return jax.tree.map(lambda x: jax.device_put(stacked(x), self._device_sharding), state)
    # device_put alone returns one buffer for a leaf repeated in the tree, even with
    # may_alias=False; an explicit copy per leaf does not.
    return jax.tree.map(lambda x: jax.device_put(jnp.array(x, copy=True), self._replicated), state)

  def abstract_state(self, state):
    """Shapes, dtypes and shardings of ``get_state(put_state(state))``, without placing it:
    the target a checkpoint is restored into."""
    sharding = SingleDeviceSharding(self.devices[0]) if self.backend == 'pmap' else self._replicated
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), jnp.result_type(x), sharding=sharding),
                        state)

  def get_state(self, state):
    """The logical state (one copy) of a placed state, for evaluation and checkpoints."""
    if self.backend == 'pmap':
      return jax.tree.map(lambda x: x[0], state)
    return state

  def host_state(self, state):
    """The logical state copied to this host (NumPy): what evaluation reads, since arrays
    spread over several processes cannot enter a computation of one process."""
    return jax.device_get(self.get_state(state))

  def put_batch(self, batches):
    """Shards ``[steps, batch, ...]`` arrays along the batch axis: the global batch in one
    process, this process's slice of it (in process order) in several."""
    if jax.process_count() > 1:
      def global_array(x):
        shape = (x.shape[0], x.shape[1] * jax.process_count(), *x.shape[2:])
        return jax.make_array_from_process_local_data(self._batch_sharding, np.asarray(x), shape)
      return jax.tree.map(global_array, batches)
    if self.backend == 'pmap':
      d = self.num_devices
      return jax.tree.map(
          lambda x: np.swapaxes(np.asarray(x).reshape(x.shape[0], d, -1, *x.shape[2:]), 0, 1),
          batches)
    return jax.device_put(batches, self._batch_sharding)


def _first_metrics(outputs):
  state, metrics = outputs
  return state, jax.tree.map(lambda x: x[0], metrics)
