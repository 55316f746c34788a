"""Fréchet distance between Gaussians fitted to features: FID when the features are
InceptionV3's pool3 activations of generated and real images (Heusel et al. 2017).

``FD = ||mu_1 - mu_2||^2 + tr(S_1 + S_2 - 2 (S_1^1/2 S_2 S_1^1/2)^1/2)``

The matrix square root goes through two symmetric eigendecompositions (``S_1^1/2``, then
the PSD product), so it stays real where ``scipy.linalg.sqrtm(S_1 S_2)`` may not. The
feature network itself is the caller's (see ``experiments/tasks/latent_images.py``).
"""

import numpy as np


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
  values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
  return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean ``[d]`` and covariance ``[d, d]`` (unbiased) of ``features [n, d]``, in float64."""
  features = np.asarray(features, np.float64)
  if features.ndim != 2 or features.shape[0] < 2 or not np.all(np.isfinite(features)):
    raise ValueError(f'features must be finite, [n >= 2, d]; got shape {features.shape}')
  return features.mean(0), np.cov(features, rowvar=False).reshape(features.shape[1], features.shape[1])


def frechet_distance(mean_1, cov_1, mean_2, cov_2) -> float:
  """The squared 2-Wasserstein distance between ``N(mean_1, cov_1)`` and ``N(mean_2, cov_2)``."""
  root_1 = _sqrt_psd(np.asarray(cov_1, np.float64))
  cross = _sqrt_psd(root_1 @ np.asarray(cov_2, np.float64) @ root_1)
  difference = np.asarray(mean_1, np.float64) - np.asarray(mean_2, np.float64)
  return float(difference @ difference + np.trace(cov_1) + np.trace(cov_2) - 2.0 * np.trace(cross))


def feature_distance(features_1: np.ndarray, features_2: np.ndarray) -> float:
  """FID-style distance between two feature samples ``[n, d]``, ``[m, d]``."""
  return frechet_distance(*gaussian_statistics(features_1), *gaussian_statistics(features_2))
