"""Data parallelism: one per-device step body, run under ``jit(shard_map)`` or ``pmap``.

The step body sees its device's shard of the batch and averages gradients and metrics
with ``lax.pmean(..., 'data')``. Both backends run that same body over the same devices
and give the same numbers; ``shard_map`` is the default (``pmap`` is in maintenance mode
since JAX 0.8 and is itself built on ``jit`` + ``shard_map``).

A step's global batch is drawn under ``jit`` and split over devices along its first axis;
host inputs (images) are stacked per dispatch, ``[steps_per_dispatch, batch, ...]``, and
split along axis 1. With several processes (multi-host) each passes only its own slice of
the host inputs, and the mesh spans the devices of all of them. The state is replicated.
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
    self._device_sharding = NamedSharding(self.mesh, P(AXIS))  # a step's batch; pmap's device axis
    self._compiled = {}

  @property
  def num_devices(self) -> int:
    return len(self.devices)

  def compile(self, train_step, steps_per_dispatch: int = 1) -> Callable:
    """A :class:`~nnce_jax.train.TrainStep` -> ``dispatch(state, inputs) -> (state, metrics)``.

    One dispatch runs ``steps_per_dispatch`` steps (a ``lax.scan``); ``inputs`` are their host
    inputs ``[steps, B, ...]`` placed by :meth:`put_batch`, or ``None``. Each step draws its
    global batch with ``train_step.sample`` under ``jit`` and hands every device its shard
    of it. The placed state is donated; the metrics, ``[steps]`` each, are equal on all devices.
    Compiled once per ``(train_step, steps_per_dispatch)``: a second run reuses it.
    """
    key = (train_step, steps_per_dispatch)
    if key not in self._compiled:
      compile_for = self._compile_pmap if self.backend == 'pmap' else self._compile_shard_map
      self._compiled[key] = compile_for(train_step, steps_per_dispatch)
    return self._compiled[key]

  def _compile_shard_map(self, train_step, steps_per_dispatch: int) -> Callable:
    update = jax.shard_map(train_step.update, mesh=self.mesh, in_specs=(P(), P(AXIS)), out_specs=(P(), P()))

    def one_step(state, inputs):
      batch = jax.lax.with_sharding_constraint(train_step.sample(state, inputs), self._device_sharding)
      return update(state, batch)

    def dispatch(state, inputs):
      if steps_per_dispatch == 1:  # no loop around a single step: XLA fuses it whole
        state, metrics = one_step(state, jax.tree.map(lambda x: x[0], inputs))
        return state, jax.tree.map(lambda x: x[None], metrics)
      return jax.lax.scan(one_step, state, inputs, length=steps_per_dispatch)

    return jax.jit(dispatch, donate_argnums=0)

  def _compile_pmap(self, train_step, steps_per_dispatch: int) -> Callable:
    """The same steps under ``pmap``: the batches of a dispatch are drawn first (one ``jit``,
    from device 0's copy of the state) and laid out ``[devices, steps, B / devices, ...]``."""
    d = self.num_devices

    @jax.jit
    def sample_all(state, inputs):
      state = jax.tree.map(lambda x: x[0], state)
      offsets = jnp.arange(steps_per_dispatch, dtype=state.step.dtype)
      batches = jax.vmap(lambda i, x: train_step.sample(state.replace(step=state.step + i), x),
                         in_axes=(0, None if inputs is None else 0))(offsets, inputs)
      per_device = lambda x: jnp.swapaxes(x.reshape(x.shape[0], d, -1, *x.shape[2:]), 0, 1)  # noqa: E731
      return jax.lax.with_sharding_constraint(jax.tree.map(per_device, batches), self._device_sharding)

    scanned = jax.pmap(lambda state, batches: jax.lax.scan(train_step.update, state, batches),
                       axis_name=AXIS, devices=self.devices, donate_argnums=0)
    return lambda state, inputs: _first_metrics(scanned(state, sample_all(state, inputs)))

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
    """Shards host inputs ``[steps, batch, ...]`` along the batch axis: the global batch in
    one process, this process's slice of it (in process order) in several."""
    if jax.process_count() > 1:
      def global_array(x):
        shape = (x.shape[0], x.shape[1] * jax.process_count(), *x.shape[2:])
        return jax.make_array_from_process_local_data(self._batch_sharding, np.asarray(x), shape)
      return jax.tree.map(global_array, batches)
    if self.backend == 'pmap':  # sample_all lays the batch out per device
      return jax.device_put(batches, self._replicated)
    return jax.device_put(batches, self._batch_sharding)


def _first_metrics(outputs):
  state, metrics = outputs
  return state, jax.tree.map(lambda x: x[0], metrics)
