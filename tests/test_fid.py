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


def test_kid_is_the_unbiased_cubic_kernel_mmd():
  from nnce_jax.fid import kernel_inception_distance, unbiased_mmd2
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3)) + 0.5
  k = lambda a, b: (np.dot(a, b) / 3 + 1) ** 3  # noqa: E731
  within = lambda s: np.mean([k(s[i], s[j]) for i in range(len(s)) for j in range(len(s)) if i != j])  # noqa: E731
  brute = within(x) + within(y) - 2 * np.mean([k(a, b) for a in x for b in y])
  np.testing.assert_allclose(unbiased_mmd2(x, y), brute, rtol=1e-10)
  # Point masses: MMD² = k(a, a) + k(b, b) - 2 k(a, b) exactly.
  a, b = np.full((4, 2), 0.3), np.full((6, 2), -0.7)
  np.testing.assert_allclose(unbiased_mmd2(a, b), (a[0] @ a[0] / 2 + 1) ** 3
                             + (b[0] @ b[0] / 2 + 1) ** 3 - 2 * (a[0] @ b[0] / 2 + 1) ** 3, rtol=1e-12)
  # Unbiased: same-law samples average to 0 within their spread; a shift is far above it.
  same = kernel_inception_distance(rng.normal(size=(4000, 4)), rng.normal(size=(4000, 4)), subset_size=200,
                                   num_subsets=50)
  shifted = kernel_inception_distance(rng.normal(size=(4000, 4)), rng.normal(size=(4000, 4)) + 0.5,
                                      subset_size=200, num_subsets=50)
  assert abs(same[0]) < 3 * same[1] / np.sqrt(50)
  assert shifted[0] > 10 * same[1]
  with pytest.raises(ValueError, match='KID needs'):
    kernel_inception_distance(x, y[:, :2])


def test_feature_distances_take_any_feature_network_batch_by_batch():
  from nnce_jax.fid import feature_distances, kernel_inception_distance
  rng = np.random.default_rng(1)
  samples, reference = rng.normal(size=(2500, 6)), rng.normal(size=(3000, 3)) + 0.3
  project = lambda x: x[:, :3] * 2.0  # noqa: E731
  found = feature_distances(project, samples, reference, batch_size=700)
  assert found['frechet_distance'] == pytest.approx(feature_distance(project(samples), reference), rel=1e-12)
  assert found['kid'] == pytest.approx(kernel_inception_distance(project(samples), reference)[0], rel=1e-12)
