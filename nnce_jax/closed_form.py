"""Closed-form truth for Gaussians, in float64 NumPy (host side, exact enough for 1e-12 variances)."""

import numpy as np


def _vector(x) -> np.ndarray:
  return np.atleast_1d(np.asarray(x, np.float64))


def _matrix(x) -> np.ndarray:
  return np.atleast_2d(np.asarray(x, np.float64))


def gaussian_kl(mean_p, cov_p, mean_q, cov_q) -> float:
  """``KL(N(mean_p, cov_p) || N(mean_q, cov_q))`` in nats."""
  mean_p, mean_q, cov_p, cov_q = _vector(mean_p), _vector(mean_q), _matrix(cov_p), _matrix(cov_q)
  precision_q = np.linalg.inv(cov_q)
  diff = mean_q - mean_p
  _, logdet_p = np.linalg.slogdet(cov_p)
  _, logdet_q = np.linalg.slogdet(cov_q)
  return 0.5 * float(np.trace(precision_q @ cov_p) + diff @ precision_q @ diff
                     - mean_p.size + logdet_q - logdet_p)


def gaussian_log_prob(x, mean, cov) -> np.ndarray:
  """``log N(x; mean, cov)`` for ``x [..., d]``."""
  x, mean, cov = np.asarray(x, np.float64), _vector(mean), _matrix(cov)
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


def gaussian_cramer_rao(cov, num_samples: int) -> float:
  """The Cramér–Rao bound on ``E ||mean_hat - mean||^2 + E ||cov_hat - cov||_F^2`` from ``n``
  samples (asymptotically attained by the MLE):

      (tr S + (tr S)^2 + ||S||_F^2) / n,

  since ``Var(mean_hat_i) = S_ii / n`` and ``Var(cov_hat_ij) = (S_ij^2 + S_ii S_jj) / n``.
  """
  cov = _matrix(cov)
  trace = float(np.trace(cov))
  return (trace + trace**2 + float(np.sum(np.square(cov)))) / num_samples
