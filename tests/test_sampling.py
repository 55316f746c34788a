"""Samplers reproduce the moments of a known Gaussian EBM; chain diagnostics are sane."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnce_jax import noise, sampling

MEAN = jnp.array([1.0, -0.5])
COVARIANCE = jnp.array([[1.0, 0.6], [0.6, 0.5]])
TARGET = noise.Gaussian.from_covariance(MEAN, COVARIANCE)
BASE = noise.isotropic_gaussian(2, scale=2.0)  # q0 of the EBM p ∝ q0 exp(s)


def log_ratio(x):  # s = log p - log q0: the EBM's exact log-ratio
  return TARGET.log_prob(x) - BASE.log_prob(x)


def assert_moments(samples, mean_tol, cov_tol):
  samples = np.asarray(samples).reshape(-1, 2)
  np.testing.assert_allclose(samples.mean(0), MEAN, atol=mean_tol)
  np.testing.assert_allclose(np.cov(samples.T), COVARIANCE, atol=cov_tol)


def test_sampling_importance_resampling():
  samples, info = jax.jit(lambda k: sampling.sampling_importance_resampling(
      k, log_ratio, BASE, 100_000, 5000))(jax.random.PRNGKey(0))
  assert samples.shape == (5000, 2)
  assert 5_000 < float(info['effective_sample_size']) < 100_000
  assert_moments(samples, 0.05, 0.06)


def test_mala_moments_and_acceptance():
  init = BASE.sample(jax.random.PRNGKey(1), (64,))
  trace, info = jax.jit(lambda k: sampling.langevin(
      k, TARGET.log_prob, init, step_size=1.0, num_steps=500, num_warmup=300))(jax.random.PRNGKey(2))
  assert trace.shape == (500, 64, 2)
  # Adapted from an over-large step (acceptance near 0) to the 0.574 target.
  assert 0.45 < float(info['acceptance_rate']) < 0.7
  assert float(info['step_size']) < 0.5
  # The covariance's condition number ~10 makes the chains mix slowly along its long axis.
  assert 300 < float(info['effective_sample_size']) <= 500 * 64 * 1.5
  assert_moments(trace, 0.05, 0.06)


def test_unadjusted_langevin_has_no_acceptance_and_small_bias_at_small_steps():
  init = BASE.sample(jax.random.PRNGKey(3), (64,))
  trace, info = jax.jit(lambda k: sampling.langevin(
      k, TARGET.log_prob, init, step_size=0.01, num_steps=1000, num_warmup=500,
      adjusted=False))(jax.random.PRNGKey(4))
  assert 'acceptance_rate' not in info
  assert_moments(trace, 0.1, 0.1)


def test_langevin_on_a_flax_style_batched_energy():
  """The EBM form ``log q0 + s`` (batched callable), as experiments pass a model's apply."""
  init = BASE.sample(jax.random.PRNGKey(5), (32,))
  trace, info = jax.jit(lambda k: sampling.langevin(
      k, lambda x: BASE.log_prob(x) + log_ratio(x), init, step_size=0.3, num_steps=800,
      num_warmup=200))(jax.random.PRNGKey(6))
  assert_moments(trace, 0.08, 0.1)


def test_svgd_moments():
  particles = BASE.sample(jax.random.PRNGKey(7), (200,))
  particles, info = jax.jit(lambda p: sampling.svgd(TARGET.log_prob, p, step_size=0.1,
                                                    num_steps=2000))(particles)
  assert float(info['bandwidth']) > 0
  assert_moments(particles, 0.06, 0.08)


@pytest.mark.slow
def test_effective_sample_size_of_known_chains():
  iid = jax.random.normal(jax.random.PRNGKey(8), (1000, 4, 3))
  np.testing.assert_allclose(sampling.effective_sample_size(iid), 4000, rtol=0.15)
  # AR(1) with coefficient phi: ESS = N (1 - phi) / (1 + phi).
  phi, steps = 0.9, 4000
  innovations = jax.random.normal(jax.random.PRNGKey(9), (steps, 4, 1))
  chain = jax.lax.scan(lambda x, e: (phi * x + e, phi * x + e), jnp.zeros((4, 1)), innovations)[1]
  expected = steps * 4 * (1 - phi) / (1 + phi)
  assert float(sampling.effective_sample_size(chain)[0]) == pytest.approx(expected, rel=0.3)
  # Chains stuck in different places: the between-chain variance collapses the ESS.
  stuck = iid + jnp.arange(4.0)[None, :, None] * 10
  assert float(jnp.max(sampling.effective_sample_size(stuck))) < 50
