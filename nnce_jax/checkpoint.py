"""Orbax checkpoints of the train state: save every N steps, restore the latest.

Restores always go through an abstract target (shapes, dtypes and shardings of a freshly
built state), so a checkpoint written on one device count restores on another. A checkpoint
that cannot be read (truncated or corrupt files, non-finite values) is moved aside to
``<directory>.unreadable/<step>.<time>`` with a warning, and the next older one is tried.
"""

import logging
import os
import time

import jax
import numpy as np
import orbax.checkpoint as ocp


def make_manager(directory: str, max_to_keep: int = 3) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
  return ocp.CheckpointManager(os.path.abspath(directory), options=options)


def save(manager: ocp.CheckpointManager, step: int, state) -> None:
  """Starts an async save of ``state`` at ``step`` (no-op if that step is already saved)."""
  if manager.latest_step() != step:
    manager.save(step, args=ocp.args.StandardSave(state))


def restore_latest(manager: ocp.CheckpointManager, abstract):
  """The latest readable checkpoint restored into ``abstract`` (a tree of
  ``jax.ShapeDtypeStruct`` with shardings, e.g. ``DataParallel.abstract_state``), or None if
  there is none."""
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      state = manager.restore(step, args=ocp.args.StandardRestore(abstract))
      if not all(np.all(np.isfinite(x)) for x in jax.tree.leaves(jax.device_get(state))
                 if np.issubdtype(np.asarray(x).dtype, np.floating)):
        raise ValueError('non-finite values')
      return state
    except Exception as error:  # noqa: BLE001  (any failure to read: try an older one)
      logging.warning('checkpoint step %d in %s is unreadable (%s: %.200s); moving it aside and '
                      'falling back to an older one', step, manager.directory, type(error).__name__, error)
      _set_aside(manager, step)
  return None


def _set_aside(manager: ocp.CheckpointManager, step: int) -> None:
  """Moves step ``step`` out of the manager's directory (kept for inspection), so that the
  resumed run can save that step again."""
  directory = str(manager.directory)
  if ocp.multihost.is_primary_host(0):
    os.makedirs(f'{directory}.unreadable', exist_ok=True)
    aside = os.path.join(f'{directory}.unreadable', f'{step}.{time.time_ns()}')
    os.replace(os.path.join(directory, str(step)), aside)
  ocp.multihost.sync_global_processes(f'nnce_set_aside_{step}')
  manager.reload()
