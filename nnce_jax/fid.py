"""Fréchet distance between Gaussians fitted to features: FID when the features are
InceptionV3's pool3 activations of generated and real images (Heusel et al. 2017).

``FD = ||mu_1 - mu_2||^2 + tr(S_1 + S_2 - 2 (S_1^1/2 S_2 S_1^1/2)^1/2)``

The matrix square root goes through two symmetric eigendecompositions (``S_1^1/2``, then
the PSD product), so it stays real where ``scipy.linalg.sqrtm(S_1 S_2)`` may not.

KID (Binkowski et al. 2018) is the unbiased MMD² with the cubic kernel ``k(x, y) = (x.y / d + 1)^3``,
averaged over random subsets: unlike FD it has an unbiased estimator, so small samples compare.

Both take features; the feature network is the caller's (InceptionV3 for FID proper, or a small
classifier trained on the same split: ``experiments/tasks/latent_images.py``,
``experiments/tasks/dxmi_images.py``).
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


def _cubic_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  return (x @ y.T / x.shape[1] + 1.0) ** 3


def unbiased_mmd2(features_1: np.ndarray, features_2: np.ndarray) -> float:
  """The unbiased MMD² with the cubic kernel between ``[n, d]`` and ``[m, d]`` (n, m >= 2):
  within-sample kernel means leave out the diagonal, so its expectation is 0 for equal laws."""
  x, y = np.asarray(features_1, np.float64), np.asarray(features_2, np.float64)
  n, m = x.shape[0], y.shape[0]
  k_xx, k_yy = _cubic_kernel(x, x), _cubic_kernel(y, y)
  return float((k_xx.sum() - np.trace(k_xx)) / (n * (n - 1)) + (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
               - 2.0 * _cubic_kernel(x, y).mean())


def kernel_inception_distance(features_1: np.ndarray, features_2: np.ndarray, *, num_subsets: int = 10,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
  """KID: mean and std of :func:`unbiased_mmd2` over ``num_subsets`` random subsets of
  ``min(subset_size, n, m)`` rows of each sample (the usual protocol; ``seed`` fixes them)."""
  x, y = np.asarray(features_1), np.asarray(features_2)
  size = min(subset_size, x.shape[0], y.shape[0])
  if size < 2 or x.shape[1] != y.shape[1]:
    raise ValueError(f'KID needs [n >= 2, d] and [m >= 2, d] features; got {x.shape} and {y.shape}')
  rng = np.random.default_rng(seed)
  values = [unbiased_mmd2(x[rng.choice(x.shape[0], size, replace=False)],
                          y[rng.choice(y.shape[0], size, replace=False)]) for _ in range(num_subsets)]
  return float(np.mean(values)), float(np.std(values))


def feature_distances(feature_fn, samples, reference_features: np.ndarray, batch_size: int = 1000) -> dict:
  """Fréchet distance and KID of ``samples`` to ``reference_features [m, k]`` in the features
  of any network, ``feature_fn(batch [b, ...]) -> [b, k]`` (InceptionV3's pool3 for FID proper;
  a classifier trained on the data otherwise), applied ``batch_size`` samples at a time."""
  features = np.concatenate([np.asarray(feature_fn(samples[i:i + batch_size]), np.float64)
                             for i in range(0, len(samples), batch_size)])
  kid, kid_std = kernel_inception_distance(features, reference_features)
  return {'frechet_distance': feature_distance(features, reference_features), 'kid': kid, 'kid_std': kid_std}
