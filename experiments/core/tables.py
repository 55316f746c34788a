"""Markdown helpers every results table uses."""

import re

import numpy as np


def sample_std(values) -> float:
  """The sample standard deviation (ddof = 1); 0 for a single value."""
  return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def mean_std(values) -> str:
  """``mean ± std`` of the non-None values (None: a run that never got within tolerance), the
  sample std (ddof = 1); ``never`` if all are None, and the count when only some are."""
  reached = [v for v in values if v is not None]
  if not reached:
    return 'never'
  text = f'{np.mean(reached):.4g} ± {sample_std(reached):.2g}' if len(reached) > 1 else f'{reached[0]:.4g}'
  return text if len(reached) == len(values) else f'{text} ({len(reached)} of {len(values)}; the rest never)'


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
  return '\n'.join('| ' + ' | '.join(r) + ' |' for r in [header, ['---'] * len(header)] + rows)


def sections(page: str) -> dict[str, str]:
  """``{title: section}`` of the ``## title`` sections of a markdown page, each from its heading's
  newline to the next one's: a page rendered in parts keeps the parts it did not rerun."""
  parts = re.split(r'(?=\n## )', page)[1:]
  return {part[4:].split('\n', 1)[0]: part for part in parts}
