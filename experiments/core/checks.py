"""Config validation: every bad field fails before anything compiles or is written.

The fields every task shares are checked here (:func:`check_common`); each task module checks
its own ``data``/``model`` fields with :func:`one_of` and :func:`number`."""

import math

from nnce_jax.models import RATIO_MODELS
from nnce_jax.objectives import OBJECTIVES
from nnce_jax.parallel import BACKENDS
from nnce_jax.schedules import SCHEDULES

OPTIMIZERS = ('adam', 'sgd')
LEARNING_RATE_SCHEDULES = ('constant', 'cosine')
MAX_MAGNITUDE = 1e12
ON_NONFINITE = ('stop', 'skip')


class ConfigError(ValueError):
  """A config field holds a value outside its allowed set."""


def one_of(config, field, allowed):
  value = get_field(config, field)
  if value not in allowed:
    raise ConfigError(f'config.{field}={value!r} is invalid; allowed values: {", ".join(allowed)}')


def number(config, field, *, low=None, high=None, integer=False, low_open=False, high_open=False):
  value = get_field(config, field)
  kind = 'an integer' if integer else 'a number'
  ok = isinstance(value, int) if integer else isinstance(value, (int, float))
  ok = ok and not isinstance(value, bool) and (integer or math.isfinite(value))
  if ok and low is not None:
    ok = value > low if low_open else value >= low
  if ok and high is not None:
    ok = value < high if high_open else value <= high
  if not ok:
    lo = '' if low is None else f'{"(" if low_open else "["}{low:g}'
    hi = '' if high is None else f'{high:g}{")" if high_open else "]"}'
    span = f' in {lo or "(-inf"}, {hi or "inf)"}' if lo or hi else ''
    raise ConfigError(f'config.{field}={value!r} is invalid; it must be {kind}{span}')


def widths(config, field):
  """A layer-width tuple: one or more positive integers."""
  value = get_field(config, field)
  if not value or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in value):
    raise ConfigError(f'config.{field}={value!r} is invalid; it must be positive integers')


def boolean(config, field):
  value = get_field(config, field)
  if not isinstance(value, bool):
    raise ConfigError(f'config.{field}={value!r} is invalid; allowed values: True, False')


def get_field(config, field):
  value = config
  for part in field.split('.'):
    value = value[part]
  return value


def set_field(config, field, value) -> None:
  *path, name = field.split('.')
  (get_field(config, '.'.join(path)) if path else config)[name] = value


def set_fields(config, fields: dict):
  """Sets every ``{field: value}`` of ``fields`` in ``config`` (a list where the config holds a
  tuple becomes a tuple); returns ``config``."""
  for field, value in fields.items():
    set_field(config, field, tuple(value) if isinstance(get_field(config, field), tuple) else value)
  return config


def parse_overrides(config, items: list[str]) -> dict:
  """``['train.num_steps=1000']`` (or ``--config.train.num_steps=1000``) -> ``{'train.num_steps':
  1000}``, each value typed as ``config`` holds it (:func:`parse_value`)."""
  fields = {}
  for item in items:
    field, sep, text = item.removeprefix('--config.').partition('=')
    if not sep:
      raise ConfigError(f'{item!r} is invalid; expected FIELD=VALUE')
    fields[field] = parse_value(config, field, text)
  return fields


def parse_value(config, field: str, text: str):
  """``text`` (from a command line) as the type ``config.<field>`` holds: ``'1e3'`` for a
  float field is ``1000.0``, ``'(16,16)'`` for a tuple field ``(16, 16)``. Unknown fields and
  unconvertible text raise :class:`ConfigError` naming the field."""
  import ast
  try:
    current = get_field(config, field)
  except (KeyError, AttributeError):
    raise ConfigError(f'config.{field} does not exist in this config') from None
  kind = type(current)
  try:
    if kind is str:
      return text
    if kind is bool:
      if text.lower() not in ('true', 'false', '1', '0'):
        raise ValueError(text)
      return text.lower() in ('true', '1')
    value = ast.literal_eval(text)
    if kind is int and value != int(value):  # '1.5' for an integer field
      raise ValueError(text)
    return tuple(value) if kind is tuple else kind(value)
  except (ValueError, TypeError, SyntaxError):
    raise ConfigError(f'config.{field}={text!r} is invalid; it holds {kind.__name__} values') from None


def check_common(config, num_devices: int, num_processes: int = 1) -> None:
  """Raises :class:`ConfigError` naming the first invalid field of the shared sections the config
  has (``experiments/configs/common.py``: engine, optimizer, ratio, likelihood).

  ``num_devices`` counts the devices of all processes (``jax.device_count()``)."""
  number(config, 'seed', low=0, integer=True)
  if 'objective' in config:
    _check_ratio(config)
  if 'optimizer' in config:
    one_of(config, 'optimizer.name', OPTIMIZERS)
    number(config, 'optimizer.learning_rate', low=0, low_open=True)
    one_of(config, 'optimizer.schedule', LEARNING_RATE_SCHEDULES)
    number(config, 'optimizer.grad_clip_norm', low=0)
  if 'train' in config:
    _check_train(config, num_devices, num_processes)
  if 'num_train' in config.data:
    number(config, 'data.num_train', low=1, integer=True)
  if 'num_test' in config.data:
    number(config, 'data.num_test', low=1, integer=True)
  if 'likelihood' in config:
    _check_likelihood(config)


def _check_ratio(config):
  one_of(config, 'objective.name', OBJECTIVES)
  # The losses are tested finite up to M = 1e12 in float32; beyond, log M swamps the logits.
  number(config, 'objective.magnitude', low=0, low_open=True, high=MAX_MAGNITUDE)
  one_of(config, 'objective.magnitude_schedule', SCHEDULES)
  number(config, 'objective.final_magnitude', low=0, low_open=True, high=MAX_MAGNITUDE)
  number(config, 'objective.log_magnitude', low=0)
  if config.objective.log_magnitude and config.objective.magnitude_schedule != 'constant':
    raise ConfigError(f'config.objective.log_magnitude={config.objective.log_magnitude!r} is invalid with '
                      f'objective.magnitude_schedule={config.objective.magnitude_schedule!r}; allowed: 0 '
                      '(a schedule of M), or a constant log M with the constant schedule')
  number(config, 'objective.noise_ratio', low=1, integer=True)
  number(config, 'objective.num_candidates', low=2, integer=True)
  number(config, 'objective.num_stages', low=1, integer=True)
  number(config, 'objective.l2_penalty', low=0)

  one_of(config, 'model.name', RATIO_MODELS)
  if config.model.name == 'mlp':
    widths(config, 'model.hidden')
  if config.model.name == 'resmlp':
    number(config, 'model.width', low=1, integer=True)
    number(config, 'model.num_blocks', low=1, integer=True)


def _check_likelihood(config):
  for field in ('num_samples', 'num_warmup'):
    number(config, f'likelihood.{field}', low=0, integer=True)
  if config.likelihood.num_samples:
    number(config, 'likelihood.num_chains', low=1, high=config.data.num_test, integer=True)
    number(config, 'likelihood.thin', low=1, integer=True)


def _check_train(config, num_devices, num_processes):
  one_of(config, 'parallel.backend', BACKENDS)
  number(config, 'parallel.num_devices', low=0, high=num_devices, integer=True)
  if num_processes > 1 and (config.parallel.backend != 'shard_map' or config.parallel.num_devices):
    raise ConfigError(f'config.parallel.backend={config.parallel.backend!r}, parallel.num_devices='
                      f'{config.parallel.num_devices} is invalid with {num_processes} processes; allowed: '
                      "backend 'shard_map' over all devices (num_devices 0)")
  devices = config.parallel.num_devices or num_devices
  number(config, 'train.batch_size', low=1, integer=True)
  if config.train.batch_size % devices:
    raise ConfigError(f'config.train.batch_size={config.train.batch_size} is invalid; it must be '
                      f'divisible by the device count, {devices}')
  number(config, 'train.steps_per_dispatch', low=1, integer=True)
  spd = config.train.steps_per_dispatch
  for field in ('num_steps', 'log_every', 'eval_every', 'checkpoint_every'):
    number(config, f'train.{field}', low=1 if field == 'num_steps' else 0, integer=True)
    if get_field(config, f'train.{field}') % spd:
      raise ConfigError(f'config.train.{field}={get_field(config, "train." + field)} is invalid; it '
                        f'must be a multiple of train.steps_per_dispatch={spd}')
  number(config, 'train.sync_every', low=1, integer=True)
  number(config, 'train.max_checkpoints', low=1, integer=True)
  number(config, 'train.ema_decay', low=0, high=1, high_open=True)
  one_of(config, 'train.on_nonfinite', ON_NONFINITE)

