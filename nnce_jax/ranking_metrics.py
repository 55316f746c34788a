"""How well a score ranks positives (anomalies) above negatives: average precision, the
trapezoidal area under the precision-recall curve, and AUROC.

All treat tied scores together, as scikit-learn does, so a constant score gets the
prevalence (average precision) and 0.5 (AUROC), what a random ranking scores on average.
"""

import numpy as np


def _checked(scores, positive):
  scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
  if scores.shape != positive.shape or scores.ndim != 1:
    raise ValueError(f'scores {scores.shape} and labels {positive.shape} must be equal-length vectors')
  if not positive.any() or positive.all():
    raise ValueError('ranking metrics need at least one positive and one negative')
  if not np.all(np.isfinite(scores)):
    raise ValueError(f'{int(np.sum(~np.isfinite(scores)))} scores are not finite')
  return scores, positive


def average_precision(scores, positive) -> float:
  """Area under the precision-recall curve as average precision: the mean, over the
  positives, of the precision among all items scored at least as high."""
  scores, positive = _checked(scores, positive)
  order = np.argsort(-scores, kind='stable')
  scores, positive = scores[order], positive[order]
  last_of_tie = np.r_[scores[1:] != scores[:-1], True]
  true_positives = np.cumsum(positive)[last_of_tie]
  precision = true_positives / (np.flatnonzero(last_of_tie) + 1)
  recall_gain = np.diff(np.r_[0, true_positives]) / positive.sum()
  return float(np.sum(precision * recall_gain))


def trapezoidal_auprc(scores, positive) -> float:
  """Area under the precision-recall curve by the trapezoidal rule over its points (one per
  distinct score, and ``(recall 0, precision 1)``): scikit-learn's ``auc(recall, precision)`` of
  ``precision_recall_curve``, the DAMC reference's AUPRC. It interpolates linearly between
  points where :func:`average_precision` sums steps, so the two differ by a few thousandths."""
  scores, positive = _checked(scores, positive)
  order = np.argsort(-scores, kind='stable')
  scores, positive = scores[order], positive[order]
  last_of_tie = np.r_[scores[1:] != scores[:-1], True]
  true_positives = np.cumsum(positive)[last_of_tie]
  precision = np.r_[1.0, true_positives / (np.flatnonzero(last_of_tie) + 1)]
  recall = np.r_[0.0, true_positives / positive.sum()]
  return float(np.sum(np.diff(recall) * 0.5 * (precision[1:] + precision[:-1])))


def roc_auc(scores, positive) -> float:
  """The probability that a random positive scores above a random negative (ties count a
  half): the Mann-Whitney statistic over ``n_pos * n_neg``, from average ranks."""
  scores, positive = _checked(scores, positive)
  order = np.argsort(scores, kind='stable')
  sorted_scores = scores[order]
  ranks = np.empty(len(scores))
  starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
  ends = np.r_[starts[1:], len(scores)]
  for start, end in zip(starts, ends):
    ranks[order[start:end]] = 0.5 * (start + end + 1)  # the mean of ranks start+1 .. end
  n_pos, n_neg = positive.sum(), (~positive).sum()
  return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
