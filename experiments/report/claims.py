"""The paper's and the issues' claims, each judged as data from the benchmark sweeps."""

import math


def mutual_information_benchmarks(chosen: dict, d: int) -> list:
  """The MI benchmarks at dimension ``d`` (by their config fields, not their names)."""
  return [b for b in chosen.values() if b.config == 'mutual_information' and b.overrides['data.dim'] == d]


def best_mutual_information_cell(results: dict, candidates: list) -> tuple[str, dict]:
  """``(benchmark name, cell)`` whose seed-0 MI estimate is closest to the truth at one ``d``."""
  best, error = None, math.inf
  for benchmark in candidates:
    result = results[benchmark.name]
    for cell in result.cells():
      summary = result.summaries(cell)[0]
      e = abs(summary['final']['mi'] - summary['truth']['mi'])
      if e < error:
        best, error = (benchmark.name, cell), e
  return best
