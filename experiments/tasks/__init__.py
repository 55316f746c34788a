"""The tasks: one module each, named by ``config.task``; nothing else registers them.

A task module defines ``check(config)`` (raising :class:`~experiments.core.checks.ConfigError`
for its own bad fields) and one of
- ``build(config) -> Task`` (:class:`experiments.core.task.Task`): a model and loss that
  ``experiments.run`` trains, checkpoints and evaluates;
- ``evaluate(config, workdir) -> dict``: a computation without training (it writes its own
  files and returns its results with a markdown ``table``).
What tasks share lives in :mod:`experiments.tasks.common`; a task imports no other task.
"""

import importlib
import pkgutil
from types import ModuleType

from experiments.core.checks import ConfigError


def names() -> list[str]:
  """Every task: the modules of this package that define ``build`` or ``evaluate``."""
  return sorted(info.name for info in pkgutil.iter_modules(__path__) if _is_task(_import(info.name)))


def get(name: str) -> ModuleType:
  """The task module ``name``; an unknown name raises :class:`ConfigError` listing the tasks."""
  module = None
  if isinstance(name, str) and name.isidentifier():
    try:
      module = _import(name)
    except ModuleNotFoundError as error:
      if error.name != f'{__name__}.{name}':
        raise  # the task exists but one of its imports does not
  if module is None or not _is_task(module):
    raise ConfigError(f'config.task={name!r} is invalid; allowed values: {", ".join(names())}')
  return module


def is_trained(module: ModuleType) -> bool:
  return hasattr(module, 'build')


def _import(name: str) -> ModuleType:
  return importlib.import_module(f'{__name__}.{name}')


def _is_task(module: ModuleType) -> bool:
  return hasattr(module, 'check') and (hasattr(module, 'build') or hasattr(module, 'evaluate'))
