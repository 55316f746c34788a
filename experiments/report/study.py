"""A study: a sweep of an ordinary config, declared as data, and the one way reports run it.

A :class:`Study` names its config module, its grid (``{field: [values]}``), its seeds, the fields
it sets, its quick variant (the fields and grid ``--quick`` uses instead, as big_vision's
``runlocal``) and the studies it needs first (a teacher), each bound to the config field that
receives the needed study's run directory. Claims receive studies, never names: a report's results
are ``{study: SweepResult}``, and a study is compared by identity.
"""

import dataclasses
import importlib
import os

from experiments.core.checks import set_fields
from experiments.sweep import Subprocesses, SweepResult, run_sweep

SEEDS = 5  # the stochastic studies' seeds: enough for a paired t interval


@dataclasses.dataclass(frozen=True, eq=False)
class Study:
  name: str     # its sweep directory under the report's workdir
  config: str   # module of experiments/configs
  grid: dict    # {field: [values]}
  seeds: int = SEEDS
  overrides: dict = dataclasses.field(default_factory=dict)
  quick: dict = dataclasses.field(default_factory=dict)  # --quick: fields applied after overrides
  quick_grid: dict | None = None  # --quick: the grid (default: grid)
  quick_seeds: int = 2
  first_seed: int = 0
  needs: dict = dataclasses.field(default_factory=dict)  # {field: Study of one run}: its run directory
  section: str = ''  # where its table goes in the report

  @property
  def config_file(self) -> str:
    return f'experiments/configs/{self.config}.py'

  def fields(self, quick: bool) -> dict:
    return {**self.overrides, **(self.quick if quick else {}), 'seed': self.first_seed}

  def grid_for(self, quick: bool) -> dict:
    return self.grid if not quick or self.quick_grid is None else self.quick_grid

  def seeds_for(self, quick: bool) -> int:
    return min(self.seeds, self.quick_seeds) if quick else self.seeds

  def run(self, quick: bool, workdir: str, jobs: int, done: dict | None = None) -> SweepResult:
    """Runs (or reuses) every cell x seed in ``workdir/<name>``; ``done`` holds the results of
    the studies it ``needs`` (each one run: its directory fills the field)."""
    fields = self.fields(quick)
    for field, needed in self.needs.items():
      if done is None or needed not in done:
        raise ValueError(f'study {self.name} needs study {needed.name} run first')
      fields[field] = os.path.abspath(done[needed].runs[0].run_dir)
    config = set_fields(importlib.import_module(f'experiments.configs.{self.config}').get_config(), fields)
    return run_sweep(config, self.grid_for(quick), seeds=self.seeds_for(quick),
                     workdir=os.path.join(workdir, self.name),
                     executor=Subprocesses(self.config_file, fields, jobs))

  def __post_init__(self):
    if 'seed' in self.overrides or 'seed' in self.quick:
      raise ValueError(f'study {self.name}: give the first seed as first_seed, not as a seed override '
                       '(the sweep sets each run\'s seed)')

  @classmethod
  def of(cls, name: str, config: str, grid: dict, seeds: int, fields: dict) -> 'Study':
    """A study of ``fields``, whose ``seed`` (a user's ``--override=seed=N``) becomes the first seed."""
    fields = dict(fields)
    return cls(name, config, grid, seeds, fields, first_seed=fields.pop('seed', 0))

  def __repr__(self) -> str:
    return f'Study({self.name})'


def run_all(studies, quick: bool, workdir: str, jobs: int) -> dict:
  """``{study: SweepResult}`` for ``studies`` and what they need, each needed study first."""
  done = {}

  def visit(study):
    if study not in done:
      for needed in study.needs.values():
        visit(needed)
      done[study] = study.run(quick, workdir, jobs, done)
  for study in studies:
    visit(study)
  return done


def restrict(study: Study, cell: dict, first_seed: int, seeds: int, name: str) -> Study:
  """``study`` narrowed to one ``cell`` on other seeds (a confirmation of a cell picked on one seed)."""
  return dataclasses.replace(study, name=name, grid={k: [v] for k, v in cell.items()}, quick_grid=None,
                             seeds=seeds, quick_seeds=seeds, first_seed=first_seed)


__all__ = ['SEEDS', 'Study', 'SweepResult', 'restrict', 'run_all']
