"""Noise distributions and log-ratio models against closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnce_jax import closed_form, models, noise

KEY = jax.random.PRNGKey(0)
MEAN = np.array([0.5, -1.0, 2.0], np.float32)
COV = np.array([[1.0, 0.3, 0.0], [0.3, 0.5, 0.1], [0.0, 0.1, 2.0]], np.float32)


def test_full_gaussian_log_prob_and_moments():
  dist = noise.Gaussian.from_covariance(MEAN, COV)
  x = dist.sample(KEY, (200000,))
  np.testing.assert_allclose(x.mean(0), MEAN, atol=0.02)
  np.testing.assert_allclose(np.cov(np.asarray(x).T), COV, atol=0.03)
  np.testing.assert_allclose(dist.log_prob(x[:50]), closed_form.gaussian_log_prob(x[:50], MEAN, COV),
                             rtol=1e-5)


def test_diagonal_gaussian_matches_full_and_reaches_tiny_scales():
  diag = noise.DiagonalGaussian(jnp.asarray(MEAN), jnp.array([1.0, 1e-6, 3.0]))
  full = noise.Gaussian.from_covariance(MEAN, np.diag([1.0, 1e-12, 9.0]))
  x = diag.sample(KEY, (10,))
  np.testing.assert_allclose(diag.log_prob(x), full.log_prob(x), rtol=1e-4)


def test_mixture_normalises_and_samples_its_components():
  mix = noise.GaussianMixture(jnp.log(jnp.array([0.25, 0.75])), jnp.array([[-2.0], [3.0]]),
                              jnp.array([[0.5], [1.0]]))
  grid = jnp.linspace(-10, 12, 20001)[:, None]
  mass = jnp.sum(jnp.exp(mix.log_prob(grid))) * (grid[1, 0] - grid[0, 0])
  np.testing.assert_allclose(mass, 1.0, atol=1e-3)  # float32 sum over 20001 cells
  x = mix.sample(KEY, (100000,))
  np.testing.assert_allclose(x.mean(), 0.25 * -2 + 0.75 * 3, atol=0.03)


def test_linear_mixing_waymarks_are_variance_preserving():
  x = 1e-3 * jax.random.normal(KEY, (100000, 1))
  y = jax.random.normal(jax.random.fold_in(KEY, 1), (100000, 1))
  for a in noise.linear_mixing_schedule(4):
    w = noise.linear_mixing_waymark(x, y, a)
    np.testing.assert_allclose(w.var(), (1 - a**2) * 1e-6 + a**2, rtol=0.02, atol=1e-7)


@pytest.mark.slow
def test_gaussian_ratio_is_the_log_ratio_of_its_moments():
  base = noise.isotropic_gaussian(3)
  model = models.GaussianRatio(base=base)
  params = model.init(KEY, jnp.zeros((1, 3)))
  params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(KEY, p.shape), params)
  means, covs = models.gaussian_ratio_moments(params)
  x = jax.random.normal(jax.random.fold_in(KEY, 2), (20, 3))
  expected = (closed_form.gaussian_log_prob(x, means[0], covs[0]) - base.log_prob(x)
              - params['params']['log_normalizer'][0])
  np.testing.assert_allclose(model.apply(params, x)[:, 0], expected, rtol=1e-4, atol=1e-4)


def test_telescoped_gaussian_ratio_sums_to_first_over_base():
  base = noise.isotropic_gaussian(2, scale=2.0)
  model = models.GaussianRatio(base=base, num_stages=3)
  params = model.init(KEY, jnp.zeros((1, 2)))
  params = jax.tree.map(lambda p: p + 0.2 * jax.random.normal(KEY, p.shape), params)
  means, covs = models.gaussian_ratio_moments(params)
  x = jax.random.normal(KEY, (10, 2))
  total = model.apply(params, x).sum(-1)
  expected = (closed_form.gaussian_log_prob(x, means[0], covs[0]) - base.log_prob(x)
              - params['params']['log_normalizer'].sum())
  np.testing.assert_allclose(total, expected, rtol=1e-4, atol=1e-4)


def test_mlp_ratio_has_k_heads_and_a_learned_normaliser():
  model = models.MLPRatio(hidden=(8,), num_stages=3)
  params = model.init(KEY, jnp.zeros((1, 2)))
  assert model.apply(params, jnp.zeros((5, 2))).shape == (5, 3)
  shifted = jax.tree.map(lambda p: p, params)
  shifted['params']['log_normalizer'] = params['params']['log_normalizer'] + 1.0
  x = jnp.ones((4, 2))
  np.testing.assert_allclose(model.apply(shifted, x), model.apply(params, x) - 1.0, rtol=1e-6)


def test_closed_form_kl_of_the_density_chasm():
  np.testing.assert_allclose(closed_form.gaussian_kl(0, 1e-6, 0, 1), 6.4078, atol=1e-4)
  np.testing.assert_allclose(closed_form.gaussian_kl(0, 1e-12, 0, 1), 13.3155, atol=1e-4)


def test_cramer_rao_bound_matches_the_mle_spread():
  # The MLE's mean squared error over replicates approaches the bound (n large enough for
  # the asymptotics; 400 replicates give about 10% Monte-Carlo error).
  rng = np.random.default_rng(0)
  a = rng.normal(size=(3, 3))
  mean, cov = rng.normal(size=3), a @ a.T / 3 + 0.5 * np.eye(3)
  n, errors = 2000, []
  for _ in range(400):
    m, c = closed_form.gaussian_mle(rng.multivariate_normal(mean, cov, size=n))
    errors.append(np.sum(np.square(m - mean)) + np.sum(np.square(c - cov)))
  np.testing.assert_allclose(np.mean(errors), closed_form.gaussian_cramer_rao(cov, n), rtol=0.15)
