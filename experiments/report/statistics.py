"""Paired comparisons over seeds: the t interval of a mean difference, and what it decides."""

import dataclasses
import math

import numpy as np
from scipy import stats


@dataclasses.dataclass(frozen=True)
class Interval:
  """Mean of ``a - b`` over paired seeds with its two-sided t confidence interval (ddof = 1).

  When every seed gives the same value (``agree``) the t interval has zero width and says
  nothing about seed noise; the sign is then decided by the exact sign test, whose two-sided
  p-value for n seeds of one sign is ``2 / 2^n`` (0.0625 for 5 seeds: never below 0.05)."""
  mean: float
  low: float
  high: float
  count: int
  level: float
  agree: bool = False

  @property
  def sign_test_p(self) -> float:
    """The two-sided sign test's p-value when every seed agrees (1 when they all give 0)."""
    return 1.0 if self.mean == 0 else min(1.0, 2.0 * 0.5 ** self.count)

  @property
  def sign(self) -> int:
    """+1 when ``a > b`` at this level, -1 when ``a < b``, 0 when the interval holds 0 (or n < 2);
    for seeds that all agree, the sign test's verdict at the same level."""
    if self.agree:
      return 0 if self.sign_test_p > 1 - self.level else (1 if self.mean > 0 else -1)
    return 1 if self.low > 0 else -1 if self.high < 0 else 0

  def __str__(self) -> str:
    if math.isnan(self.low):
      return f'{self.mean:.4g} (n = {self.count}: no interval)'
    if self.agree:
      if self.mean == 0:
        return f'0: all {self.count} seeds give 0'
      return f'{self.mean:.4g}: all {self.count} seeds agree (sign test p = {self.sign_test_p:.3g})'
    return f'{self.mean:.4g} [{self.low:.4g}, {self.high:.4g}] ({100 * self.level:.3g}%, n = {self.count})'


def paired(a, b, level: float = 0.95) -> Interval:
  """``a - b`` seed by seed (``a[i]`` and ``b[i]`` share seed ``i``: data, noise and init)."""
  a, b = np.asarray(a, float), np.asarray(b, float)
  if a.shape != b.shape:
    raise ValueError(f'paired samples need the same seeds; got {a.shape} and {b.shape}')
  return interval(a - b, level)


def interval(values, level: float = 0.95) -> Interval:
  """The t interval of the mean of ``values``."""
  values = np.asarray(values, float)
  n, mean = len(values), float(np.mean(values))
  if n < 2:
    return Interval(mean, math.nan, math.nan, n, level)
  half = float(stats.t.ppf(0.5 + level / 2, n - 1) * np.std(values, ddof=1) / math.sqrt(n))
  return Interval(mean, mean - half, mean + half, n, level, agree=bool(np.all(values == values[0])))


def bonferroni(level: float, comparisons: int) -> float:
  """The per-comparison level that keeps the family-wise level over ``comparisons``."""
  return 1 - (1 - level) / max(comparisons, 1)


def paired_p_value(a, b) -> float:
  """Two-sided paired t test of ``mean(a - b) = 0`` (NaN for fewer than two pairs)."""
  a, b = np.asarray(a, float), np.asarray(b, float)
  if len(a) < 2:
    return math.nan
  return float(stats.ttest_rel(a, b).pvalue)
