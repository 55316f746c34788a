"""Orbax checkpoints of the train state: save every N steps, restore the latest.

Restores always go through an abstract target (shapes, dtypes and shardings of a freshly
built state), so a checkpoint written on one device count restores on another.
"""

import os

import orbax.checkpoint as ocp


def make_manager(directory: str, max_to_keep: int = 3) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
  return ocp.CheckpointManager(os.path.abspath(directory), options=options)


def save(manager: ocp.CheckpointManager, step: int, state) -> None:
  """Starts an async save of ``state`` at ``step`` (no-op if that step is already saved)."""
  if manager.latest_step() != step:
    manager.save(step, args=ocp.args.StandardSave(state))


def restore_latest(manager: ocp.CheckpointManager, abstract):
  """The latest checkpoint restored into ``abstract`` (a tree of ``jax.ShapeDtypeStruct`` with
  shardings, e.g. ``DataParallel.abstract_state``), or None if there is none."""
  step = manager.latest_step()
  if step is None:
    return None
  return manager.restore(step, args=ocp.args.StandardRestore(abstract))
