"""log Z estimators against the closed form on Gaussians, and their equivalence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnce_jax import normalizers
from nnce_jax.noise import HALF_LOG_2PI


def gaussian_pair(key, n_target, n_proposal, dim=3, shift=0.5, scale=0.9):
  """Log ratios of ``pi~(x) = exp(-|x - mu|^2 / 2 scale^2)`` to ``q = N(0, I)`` at samples
  of each; ``log Z = d (log scale + log sqrt(2 pi))`` in closed form."""
  mean = jnp.full((dim,), shift / np.sqrt(dim))
  target_key, proposal_key = jax.random.split(key)
  x = mean + scale * jax.random.normal(target_key, (n_target, dim))
  y = jax.random.normal(proposal_key, (n_proposal, dim))
  log_ratio = lambda z: (-0.5 * jnp.sum(jnp.square((z - mean) / scale), -1)  # noqa: E731
                         + 0.5 * jnp.sum(jnp.square(z), -1) + dim * HALF_LOG_2PI)
  return log_ratio(x), log_ratio(y), dim * (np.log(scale) + HALF_LOG_2PI)


@pytest.mark.parametrize('name', sorted(normalizers.ESTIMATORS))
def test_within_three_standard_errors_of_closed_form(name):
  # scale 0.9 keeps both IS (pi^2 / q) and reverse IS (q^2 / pi) of finite variance.
  l_x, l_y, log_z = gaussian_pair(jax.random.PRNGKey(0), 10_000, 10_000)
  estimate = jax.jit(normalizers.ESTIMATORS[name])(l_x, l_y)
  assert bool(estimate.converged)
  assert 0 < float(estimate.std_error) < 0.05
  assert abs(float(estimate.log_z) - log_z) < 3 * float(estimate.std_error), (
      f'{name}: {float(estimate.log_z):.5f} vs {log_z:.5f} ± {float(estimate.std_error):.5f}')


@pytest.mark.parametrize('n_target,n_proposal,shift,scale', [
    (10_000, 10_000, 0.5, 0.9),   # good overlap
    (2_000, 30_000, 3.0, 0.4),    # KL ~ 7 nats, unequal proportions
    (5_000, 5_000, 4.0, 0.35),    # KL ~ 11 nats: MIS's plain map would crawl here
])
def test_pooled_estimators_coincide(n_target, n_proposal, shift, scale):
  """NCE's stationarity in log Z, RLR, pooled MIS and the optimal bridge are one estimator."""
  l_x, l_y, _ = gaussian_pair(jax.random.PRNGKey(1), n_target, n_proposal, dim=5, shift=shift,
                              scale=scale)
  names = ('optimal_bridge', 'reverse_logistic_regression', 'multiple_importance_sampling', 'nce')
  estimates = {n: jax.jit(normalizers.ESTIMATORS[n])(l_x, l_y) for n in names}
  for name, estimate in estimates.items():
    assert bool(estimate.converged), name
    assert int(estimate.iterations) < 50, name
  reference = float(estimates['optimal_bridge'].log_z)
  for name, estimate in estimates.items():
    assert abs(float(estimate.log_z) - reference) < 1e-5, (name, float(estimate.log_z), reference)
  # ... and it differs from the estimators that use one sample only.
  assert abs(float(normalizers.importance_sampling(l_y).log_z) - reference) > 1e-4


@pytest.mark.slow
def test_nce_stationary_at_the_pooled_estimate():
  """The NCE loss of the library, differentiated in log Z, vanishes at the bridge estimate."""
  from nnce_jax.objectives import nce_loss
  l_x, l_y, _ = gaussian_pair(jax.random.PRNGKey(2), 3_000, 6_000)
  log_z = normalizers.optimal_bridge_sampling(l_x, l_y).log_z
  gradient = jax.grad(lambda c: nce_loss(l_x - c, l_y - c, 2.0)[0])
  assert abs(float(gradient(log_z))) < 1e-5
  assert abs(float(gradient(log_z + 0.05))) > 1e-3


def test_standard_errors_match_the_spread_over_replicates():
  """The delta-method and pooled asymptotic standard errors against the empirical spread."""
  keys = jax.random.split(jax.random.PRNGKey(3), 300)
  pairs = jax.vmap(lambda k: gaussian_pair(k, 1000, 1000, shift=1.0, scale=0.8)[:2])(keys)
  for name in ('importance_sampling', 'geometric_bridge', 'optimal_bridge'):
    estimates = jax.jit(jax.vmap(normalizers.ESTIMATORS[name]))(*pairs)
    spread, claimed = float(jnp.std(estimates.log_z)), float(jnp.mean(estimates.std_error))
    assert 0.8 < claimed / spread < 1.25, (name, claimed, spread)


def test_extreme_log_ratios_stay_finite():
  l_x = jnp.concatenate([jnp.full((100,), 1e4), jnp.linspace(-50, 50, 100)])
  l_y = jnp.concatenate([jnp.full((100,), -1e4), jnp.linspace(-50, 50, 100)])
  for name, estimator in normalizers.ESTIMATORS.items():
    estimate = jax.jit(estimator)(l_x, l_y)
    assert np.isfinite(float(estimate.log_z)), name
    assert np.isfinite(float(estimate.std_error)), name


def test_importance_weight_diagnostics():
  assert float(normalizers.effective_sample_size(jnp.zeros(500))) == pytest.approx(500)
  assert float(normalizers.effective_sample_size(jnp.array([0.0, -1e4, -1e4]))) == pytest.approx(1)
  # Equal weights: the mean is exact, its relative variance 0.
  assert float(normalizers.relative_variance_of_mean(jnp.full((10,), 3.0))) == pytest.approx(0, abs=1e-6)
