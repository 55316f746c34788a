"""DAMC's amortiser: the latent diffusion model learns a known conditional, and its helpers."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import linen as nn

from nnce_jax import damc


def test_logsnr_schedule_spans_its_range_monotonically():
  t = jnp.linspace(0.0, 1.0, 11)
  logsnr = damc.logsnr_schedule(t, -5.1, 9.8)
  assert float(logsnr[0]) == pytest.approx(9.8, abs=1e-4)
  assert float(logsnr[-1]) == pytest.approx(-5.1, abs=1e-4)
  assert bool(jnp.all(jnp.diff(logsnr) < 0))


@pytest.mark.slow
def test_amortiser_learns_a_known_conditional_and_its_prior():
  """z | x = N(2x, 0.1^2), x ~ U(-2, 2): Q's samples given x have that mean and spread, and its
  prior-embedding samples the aggregate, z ~ 2 U(-2, 2) (std 4 / sqrt 3 = 2.31)."""
  amortizer = damc.Amortizer(1, nn.Dense(16), embed_dim=16, widths=(64, 64))
  params = damc.init_amortizer(amortizer, jax.random.PRNGKey(1), jnp.zeros((2, 1)))
  tx = optax.adam(3e-3)

  @jax.jit
  def steps(params, opt, keys):
    def one(carry, key):
      params, opt = carry
      x_key, z_key, loss_key = jax.random.split(key, 3)
      x = jax.random.uniform(x_key, (256, 1), minval=-2, maxval=2)
      z = 2 * x + 0.1 * jax.random.normal(z_key, (256, 1))
      loss, grads = jax.value_and_grad(lambda p: damc.denoising_loss(amortizer, p, loss_key, z, x))(params)
      updates, opt = tx.update(grads, opt, params)
      return (optax.apply_updates(params, updates), opt), loss
    return jax.lax.scan(one, (params, opt), keys)

  (params, _), losses = steps(params, tx.init(params), jax.random.split(jax.random.PRNGKey(2), 800))
  assert float(losses[-100:].mean()) < 0.5 * float(losses[:100].mean())
  x = jnp.repeat(jnp.array([[-1.0], [0.5], [1.5]]), 300, 0)
  z = np.asarray(damc.sample(amortizer, params, jax.random.PRNGKey(3), x, num_steps=40)).reshape(3, 300)
  np.testing.assert_allclose(z.mean(1), [-2.0, 1.0, 3.0], atol=0.2)
  assert np.all((z.std(1) > 0.04) & (z.std(1) < 0.25)), z.std(1)
  prior = damc.sample(amortizer, params, jax.random.PRNGKey(4), None, num_samples=2000, num_steps=40)
  prior = np.asarray(prior)
  assert prior.shape == (2000, 1) and 1.6 < prior.std() < 3.0 and abs(prior.mean()) < 0.6


def test_refine_without_noise_climbs_and_with_noise_spreads():
  log_density = lambda z: -0.5 * jnp.sum(jnp.square(z - 3.0), -1)  # noqa: E731 (N(3, I))
  z0 = jnp.zeros((2000, 2))
  climbed = damc.refine(jax.random.PRNGKey(0), log_density, z0, num_steps=200, step_size=0.3, noise=False)
  np.testing.assert_allclose(np.asarray(climbed), 3.0, atol=1e-3)
  sampled = damc.refine(jax.random.PRNGKey(1), log_density, z0, num_steps=400, step_size=0.3)
  assert abs(float(sampled.mean()) - 3.0) < 0.1 and 0.85 < float(sampled.std()) < 1.15


@pytest.mark.slow  # 50 s on 2 cores; the fast tier checks the amortiser on a known conditional
def test_amortiser_tracks_long_run_langevin_better_than_short_run(tmp_path):
  """The toy check (experiments/tasks/amortiser_check.py), small: Q + K Langevin steps end
  closer to the long run than K steps from N(0, I), and closer than Q started."""
  from experiments.configs import amortiser_check
  from experiments.core.checks import set_fields
  from experiments.core.metrics import read_metrics
  from experiments.run.training import train_and_evaluate
  config = set_fields(amortiser_check.get_config(), {
      'data.num_eval_observations': 4, 'data.samples_per_observation': 128, 'data.long_run_steps': 1000,
      'train.num_steps': 600, 'train.eval_every': 200, 'train.log_every': 600, 'train.batch_size': 128})
  summary = train_and_evaluate(config, str(tmp_path))
  history = [r for r in read_metrics(str(tmp_path)) if 'eval_amortised_distance' in r]
  final = summary['final']
  assert final['amortised_distance'] < 0.75 * final['short_run_distance'], final
  assert final['amortised_distance'] < 0.5 * history[0]['eval_amortised_distance'], history
  assert os.path.getsize(tmp_path / 'amortiser_check.png') > 0
