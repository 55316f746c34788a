"""The RQ-NSF flow noise: the identity at initialisation, normalised, invertible, better than its
Gaussian on a non-Gaussian sample, early-stopped on validation, and kept and reused by the task."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnce_jax import flow, noise


@pytest.fixture(scope='module')
def banana():
  """A curved 2-D sample (``x2 = x1^2 + noise``) no Gaussian fits: train, validation."""
  rng = np.random.default_rng(0)
  x1 = rng.normal(size=3000)
  y = np.stack([x1, x1 ** 2 + 0.3 * rng.normal(size=3000)], 1).astype(np.float32)
  return y[:2000], y[2000:]


@pytest.fixture(scope='module')
def fitted(banana):
  return flow.fit_flow(jax.random.PRNGKey(0), *banana, num_layers=4, hidden=32, num_bins=8, bound=6.0,
                       num_steps=400, eval_every=100, learning_rate=3e-3)


@pytest.mark.slow
def test_an_untrained_flow_is_its_gaussian():
  rng = np.random.default_rng(1)
  y = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6))
  gaussian = noise.fit_gaussian(y)
  untrained = flow.untrained_flow(gaussian, num_layers=3, hidden=8)
  log_prob, z, back = jax.jit(lambda y: (untrained.log_prob(y), untrained.to_latent(y),
                                         untrained.from_latent(untrained.to_latent(y))))(y[:20])
  np.testing.assert_allclose(log_prob, gaussian.log_prob(y[:20]), rtol=1e-5, atol=1e-4)
  # z: the whitened sample L^-1 (y - m), its coordinates permuted
  w = np.linalg.solve(np.asarray(gaussian.scale_tril), (y[:20] - np.asarray(gaussian.mean)).T).T
  np.testing.assert_allclose(np.sort(z, axis=1), np.sort(w, axis=1), atol=1e-4)
  np.testing.assert_allclose(back, y[:20], atol=1e-4)


@pytest.mark.slow
def test_the_fitted_flow_beats_its_gaussian_and_keeps_its_best_validation_step(fitted, banana):
  fit, history = fitted
  train, validation = banana
  gaussian_nll = -float(jnp.mean(noise.fit_gaussian(train).log_prob(validation)))
  flow_nll = -float(jnp.mean(fit.log_prob(validation)))
  assert flow_nll < gaussian_nll - 0.3, (flow_nll, gaussian_nll)  # the curve is worth > 0.3 nats
  assert flow_nll == pytest.approx(min(history['validation_nll']), rel=1e-4)  # the best evaluation's params
  assert history['step'] == [100, 200, 300, 400]


@pytest.mark.slow
def test_the_fitted_flow_is_normalised_and_invertible(fitted):
  fit, _ = fitted
  x1, x2 = np.linspace(-6, 6, 241, dtype=np.float32), np.linspace(-6, 30, 361, dtype=np.float32)
  points = np.stack(np.meshgrid(x1, x2), -1).reshape(-1, 2)  # holds all but ~1e-8 of the mass
  cell = (x1[1] - x1[0]) * (x2[1] - x2[0])
  mass = float(jnp.sum(jnp.exp(jax.jit(fit.log_prob)(jnp.asarray(points))))) * cell
  assert mass == pytest.approx(1.0, abs=0.02)
  z = jax.random.normal(jax.random.PRNGKey(3), (64, 2))
  np.testing.assert_allclose(jax.jit(lambda z: fit.to_latent(fit.from_latent(z)))(z), z, atol=1e-3)
  samples = jax.jit(fit.sample, static_argnums=1)(jax.random.PRNGKey(4), (4000,))
  curve = np.asarray(samples[:, 1] - samples[:, 0] ** 2)  # the sample follows the curve it was fitted to
  assert abs(np.median(curve)) < 0.3 and np.median(np.abs(curve)) < 0.6


def test_fit_flow_refuses_bad_settings(banana):
  with pytest.raises(ValueError, match='num_steps, eval_every, num_layers >= 1'):
    flow.fit_flow(jax.random.PRNGKey(0), *banana, num_steps=0)


def test_a_noise_that_fails_to_fit_is_one_config_error(monkeypatch, banana):
  from experiments.configs import image_density
  from experiments.core.checks import ConfigError
  from experiments.tasks import image_density as task
  from nnce_jax import copula
  config = image_density.get_config()
  config.noise.name = 'copula'
  monkeypatch.setattr(copula, 'fit_gaussian_copula', lambda *a, **k: (None, jnp.array([1.0, jnp.nan])))
  with pytest.raises(ConfigError, match="noise.name='copula' did not fit .*lower noise.copula_bins"):
    task.fit_noise(config, *banana)


@pytest.mark.slow
def test_the_task_keeps_the_flow_and_reuses_it(tmp_path, monkeypatch, banana):
  from experiments.configs import image_density
  from experiments.tasks import image_density as task
  config = image_density.get_config()
  config.noise.update(name='flow', flow_layers=2, flow_hidden=8, flow_steps=20, cache_dir=str(tmp_path))
  train, validation = banana
  first = task.fit_noise(config, train, validation)
  assert len(list(tmp_path.glob('flow_*.msgpack'))) == 1 and len(list(tmp_path.glob('flow_*.json'))) == 1
  monkeypatch.setattr(flow, 'fit_flow', lambda *a, **k: pytest.fail('refitted a kept flow'))
  again = task.fit_noise(config, train, validation)
  np.testing.assert_array_equal(again.log_prob(validation[:10]), first.log_prob(validation[:10]))
  base_t, to_t = task.model_coordinates(again)  # s reads the latent, where q0 is N(0, I)
  assert isinstance(base_t, noise.DiagonalGaussian)
  np.testing.assert_allclose(to_t(validation[:10]), again.to_latent(validation[:10]), atol=1e-5)
  path = task.noise_cache_path(config)
  config.noise.flow_steps = 40  # other settings: another file
  assert task.noise_cache_path(config) != path and str(tmp_path) in path
