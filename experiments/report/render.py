"""Markdown of the reproduction report, rendered from the verdicts and the sweeps' results."""

import dataclasses

from experiments.core.tables import markdown_table
from experiments.report import benchmarks
from experiments.report.verdicts import Verdict, tally
from experiments.sweep.grid import cell_label, flag_value


def claims_table(verdicts: list[Verdict]) -> str:
  return (tally(verdicts) + '.\n\n'
          + markdown_table(['claim', 'verdict', 'the test that decides', 'the numbers'],
                           [[v.claim, v.marked, v.test, v.evidence] for v in verdicts]))


def verdicts_as_data(verdicts: list[Verdict]) -> list[dict]:
  """JSON-ready verdicts (``results/claims.json`` beside the report)."""
  return [dataclasses.asdict(v) for v in verdicts]


def sweep_command(benchmark, quick: bool, workdir: str) -> str:
  fields = benchmark.fields(quick)
  return (f'python -m experiments.sweep --config={benchmark.config_file} '
          + ' '.join(f'--grid={k}={",".join(flag_value(v) for v in values)}'
                     for k, values in benchmark.grid.items())
          + f' --seeds={benchmark.seeds} --workdir={workdir}/{benchmark.name} '
          + ' '.join(f'--config.{k}={flag_value(v)}' for k, v in fields.items()))


def _alignment(alignment: dict, plot: str) -> str:
  return (f'`python -m experiments.main --config=experiments/configs/gradient_alignment.py` '
          f'({alignment["wall_s"]:.0f} s), {alignment["table"]}\n![alignment]({plot})\n')


def _confirmation(result) -> str:
  cell = result.cells()[0]
  rows = [[str(s['seed']), f'{s["final"]["mi"]:.3f}', f'{s["truth"]["mi"]:.3f}',
           f'{100 * abs(s["final"]["mi"] - s["truth"]["mi"]) / s["truth"]["mi"]:.2f}%']
          for s in result.summaries(cell)]
  return (f'The best cell on seed 0, `{cell_label(cell)}`, on seeds 1..:\n\n'
          + markdown_table(['seed', 'MI estimate', 'truth', 'relative error'], rows) + '\n')


def report(verdicts, alignment, results, chosen, plots, *, quick: bool, jobs: int, workdir: str) -> str:
  total = sum(r.wall_s for r in results.values()) + (alignment['wall_s'] if alignment else 0.0)
  estimated = not all(r.wall_measured for r in results.values())
  head = ('# Results: N²CE against its neighbours\n\n'
          + ('**Quick mode: pipeline check only, the numbers mean nothing.**\n\n' if quick else '')
          + f'Regenerate everything with `python -m experiments.report`: its runs took '
          f'{"about " if estimated else ""}{total / 60:.1f} min on a 2-core CPU machine, {jobs} at a '
          'time; rerunning reuses finished runs. Each table is one sweep, mean ± std (ddof = 1) over '
          'seeds; "never" means the run did not stay within tolerance by its last step. The claims are '
          'judged by `experiments/report/claims.py` (the verdicts as data: `results/claims.json`): seed '
          '`i` shares data, noise and initialisation across cells, so comparisons are paired over seeds '
          'with a t interval of the mean difference; a claim is *inconclusive* when neither side reaches '
          'its criterion or the interval holds zero.\n\n## Claims\n\n' + claims_table(verdicts) + '\n\n')
  sections = {}
  if alignment:
    sections['a'] = [_alignment(alignment, plots['alignment'])]
  for name, result in results.items():
    if name in chosen:
      benchmark = chosen[name]
      sections.setdefault(benchmark.section, []).append(
          f'**{name}** ({"" if result.wall_measured else "about "}{result.wall_s:.0f} s to run, {jobs} '
          f'jobs at a time)\n\n`{sweep_command(benchmark, quick, workdir)}`\n\n{result.table}\n'
          + ''.join(f'![{name}]({path})\n' for key, path in plots.items() if key == name or
                    key.startswith(f'{name}/')))
    else:  # a confirmation of the MI section
      sections.setdefault('d', []).append(f'**{name}**\n\n{_confirmation(result)}')
  for key, path in plots.items():
    if key.startswith('section/'):  # the figure that decides the section's claims comes first
      sections.setdefault(key.removeprefix('section/'), []).insert(0, f'![{key}]({path})\n')
  body = ''.join(f'## {benchmarks.TITLES[k]}\n\n' + '\n'.join(sections[k]) + '\n' for k in sorted(sections))
  return head + body
