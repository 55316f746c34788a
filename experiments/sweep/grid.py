"""A sweep's grid as data: ``{field: [values]}``, its cells (one dict of field values each) and
the config of each cell x seed.

A cell's values travel as Python values from the grid to every table and claim; the names
of run directories are made from them for people to read and are never parsed back.
"""

import itertools

from experiments.core.checks import ConfigError, get_field, parse_value, set_fields

Grid = dict[str, list]


def cells(grid: Grid) -> list[dict]:
  """The product of the grid's values, in grid order: ``[{field: value, ...}, ...]``."""
  fields = list(grid)
  return [dict(zip(fields, values)) for values in itertools.product(*grid.values())]


def check_grid(config, grid: Grid) -> None:
  """Every field exists in ``config`` and every value has the type the config holds there."""
  for field, values in grid.items():
    try:
      current = get_field(config, field)
    except (KeyError, AttributeError):
      raise ConfigError(f'the sweep grid names config.{field}, which this config does not have') from None
    if not values:
      raise ConfigError(f'the sweep grid gives config.{field} no values')
    for value in values:
      if not _same_kind(value, current):
        raise ConfigError(f'the sweep grid gives config.{field}={value!r}; it holds '
                          f'{type(current).__name__} values')


def _same_kind(value, current) -> bool:
  if isinstance(current, bool) or isinstance(value, bool):
    return isinstance(value, bool) and isinstance(current, bool)
  if isinstance(current, float):
    return isinstance(value, (int, float))
  if isinstance(current, (tuple, list)):
    return isinstance(value, (tuple, list))
  return isinstance(value, type(current))


def parse_grid_flags(config, flags: list[str]) -> Grid:
  """``['objective.magnitude=1,10']`` (command-line text) -> ``{'objective.magnitude': [1.0, 10.0]}``,
  each value converted to the type the config holds; unknown fields fail naming the field."""
  grid = {}
  for item in flags:
    field, sep, values = item.partition('=')
    if not sep or not values:
      raise ConfigError(f'--grid={item!r} is invalid; expected FIELD=V1,V2,...')
    grid[field] = [parse_value(config, field, v) for v in values.split(',')]
  return grid


def cell_config(config, cell: dict, seed: int):
  """``config`` with the cell's values and ``seed`` set: one run's config."""
  return set_fields(config.copy_and_resolve_references(), {**cell, 'seed': seed})


def cell_dir(cell: dict) -> str:
  """A readable directory name for a cell, ``magnitude=100,name=noisier_nce`` (never parsed)."""
  return ','.join(_named(k, v) for k, v in cell.items()) or 'base'


def cell_label(cell: dict, leave_out=()) -> str:
  """A legend label: the cell's values by their last field component, or the whole field where
  two share it (``model.name=mlp, objective.name=nce``)."""
  last = [field.split('.')[-1] for field in cell]
  return ', '.join(_named(k, v) if last.count(k.split('.')[-1]) == 1 else f'{k}={v}'
                   for k, v in cell.items() if k not in leave_out)


def _named(field: str, value) -> str:
  name = field.split('.')[-1]
  return f'{name.split(".")[-1]}={value:g}' if isinstance(value, float) else f'{name}={value}'


def flag_value(value) -> str:
  """A value as ``--config.FIELD=`` text that :func:`parse_value` reads back unchanged."""
  if isinstance(value, str):
    return value
  if isinstance(value, (tuple, list)):
    return '(' + ','.join(repr(v) for v in value) + (',)' if len(value) == 1 else ')')
  return repr(value)
