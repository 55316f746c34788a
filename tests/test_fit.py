"""fit_ratio, the one-call API, against closed forms; its argument checks; its checkpoints."""

import warnings

import jax
import numpy as np
import pytest

from nnce_jax import closed_form, fit, noise


@pytest.fixture(scope='module')
def gaussian_pair():
  """q* = N(0.5, 0.6^2) against q0 = N(0, 1) in 2-D (independent coordinates)."""
  target = noise.DiagonalGaussian(np.full(2, 0.5, np.float32), np.full(2, 0.6, np.float32))
  base = noise.isotropic_gaussian(2)
  kl = closed_form.gaussian_kl(np.full(2, 0.5), np.diag(np.full(2, 0.36)), np.zeros(2), np.eye(2))
  return target, base, kl


@pytest.mark.slow
def test_fits_the_closed_form_kl_from_an_array(gaussian_pair):
  target, base, kl = gaussian_pair
  samples = target.sample(jax.random.PRNGKey(0), (20_000,))
  result = fit.fit_ratio(samples, base, objective='noisier_nce', magnitude=100.0, model='gaussian',
                         num_steps=600, batch_size=256, learning_rate=2e-2, eval_every=200)
  # 2,000 held-out samples: the standard error is about 0.02 nats.
  assert abs(result.kl - kl) < 4 * result.kl_std_error + 0.03, (result.kl, kl, result.kl_std_error)
  assert 0 < result.kl_std_error < 0.05
  # The learned s is self-normalised: every log Z estimator is near 0, within its errors.
  for name, estimate in result.log_normalizer.items():
    assert abs(float(estimate.log_z)) < 4 * float(estimate.std_error) + 0.05, (name, estimate)
  x = target.sample(jax.random.PRNGKey(1), (500,))
  true_log_ratio = target.log_prob(x) - base.log_prob(x)
  assert float(np.mean(np.square(result.log_ratio(x) - true_log_ratio))) < 0.01
  assert [r['step'] for r in result.history] == [200, 400, 600]


@pytest.mark.slow
def test_fits_from_a_sampler_with_an_mlp_and_telescoping(gaussian_pair):
  target, base, kl = gaussian_pair
  result = fit.fit_ratio(lambda key, n: target.sample(key, (n,)), base, objective='nce',
                         num_stages=2, num_steps=800, batch_size=256, learning_rate=5e-3)
  assert abs(result.kl - kl) < 0.1, (result.kl, kl)
  assert result.log_ratio(np.zeros((3, 2), np.float32)).shape == (3,)


@pytest.mark.parametrize('kwargs, message', [
    (dict(objective='nec'), "objective='nec' is not one of nce, noisier_nce, nwj, ranking_nce"),
    (dict(magnitude=0.0), 'magnitude=0.0 must be a finite number > 0'),
    (dict(num_stages=0), 'must be >= 1'),
    (dict(model='resnet'), "model='resnet' is not one of gaussian, mlp, resmlp"),
    (dict(batch_size=6), 'batch_size=6 does not divide over 4 devices'),
    (dict(held_out=1.0), 'leaves no training'),
])
def test_bad_arguments_are_refused_before_training(kwargs, message):
  with pytest.raises(ValueError, match=message.replace('(', r'\(').replace(')', r'\)')):
    fit.fit_ratio(np.zeros((100, 2), np.float32), noise.isotropic_gaussian(2), **kwargs)


def test_bad_data_is_refused():
  base = noise.isotropic_gaussian(2)
  with pytest.raises(ValueError, match=r'data must be \[n, d\]'):
    fit.fit_ratio(np.zeros(100, np.float32), base)
  with pytest.raises(ValueError, match='NaN or infinite'):
    fit.fit_ratio(np.full((100, 2), np.nan, np.float32), base)
  with pytest.raises(ValueError, match=r'noise samples have shape \(2,\), the data \(3,\)'):
    fit.fit_ratio(np.zeros((100, 3), np.float32), base)
  with pytest.raises(ValueError, match='sample\\(key, shape\\) and log_prob'):
    fit.fit_ratio(np.zeros((100, 2), np.float32), object())


@pytest.mark.slow
def test_checkpoint_dir_resumes_to_the_same_result(tmp_path, gaussian_pair):
  target, base, _ = gaussian_pair
  samples = target.sample(jax.random.PRNGKey(0), (2000,))
  settings = dict(model='gaussian', batch_size=64, learning_rate=1e-2)
  unbroken = fit.fit_ratio(samples, base, num_steps=40, **settings)
  fit.fit_ratio(samples, base, num_steps=20, checkpoint_dir=str(tmp_path / 'ckpt'), **settings)
  resumed = fit.fit_ratio(samples, base, num_steps=40, checkpoint_dir=str(tmp_path / 'ckpt'), **settings)
  for a, b in zip(jax.tree.leaves(unbroken.params), jax.tree.leaves(resumed.params)):
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_ais_joins_the_log_z_estimates_and_agrees_with_them(gaussian_pair):
  target, base, _ = gaussian_pair
  samples = target.sample(jax.random.PRNGKey(0), (5_000,))
  result = fit.fit_ratio(samples, base, model='gaussian', num_steps=300, batch_size=256, learning_rate=2e-2,
                         ais_temperatures=100, ais_chains=32)
  forward, reverse = result.log_normalizer['ais'], result.log_normalizer['reverse_ais']
  bridge = result.log_normalizer['optimal_bridge']
  for estimate in (forward, reverse):
    assert abs(float(estimate.log_z) - float(bridge.log_z)) < 4 * float(estimate.std_error) + 0.05
  with pytest.raises(ValueError, match='ais_temperatures=-1 must be >= 0'):
    fit.fit_ratio(samples, base, ais_temperatures=-1)


@pytest.mark.slow
def test_model_samples_by_mala_feed_the_pooled_estimators(gaussian_pair):
  target, base, _ = gaussian_pair
  samples = target.sample(jax.random.PRNGKey(0), (5_000,))
  settings = dict(model='gaussian', num_steps=300, batch_size=256, learning_rate=2e-2)
  by_data = fit.fit_ratio(samples, base, **settings)
  by_mala = fit.fit_ratio(samples, base, mcmc_steps=100, **settings)
  assert by_mala.kl == by_data.kl  # the KL reads the held-out data either way
  bridge = by_mala.log_normalizer['optimal_bridge']
  assert float(bridge.log_z) != float(by_data.log_normalizer['optimal_bridge'].log_z)  # other samples
  assert abs(float(bridge.log_z)) < 4 * float(bridge.std_error) + 0.05  # still self-normalised
  with pytest.raises(ValueError, match='mcmc_steps=-1 must be >= 0'):
    fit.fit_ratio(samples, base, mcmc_steps=-1)


def test_disagreeing_log_z_estimates_are_warned_about():
  from nnce_jax.normalizers import LogNormalizer
  agree = {'importance_sampling': LogNormalizer(0.1, 0.05), 'optimal_bridge': LogNormalizer(0.0, 0.05)}
  with warnings.catch_warnings():
    warnings.simplefilter('error')
    fit._warn_on_disagreement(agree)  # 0.1 apart, joint standard error 0.07: no warning
  apart = {**agree, 'ais': LogNormalizer(6.0, 0.2)}
  with pytest.warns(RuntimeWarning, match='importance_sampling 0.100 against ais 6.000 .5.900 nats apart'):
    fit._warn_on_disagreement(apart)


def test_the_tasks_and_fit_ratio_assemble_one_estimator():
  """The config path (``ratio_parts``) and the library's ``ratio_estimator`` give the same
  parameters, batches and loss from the same parts: one assembly, not two."""
  from experiments.tasks.common.ratio import ratio_parts
  from nnce_jax import estimation, models, objectives
  from tests.helpers import small_config
  config = small_config('density_chasm')  # Gaussian family, N²CE with M = 100
  base = noise.isotropic_gaussian(1)

  def sample_data(key, n):
    return 0.5 * jax.random.normal(key, (n, 1))

  _, params, loss_fn, sample_batch = ratio_parts(config, base, sample_data, dim=1)
  direct = estimation.ratio_estimator(
      models.ratio_model('gaussian', base), objectives.make_objective('noisier_nce', magnitude=100.0),
      sample_data, base, batch_size=config.train.batch_size, dim=1,
      init_key=jax.random.fold_in(jax.random.PRNGKey(config.seed), 1))
  batch = sample_batch(jax.random.PRNGKey(3))
  jax.tree.map(np.testing.assert_array_equal, batch, direct.sample_batch(jax.random.PRNGKey(3)))
  jax.tree.map(np.testing.assert_array_equal, params, direct.params)
  key = jax.random.PRNGKey(4)
  np.testing.assert_allclose(loss_fn(params, key, batch)[0], direct.loss_fn(direct.params, key, batch)[0])
  with pytest.raises(ValueError, match="model 'resnet' is not one of gaussian, mlp, resmlp"):
    models.ratio_model('resnet', base)
