"""Sample distances against closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnce_jax import sample_distances


@pytest.mark.slow
def test_sliced_wasserstein_is_zero_on_equal_samples_and_sees_a_shift():
  a = jax.random.normal(jax.random.PRNGKey(0), (4000, 4))
  key = jax.random.PRNGKey(1)
  assert float(sample_distances.sliced_wasserstein(key, a, a)) == pytest.approx(0.0, abs=1e-6)
  shift = jnp.array([1.0, 0.0, 0.0, 0.0])
  # A shift v moves every projection u.v: SW^2 = E (u.v)^2 = |v|^2 / d.
  assert float(sample_distances.sliced_wasserstein(key, a, a + shift, 2000)) == pytest.approx(0.5, abs=0.05)


def test_mmd_matches_the_gaussian_closed_form():
  """For x ~ N(a, I), y ~ N(b, I) in d dims, E k_h(x, y) = (h^2 / (h^2 + 2))^(d/2)
  exp(-|a - b|^2 / (2 (h^2 + 2))); the V-statistic adds about (1 - E k) / n per same-sample term."""
  d, n, shift = 2, 3000, np.array([1.0, 0.0])
  x = jax.random.normal(jax.random.PRNGKey(0), (n, d))
  y = jax.random.normal(jax.random.PRNGKey(1), (n, d)) + shift
  bandwidths = (0.5, 2.0)
  expected = 0.0
  for h in bandwidths:
    same = (h ** 2 / (h ** 2 + 2)) ** (d / 2)
    expected += 2 * same - 2 * same * np.exp(-shift @ shift / (2 * (h ** 2 + 2))) + 2 * (1 - same) / n
  # 0.025: three Monte Carlo standard deviations of the estimate
  assert float(sample_distances.mmd(x, y, bandwidths)) == pytest.approx(expected, abs=0.025)
  assert float(sample_distances.mmd(x, x, bandwidths)) == pytest.approx(0.0, abs=1e-5)
