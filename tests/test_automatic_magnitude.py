"""Held-out selection, the automatic magnitude, and fit_ratio with both, against closed forms."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.report import automatic_magnitude as report
from nnce_jax import closed_form, estimation, fit, models, noise, objectives, schedules, selection


def test_held_out_selection_keeps_the_better_of_two_known_parameter_sets():
  """Truth against a shifted mean, scored by N^2CE on held-out data: the truth wins, in
  either order, and a non-finite score never does."""
  base = noise.isotropic_gaussian(2)
  target = noise.DiagonalGaussian(jnp.full(2, 0.5), jnp.full(2, 0.6))
  model = models.GaussianRatio(base=base)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))
  # GaussianRatio's mean is whitened, m = L^T mu, and its precision diagonal is log-parameterised.
  truth = jax.tree.map(lambda x: x, params)
  truth['params']['log_precision_diag'] = jnp.full((1, 2), -2 * math.log(0.6))
  truth['params']['whitened_mean'] = jnp.full((1, 2), 0.5 / 0.6)
  shifted = jax.tree.map(lambda x: x, truth)
  shifted['params']['whitened_mean'] = jnp.full((1, 2), 0.2 / 0.6)
  x = target.sample(jax.random.PRNGKey(1), (2000,))
  y = base.sample(jax.random.PRNGKey(2), (2000, 1))
  objective = objectives.make_objective('noisier_nce', magnitude=100.0)
  score = lambda p: float(estimation.ratio_loss(model.apply, p, x, y, objective)[0])  # noqa: E731
  for order in ((truth, shifted), (shifted, truth)):
    chosen = selection.HeldOutSelection('score')
    for step, p in enumerate(order):
      chosen.update(step, {'score': score(p)}, p)
    assert chosen.best_params is truth and chosen.best_step == (0 if order[0] is truth else 1)
  chosen.update(5, {'score': float('nan')}, shifted)
  assert chosen.best_params is truth
  with pytest.raises(KeyError, match="gives score, not the selection metric 'loss'"):
    selection.HeldOutSelection('loss').update(0, {'score': 0.0}, truth)


def test_patience_counts_evaluations_without_improvement():
  chosen = selection.HeldOutSelection('score', patience=2, min_delta=0.1)
  stops = [chosen.update(step, {'score': s}, step) for step, s in enumerate([3.0, 2.0, 1.95, 1.99, 1.0])]
  assert stops == [False, False, False, True, False]  # 1.95 is within min_delta of 2.0
  assert chosen.best_step == 4


def test_plateau_magnitude_decays_by_factor_after_patience_and_stops_at_final():
  rule = schedules.AutomaticMagnitude('plateau', initial=1e3, final=10.0, factor=10.0, patience=2)
  losses = (5.0, 4.0, 4.0, 4.5, 9.0, 8.0, 8.5, 8.1, 7.0, 7.0, 7.0, 7.0)
  trace = [rule.update(loss=loss, kl=0.0) for loss in losses]
  # Improving keeps M; 2 evaluations without a new best divide it by 10; a new M starts a new best.
  assert np.allclose(np.exp(trace), [1e3, 1e3, 1e3, 1e2, 1e2, 1e2, 1e2, 10, 10, 10, 10, 10])
  assert rule.at_final


def test_kl_magnitude_follows_the_estimate_within_its_bounds():
  rule = schedules.AutomaticMagnitude('kl', initial=1e4, final=1.0)
  assert [round(math.exp(rule.update(loss=0.0, kl=kl)), 3) for kl in (-1.0, 2.0, 20.0, float('nan'))] == [
      1.0, round(math.exp(2.0), 3), 1e4, 1e4]


def test_ess_rule_takes_the_largest_magnitude_the_noise_batch_affords():
  """Bounded ratios (q* = N(0, 0.7^2), r <= 1.43) cost no variance at any M: the largest M.
  A 10-D pair 9 nats apart has a few noise points with a huge ratio: M stays small."""
  base = noise.isotropic_gaussian(1)
  y = base.sample(jax.random.PRNGKey(0), (512,))
  bounded = noise.isotropic_gaussian(1, scale=0.7).log_prob(y) - base.log_prob(y)
  assert float(schedules.effective_sample_size_log_magnitude(bounded)) == pytest.approx(math.log(1e4))
  mean, cov = report.gaussian_pair(10, 9.0, seed=10)
  base = noise.isotropic_gaussian(10)
  y = base.sample(jax.random.PRNGKey(0), (512,))
  target = noise.Gaussian.from_covariance(jnp.asarray(mean, jnp.float32), jnp.asarray(cov, jnp.float32))
  heavy = target.log_prob(y) - base.log_prob(y)
  assert float(schedules.effective_sample_size_log_magnitude(heavy)) <= math.log(10.0) + 1e-5



def test_ess_objective_weighs_each_noise_half_by_the_other_halfs_magnitude():
  """Cross-fitting: an M read off the noise it weighs would shrink exactly when a heavy point is
  there, under-weighting the points that keep E_q0[exp(s)] at 1."""
  s_data = jnp.array([2.0, 5.0, 7.0])
  light = jnp.array([-3.0, -2.0, -1.0, -2.5])        # ratios << 1: any M costs no variance
  heavy = jnp.array([-0.5, 0.0, 9.0, 0.2])          # one point with r = e^9 among ratios near 1
  log_m_light = schedules.effective_sample_size_log_magnitude(light)
  log_m_heavy = schedules.effective_sample_size_log_magnitude(heavy)
  assert float(log_m_light) > float(log_m_heavy)
  loss, diagnostics = objectives.make_objective('noisier_nce', magnitude='ess').loss(
      s_data[None], jnp.concatenate([light, heavy])[None])
  expected = 0.5 * (objectives.noisier_nce_loss(s_data, heavy, log_magnitude=log_m_light)[0]
                    + objectives.noisier_nce_loss(s_data, light, log_magnitude=log_m_heavy)[0])
  np.testing.assert_allclose(loss, expected, rtol=1e-6)
  np.testing.assert_allclose(diagnostics['log_magnitude'], 0.5 * (log_m_light + log_m_heavy), rtol=1e-6)


@pytest.mark.parametrize('kwargs, message', [
    (dict(rule='median'), "rule 'median' is not one of kl, plateau"),
    (dict(initial=10.0, final=100.0), 'needs 1 <= final=100.0 <= initial=10.0'),
    (dict(final=0.5), 'needs 1 <= final=0.5'),
    (dict(factor=1.0), 'factor=1.0 must be > 1'),
    (dict(patience=0), 'patience=0 must be >= 1'),
])
def test_bad_automatic_settings_are_refused(kwargs, message):
  with pytest.raises(ValueError, match=message):
    schedules.AutomaticMagnitude(**kwargs)


@pytest.mark.parametrize('kwargs, message', [
    (dict(objective='nce', magnitude='auto'), "magnitude='auto' is noisier_nce's; objective='nce'"),
    (dict(magnitude='automatic'), "magnitude='automatic' must be a finite number > 0, 'auto', 'ess' or"),
    (dict(patience=-1), 'patience=-1 and eval_every=None must be >= 0'),
])
def test_bad_fit_settings_are_refused(kwargs, message):
  with pytest.raises(ValueError, match=message):
    fit.fit_ratio(np.zeros((100, 1), np.float32), noise.isotropic_gaussian(1), **kwargs)


def test_a_runtime_log_magnitude_is_noisier_nce_at_that_magnitude():
  s_data, s_noise = jnp.array([[0.5, 3.0, -1.0]]), jnp.array([[-2.0, 0.1, 4.0]])
  fixed = objectives.make_objective('noisier_nce', magnitude=50.0).loss(s_data, s_noise)[0]
  runtime = objectives.make_objective('noisier_nce', magnitude=1.0).loss(s_data, s_noise, 0, jnp.log(50.0))[0]
  np.testing.assert_allclose(runtime, fixed, rtol=1e-6)
  with pytest.raises(ValueError, match="log_magnitude is noisier_nce's, not nce's"):
    objectives.make_objective('nce').loss(s_data, s_noise, 0, 1.0)


def _chasm(sigma, seed=0):
  x = np.random.default_rng(seed).normal(0, sigma, (4000, 1)).astype(np.float32)
  kl = closed_form.gaussian_kl(np.zeros(1), np.eye(1) * sigma**2, np.zeros(1), np.eye(1))
  return x, kl


@pytest.mark.slow
def test_the_automatic_magnitude_is_larger_on_a_deeper_chasm_and_follows_the_kl():
  """KL 0.32 nat (sigma 0.5) against 6.4 nats (sigma 1e-3) with fit_ratio's default 'auto':
  each evaluation sets M = exp(held-out KL), so the deep chasm trains at a larger M, and the
  shallow one ends near the truth."""
  mean_log_m = {}
  for sigma in (0.5, 1e-3):
    x, kl = _chasm(sigma)
    result = fit.fit_ratio(x, noise.isotropic_gaussian(1), model='gaussian', num_steps=400, batch_size=256,
                           learning_rate=5e-2, eval_every=40)
    log_m = np.log([h['magnitude'] for h in result.history])
    kls = np.array([h['kl'] for h in result.history])
    assert log_m[0] == pytest.approx(math.log(1e4), rel=1e-5)  # the cap, until the first evaluation
    np.testing.assert_allclose(log_m[1:], np.clip(kls[:-1], 0.0, math.log(1e4)), rtol=1e-4, atol=1e-4)
    mean_log_m[sigma] = float(np.mean(log_m[1:]))
    assert result.selected_step == 400  # select=False: the last step
    assert sigma < 0.1 or abs(result.kl - kl) < 0.05, (result.kl, kl)
  assert mean_log_m[1e-3] > mean_log_m[0.5] + 2.0, mean_log_m


def test_selection_keeps_the_best_held_out_step_and_patience_stops_early():
  x, _ = _chasm(0.5)
  result = fit.fit_ratio(x, noise.isotropic_gaussian(1), objective='nce', model='gaussian', num_steps=800,
                         batch_size=256, learning_rate=3e-2, eval_every=20, select=True, patience=3)
  scores = [h['selection_score'] for h in result.history]
  assert result.history[-1]['step'] < 800  # stopped early
  assert result.selected_step == result.history[int(np.argmin(scores))]['step']
  assert len(scores) - 1 - int(np.argmin(scores)) == 3  # three evaluations without a better score
  x_eval = np.asarray(result.log_ratio(x[:10]))  # the kept parameters are usable
  assert np.all(np.isfinite(x_eval))


def test_report_reads_budgets_off_one_run_and_picks_the_grid_on_its_seeds():
  record = {'truth': 1.0, 'history': [{'step': 100, 'kl': 0.5, 'selection_score': 3.0},
                                      {'step': 200, 'kl': 0.9, 'selection_score': 2.0},
                                      {'step': 300, 'kl': 1.4, 'selection_score': 2.5}]}
  assert report.error_at(record, 100, select=True) == pytest.approx(0.5)
  assert report.error_at(record, 300, select=True) == pytest.approx(0.1)  # step 200 is kept
  assert report.error_at(record, 300, select=False) == pytest.approx(0.4)
  assert report.best_fixed({1.0: [0.3, 0.5], 100.0: [0.2, 0.4], 1e4: [0.2, 0.4]}) == 100.0
  mean, cov = report.gaussian_pair(20, 20.0, seed=3)
  assert closed_form.gaussian_kl(mean, cov, np.zeros(20), np.eye(20)) == pytest.approx(20.0, rel=1e-9)
  assert np.all(np.linalg.eigvalsh(cov) > 0)


@pytest.mark.slow
def test_fit_with_the_in_step_magnitude_records_it_and_fits():
  x, kl = _chasm(0.5)
  result = fit.fit_ratio(x, noise.isotropic_gaussian(1), magnitude='ess', model='gaussian', num_steps=400,
                         batch_size=256, learning_rate=1e-2, eval_every=40)
  magnitudes = [h['magnitude'] for h in result.history]
  assert all(1.0 <= m <= 1e4 * (1 + 1e-5) for m in magnitudes), magnitudes
  assert abs(result.kl - kl) < 0.05, (result.kl, kl)
