"""Closed-form truth for Gaussians, in float64 NumPy (host side, exact enough for 1e-12 variances)."""

import numpy as np


def gaussian_kl(mean_p, cov_p, mean_q, cov_q) -> float:
  """``KL(N(mean_p, cov_p) || N(mean_q, cov_q))`` in nats."""
  mean_p, mean_q = np.atleast_1d(np.asarray(mean_p, np.float64)), np.atleast_1d(np.asarray(mean_q, np.float64))
  cov_p, cov_q = np.atleast_2d(np.asarray(cov_p, np.float64)), np.atleast_2d(np.asarray(cov_q, np.float64))
  precision_q = np.linalg.inv(cov_q)
  diff = mean_q - mean_p
  _, logdet_p = np.linalg.slogdet(cov_p)
  _, logdet_q = np.linalg.slogdet(cov_q)
  return 0.5 * float(np.trace(precision_q @ cov_p) + diff @ precision_q @ diff
                     - mean_p.size + logdet_q - logdet_p)


def gaussian_log_prob(x, mean, cov) -> np.ndarray:
  """``log N(x; mean, cov)`` for ``x [..., d]``."""
  x = np.asarray(x, np.float64)
  mean, cov = np.atleast_1d(np.asarray(mean, np.float64)), np.atleast_2d(np.asarray(cov, np.float64))
  diff = x - mean
  _, logdet = np.linalg.slogdet(cov)
  maha = np.einsum('...i,ij,...j->...', diff, np.linalg.inv(cov), diff)
  return -0.5 * (maha + logdet + mean.size * np.log(2 * np.pi))


def gaussian_mle(samples) -> tuple[np.ndarray, np.ndarray]:
  """Maximum-likelihood mean and covariance (divisor ``n``) of ``samples [n, d]``."""
  samples = np.asarray(samples, np.float64)
  mean = samples.mean(0)
  centred = samples - mean
  return mean, centred.T @ centred / samples.shape[0]
