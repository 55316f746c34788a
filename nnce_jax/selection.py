"""Held-out selection: keep the parameters with the best held-out score, stop when it stalls.

Every objective of :mod:`nnce_jax.objectives` is a proper scoring rule for the ratio: its
expectation under data and noise is smallest at ``s = log q*/q0``. Evaluated on held-out
data and a fixed noise sample, it is an unbiased score of the current parameters that the
training never saw, so the step with the smallest held-out value is the one to keep, and a
score that has not improved for ``patience`` evaluations says that more steps only fit the
training sample. The engine (:func:`nnce_jax.train.train`) calls :meth:`update` after each
evaluation through its ``on_eval`` hook.
"""

from typing import Any

import numpy as np


class HeldOutSelection:
  """Tracks the best (smallest) ``record[metric]`` over evaluations and its parameters.

  ``patience`` > 0 asks to stop after that many evaluations without an improvement larger
  than ``min_delta``; 0 never stops (selection only). A non-finite score never wins.
  """

  def __init__(self, metric: str, patience: int = 0, min_delta: float = 0.0):
    if patience < 0 or min_delta < 0:
      raise ValueError(f'patience={patience} and min_delta={min_delta} must be >= 0')
    self.metric, self.patience, self.min_delta = metric, patience, min_delta
    self.best, self.best_step, self.best_params = np.inf, None, None
    self._stale = 0

  def update(self, step: int, record: dict, params: Any) -> bool:
    """Takes one evaluation (``params`` on the host); returns ``True`` to stop training."""
    if self.metric not in record:
      raise KeyError(f'the evaluation gives {", ".join(sorted(record))}, '
                     f'not the selection metric {self.metric!r}')
    score = float(record[self.metric])
    if np.isfinite(score) and score < self.best - self.min_delta:
      self.best, self.best_step, self.best_params, self._stale = score, step, params, 0
    else:
      self._stale += 1
    return self.patience > 0 and self._stale >= self.patience
