"""The Fréchet distance against closed forms: commuting covariances and the sample limit."""

import numpy as np
import pytest

from nnce_jax.fid import feature_distance, frechet_distance, gaussian_statistics


def test_commuting_covariances_give_the_sum_of_squared_root_differences():
  # Diagonal covariances commute: tr(S1 + S2 - 2 (S1 S2)^1/2) = sum (sqrt(a) - sqrt(b))^2.
  a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
  mean_1, mean_2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
  expected = np.sum((mean_1 - mean_2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  assert frechet_distance(mean_1, np.diag(a), mean_2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_rotation_invariant_and_zero_between_equal_gaussians():
  rng = np.random.default_rng(0)
  root = rng.normal(size=(5, 5))
  cov = root @ root.T
  rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))
  mean = rng.normal(size=5)
  assert abs(frechet_distance(mean, cov, mean, cov)) < 1e-9
  other = cov + np.eye(5)
  assert frechet_distance(rotation @ mean, rotation @ cov @ rotation.T, np.zeros(5),
                          rotation @ other @ rotation.T) == pytest.approx(
                              frechet_distance(mean, cov, np.zeros(5), other), rel=1e-9)


def test_samples_converge_to_the_closed_form():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(200_000, 2)) * [1.0, 2.0]
  y = rng.normal(size=(200_000, 2)) * [3.0, 0.5] + [1.0, 0.0]
  expected = 1.0 + (1.0 - 3.0) ** 2 + (2.0 - 0.5) ** 2
  assert feature_distance(x, y) == pytest.approx(expected, rel=0.02)


def test_bad_features_are_refused():
  with pytest.raises(ValueError, match='finite'):
    gaussian_statistics(np.array([[0.0, np.nan], [1.0, 2.0]]))
  with pytest.raises(ValueError, match='n >= 2'):
    gaussian_statistics(np.zeros((1, 3)))
