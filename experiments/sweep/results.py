"""A finished sweep: every run's cell, seed and summary, the aggregate table and the plots."""

import csv
import dataclasses
import os

import numpy as np

from experiments.core import plotting
from experiments.core.metrics import read_metrics
from experiments.core.tables import markdown_table, mean_std
from experiments.sweep.grid import cell_label


@dataclasses.dataclass
class Run:
  cell: dict  # {field: value}, straight from the grid
  seed: int
  run_dir: str
  summary: dict  # summary.json once the run has finished
  config: object = None  # the run's ConfigDict


@dataclasses.dataclass
class SweepResult:
  """The runs of a sweep in grid order (seeds ascending within a cell) and its markdown table."""
  runs: list[Run]
  table: str = ''
  wall_s: float = 0.0  # seconds spent running this sweep's runs, summed over invocations
  wall_measured: bool = True  # False: estimated from the runs' own clocks

  def cells(self, **fixed) -> list[dict]:
    """The distinct cells, in grid order, whose fields (by last component) hold ``fixed``."""
    found = []
    for run in self.runs:
      if run.cell not in found and _matches(run.cell, fixed):
        found.append(run.cell)
    return found

  def summaries(self, cell: dict) -> list[dict]:
    """The summaries of ``cell``'s seeds, ascending: index ``i`` is the same seed in every cell."""
    return [r.summary for r in self.runs if r.cell == cell]

  def by(self, name: str, **fixed) -> dict:
    """``{value: summaries}`` of the field ``name`` (its last component: ``magnitude``) over the
    cells that hold ``fixed`` (``name='nce'``); each value must pick one cell."""
    out = {}
    for cell in self.cells(**fixed):
      value = _value(cell, name)
      if value in out:
        raise KeyError(f'{name}={value!r} picks several cells given {fixed}')
      out[value] = self.summaries(cell)
    return out

  def subset(self, cell: dict, first_seed: int) -> 'SweepResult':
    """The runs of ``cell`` from seed ``first_seed`` on, as a sweep of their own."""
    return SweepResult([r for r in self.runs if r.cell == cell and r.seed >= first_seed])

  def cell(self, **fixed) -> list[dict]:
    """The summaries of the one cell that holds ``fixed``."""
    found = self.cells(**fixed)
    if len(found) != 1:
      raise KeyError(f'{len(found)} cells hold {fixed}')
    return self.summaries(found[0])


def _field(cell: dict, name: str) -> str | None:
  """The field of ``cell`` whose last component is ``name`` (None if none); two such raise."""
  fields = [field for field in cell if field.split('.')[-1] == name]
  if len(fields) > 1:
    raise ValueError(f'{name!r} names {", ".join(fields)} in this sweep: it cannot select')
  return fields[0] if fields else None


def _value(cell: dict, name: str):
  field = _field(cell, name)
  if field is None:
    raise KeyError(f'no field of {cell} ends in {name!r}')
  return cell[field]


def _matches(cell: dict, fixed: dict) -> bool:
  fields = {name: _field(cell, name) for name in fixed}
  return all(field is not None and cell[field] == fixed[name] for name, field in fields.items())


def aggregate(runs: list[Run], workdir: str) -> SweepResult:
  """Writes ``sweep.csv`` (a row per run), ``sweep.md`` (mean ± std over seeds per cell) and the
  plots: the first table metric against steps, and the final metrics against ``M`` when swept."""
  result = SweepResult(runs)
  first = runs[0].summary
  metrics, has_steps = first['table_metrics'], 'steps_to_tolerance' in first
  fields = list(runs[0].cell)
  with open(os.path.join(workdir, 'sweep.csv'), 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(fields + ['seed'] + metrics + (['steps_to_tolerance'] if has_steps else [])
                    + ['wall_time_s'])
    for run in runs:
      s = run.summary
      writer.writerow([run.cell[k] for k in fields] + [run.seed] + [s['final'][m] for m in metrics]
                      + ([s['steps_to_tolerance']] if has_steps else []) + [f'{s["wall_time_s"]:.2f}'])

  short = [f.split('.')[-1] for f in fields]
  header = ([f if short.count(s) > 1 else s for f, s in zip(fields, short)] + metrics
            + (['steps to tolerance'] if has_steps else []) + ['wall s'])
  truth = first['truth']
  rows = [['truth'] + [''] * (len(fields) - 1) + [f'{truth[m]:.4g}' if m in truth else '' for m in metrics]
          + ([''] if has_steps else []) + ['']] if fields else []
  for cell in result.cells():
    group = result.summaries(cell)
    rows.append([str(v) for v in cell.values()] + [mean_std([s['final'][m] for s in group]) for m in metrics]
                + ([mean_std([s['steps_to_tolerance'] for s in group])] if has_steps else [])
                + [f'{np.mean([s["wall_time_s"] for s in group]):.1f}'])
  seeds = len(result.summaries(runs[0].cell))
  note = f'{first["task"]}: {len(result.cells())} cells x {seeds} seeds, mean ± std (ddof = 1) over seeds'
  if has_steps:
    holds = ' and '.join(f'{metric} < {bound:g}' for metric, bound in first['tolerance'].items())
    note += (f'; steps to tolerance: the first eval step after which {holds} holds, "never" if not by '
             'the last step')
  result.table = f'{note}\n\n{markdown_table(header, rows)}\n'
  if first.get('likelihood', {}).get('estimators'):
    from experiments.tasks.common.likelihood import likelihood_table
    reports = {', '.join(map(str, c.values())): [s['likelihood'] for s in result.summaries(c)]
               for c in result.cells()}
    result.table += '\n' + likelihood_table(reports, label=', '.join(header[:len(fields)]))
  with open(os.path.join(workdir, 'sweep.md'), 'w') as f:
    f.write(result.table)
  plot_curves(result, metrics[0], os.path.join(workdir, 'sweep_curves.png'))
  if 'objective.magnitude' in fields:
    plot_against_magnitude(result, os.path.join(workdir, 'sweep_vs_magnitude.png'))
  return result


def plot_curves(result: SweepResult, metric: str, path: str) -> str:
  """``metric`` against steps, a line per cell: mean over seeds with a ±1 std band."""
  figure, (ax,) = plotting.panels(1, width=6.5, height=4.2)
  for cell in result.cells():
    curves, steps = [], None
    for run in (r for r in result.runs if r.cell == cell):
      records = [r for r in read_metrics(run.run_dir) if f'eval_{metric}' in r]
      curves.append([r[f'eval_{metric}'] for r in records])
      steps = [r['step'] for r in records]
    plotting.seed_band(ax, steps, curves, cell_label(cell) or 'run')
  truth = result.runs[0].summary['truth'].get(metric)
  if truth is not None:
    plotting.reference(ax, truth, 'truth')
  plotting.label(ax, 'step', metric.replace('_', ' '))
  return plotting.save(figure, path, legend_axes=[ax] if len(result.cells()) <= 12 else [])


# Lines a metric is judged against, from a summary's ``truth`` or ``references``: (key, label).
REFERENCES = {'param_error': [('cramer_rao_param_error', 'Cramér–Rao bound (trace / n)'),
                              ('mle_param_error', 'MLE of the same samples')],
              'kl': [('kl', 'truth')], 'mi': [('mi', 'truth')]}


def _known(summary: dict) -> dict:
  """A run's closed-form truth and its references."""
  return {**summary['truth'], **summary['references']}


def plot_against_magnitude(result: SweepResult, path: str) -> str:
  """Each final table metric (and steps to tolerance) against ``M``, a line per other cell
  value, error bars ±1 std over seeds; closed-form references as horizontal lines."""
  first = result.runs[0].summary
  panels = list(first['table_metrics']) + (['steps_to_tolerance'] if 'steps_to_tolerance' in first else [])
  figure, axes = plotting.panels(len(panels))
  lines = {}
  for cell in result.cells():
    lines.setdefault(cell_label(cell, leave_out=('objective.magnitude',)) or 'N²CE', []).append(cell)
  for ax, metric in zip(axes, panels):
    for name, group in lines.items():
      group = sorted(group, key=lambda c: c['objective.magnitude'])
      values = [[s['steps_to_tolerance'] if metric == 'steps_to_tolerance' else s['final'][metric]
                 for s in result.summaries(c)] for c in group]
      plotting.seed_points(ax, [c['objective.magnitude'] for c in group], values, name)
    for key, label in REFERENCES.get(metric, []):
      if key in _known(first):
        plotting.reference(ax, float(np.mean([_known(r.summary)[key] for r in result.runs])), label,
                           style=':' if key.startswith('mle') else '--')
    plotting.label(ax, 'M (log scale)', metric.replace('_', ' '), log_x=True,
                   log_y=metric in ('param_error', 'param_error_mle'))
  return plotting.save(figure, path)
