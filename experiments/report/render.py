"""Markdown of the reproduction report, rendered from the verdicts and the sweeps' results."""

import dataclasses

from experiments.core.tables import markdown_table
from experiments.report import benchmarks
from experiments.report.study import Study
from experiments.report.verdicts import KINDS, Verdict, tally
from experiments.sweep.grid import cell_label, flag_value


def claims_table(verdicts: list[Verdict]) -> str:
  """One table per kind of claim (the paper's, the project's hypotheses, the goals), each with
  its tally: a goal missed is not the paper refuted."""
  parts = []
  for kind, title in KINDS.items():
    chosen = [v for v in verdicts if v.kind == kind]
    if chosen:
      parts.append(f'### {title}\n\n{tally(chosen)}.\n\n'
                   + markdown_table(['claim', 'verdict', 'the test that decides', 'the numbers'],
                                    [[v.claim, v.marked, v.test, v.evidence] for v in chosen]))
  return '\n\n'.join(parts)


def verdicts_as_data(verdicts: list[Verdict]) -> list[dict]:
  """JSON-ready verdicts (``results/claims.json`` beside the report)."""
  return [dataclasses.asdict(v) for v in verdicts]


def sweep_command(study: Study, quick: bool, workdir: str) -> str:
  """The command line that runs ``study`` alone."""
  return (f'python -m experiments.sweep --config={study.config_file} '
          + ' '.join(f'--grid={k}={",".join(flag_value(v) for v in values)}'
                     for k, values in study.grid_for(quick).items())
          + f' --seeds={study.seeds_for(quick)} --workdir={workdir}/{study.name} '
          + ' '.join(f'--config.{k}={flag_value(v)}' for k, v in study.fields(quick).items()))


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


def report(verdicts, alignment, results, plots, *, quick: bool, jobs: int, workdir: str) -> str:
  """The page: the claims, then each section's sweeps (``results``: ``{study: SweepResult}`` and
  ``{MutualInformationStudies: SweepResult}`` for the confirmations), tables and plots."""
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
  for key, result in results.items():
    if isinstance(key, Study):
      name = key.name
      sections.setdefault(key.section, []).append(
          f'**{name}** ({"" if result.wall_measured else "about "}{result.wall_s:.0f} s to run, {jobs} '
          f'jobs at a time)\n\n`{sweep_command(key, quick, workdir)}`\n\n{result.table}\n'
          + ''.join(f'![{name}]({path})\n' for plot, path in plots.items() if plot == name or
                    plot.startswith(f'{name}/')))
    else:  # the confirmation of one (d, MI)'s best cell
      sections.setdefault('d', []).append(f'**d = {key.dim}: the best cell on seeds 1..**\n\n'
                                          f'{_confirmation(result)}')
  for key, path in plots.items():
    if key.startswith('section/'):  # the figure that decides the section's claims comes first
      sections.setdefault(key.removeprefix('section/'), []).insert(0, f'![{key}]({path})\n')
  body = ''.join(f'## {benchmarks.TITLES[k]}\n\n' + '\n'.join(sections[k]) + '\n' for k in sorted(sections))
  return head + body
