"""The image-density benchmark's parts against closed forms: bits/dim, the fitted noises, AIS's
bracket of a known log Z, and N²CE with log M far past float32."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnce_jax import ais, copula, noise, objectives
from nnce_jax import bits_per_dim as bpd
from tests.helpers import assert_refused, write_idx


def test_a_density_uniform_on_the_unit_cube_has_eight_bits_per_dim():
  # x ~ U[0, 1]^D is y = logit(alpha + (1 - 2 alpha) x) with density sigmoid(y) sigmoid(-y) / (1 - 2 alpha):
  # log p_x = 0, so bits/dim = log2(256) = 8 at every x.
  x = jax.random.uniform(jax.random.PRNGKey(0), (50, 784), minval=0.001, maxval=0.999)
  y = bpd.to_logit(x)
  log_p_y = jnp.sum(jax.nn.log_sigmoid(y) + jax.nn.log_sigmoid(-y) - math.log1p(-2 * bpd.ALPHA), -1)
  np.testing.assert_allclose(bpd.bits_per_dim(log_p_y, x), 8.0, atol=1e-4)
  np.testing.assert_allclose(bpd.from_logit(y), x, atol=1e-5)


def test_a_standard_gaussian_in_logit_space_at_mid_grey_by_hand():
  # x = 1/2: y = 0, log N(0; 0, I) = -D/2 log 2 pi, log |dy/dx| = D (log(1 - 2 alpha) + 2 log 2), so
  # bits/dim = 8 - 2 + log2(2 pi) / 2 - log2(1 - 2 alpha), whatever D.
  by_hand = 6 + 0.5 * math.log2(2 * math.pi) - math.log2(1 - 2 * bpd.ALPHA)
  for dim in (1, 784):
    x = jnp.full((dim,), 0.5)
    log_p_y = noise.isotropic_gaussian(dim).log_prob(bpd.to_logit(x))
    assert float(bpd.bits_per_dim(log_p_y, x)) == pytest.approx(by_hand, abs=1e-5)
  assert float(bpd.nats_to_bits_per_dim(784 * math.log(2), 784)) == pytest.approx(1.0)


def test_dequantized_pixels_stay_in_their_bin():
  pixels = jnp.arange(256, dtype=jnp.uint8)
  x = bpd.dequantize(jax.random.PRNGKey(1), pixels)
  assert bool(jnp.all((x * 256 >= pixels) & (x * 256 < pixels.astype(jnp.float32) + 1)))


def test_fit_gaussian_is_the_closed_form_mle_and_refuses_a_degenerate_sample():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(5000, 3)) @ np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 0.2]]) + 2.0
  fitted = noise.fit_gaussian(jnp.asarray(x))
  covariance = np.asarray(fitted.scale_tril @ fitted.scale_tril.T)
  np.testing.assert_allclose(np.asarray(fitted.mean), x.mean(0), atol=1e-5)
  np.testing.assert_allclose(covariance, np.cov(x.T, ddof=0), atol=1e-4)
  widened = noise.Gaussian(fitted.mean, 1.1 * fitted.scale_tril)
  assert float(jnp.mean(fitted.log_prob(x))) > float(jnp.mean(widened.log_prob(x)))  # the maximum
  with pytest.raises(ValueError, match='not positive definite: pass ridge > 0'):
    noise.fit_gaussian(jnp.ones((10, 3)))


@pytest.mark.slow
def test_gaussian_copula_is_normalised_and_beats_the_gaussian_on_skewed_marginals():
  key = jax.random.PRNGKey(0)
  skewed = jnp.exp(0.7 * jax.random.normal(key, (8000, 1)))  # a log-normal marginal
  fitted, losses = copula.fit_gaussian_copula(key, skewed, num_steps=300)
  assert float(losses[-1]) < float(losses[0])
  held_out = jnp.exp(0.7 * jax.random.normal(jax.random.PRNGKey(1), (8000, 1)))
  gaussian = noise.fit_gaussian(skewed)
  assert float(jnp.mean(fitted.log_prob(held_out))) > float(jnp.mean(gaussian.log_prob(held_out))) + 0.3
  grid = jnp.linspace(-30.0, 60.0, 200_001)
  density = jnp.exp(jax.jit(lambda c, y: c.log_prob(y))(fitted, grid[:, None]))
  assert float(jnp.trapezoid(density, grid)) == pytest.approx(1.0, abs=2e-3)
  samples = jax.jit(lambda c, k: c.sample(k, (4000,)))(fitted, key)
  np.testing.assert_allclose(np.median(samples, 0), np.median(skewed, 0), rtol=0.1)


def test_a_copula_with_identity_splines_is_its_gaussian():
  rng = np.random.default_rng(0)
  pairs = jnp.asarray(rng.normal(size=(500, 2)) @ np.array([[1.0, 0.6], [0.0, 0.5]]), jnp.float32)
  identity = copula.GaussianCopula(jnp.zeros(2), jnp.ones(2), jnp.zeros((2, 49)), noise.fit_gaussian(pairs))
  np.testing.assert_allclose(identity.log_prob(pairs), identity.gaussian.log_prob(pairs), rtol=1e-5)
  scaled = copula.GaussianCopula(jnp.ones(2), jnp.full(2, 2.0), jnp.zeros((2, 49)), noise.fit_gaussian(pairs))
  # y = 1 + 2 u with u Gaussian: log q0(y) = log N(u) - 2 log 2.
  np.testing.assert_allclose(scaled.log_prob(1 + 2 * pairs), scaled.gaussian.log_prob(pairs) - 2 * np.log(2),
                             rtol=1e-5)


def test_ais_and_its_reverse_bracket_a_known_log_z_in_784_dimensions():
  # q0 = N(0, I), s = log N(x; 0.05, 0.8^2 I) - log q0 + c: Z = e^c exactly, KL(pi || q0) = 35 nats.
  dim, c = 784, 3.7
  base, target = noise.isotropic_gaussian(dim), noise.isotropic_gaussian(dim, scale=0.8, mean=0.05)
  log_ratio = lambda x: target.log_prob(x) - base.log_prob(x) + c  # noqa: E731
  forward = jax.jit(lambda k: ais.annealed_importance_sampling(
      k, log_ratio, base, num_chains=32, num_temperatures=500))(jax.random.PRNGKey(0))
  starts = target.sample(jax.random.PRNGKey(2), (32,))
  reverse = jax.jit(lambda k: ais.reverse_annealed_importance_sampling(
      k, log_ratio, base, starts, num_temperatures=500))(jax.random.PRNGKey(1))
  for result in (forward, reverse):
    assert abs(float(result.log_z) - c) < 3 * float(result.std_error) + 0.05
    assert 0.3 < float(result.acceptance_rate) < 0.95  # the step size adapted
    assert float(result.effective_sample_size) > 4
  assert float(forward.log_z) < c + 0.5 and float(reverse.log_z) > c - 0.5
  np.testing.assert_allclose(np.mean(np.asarray(forward.samples)), 0.05, atol=0.02)  # model samples
  np.testing.assert_allclose(np.std(np.asarray(forward.samples)), 0.8, atol=0.03)


def test_preconditioned_ais_handles_a_noise_with_scales_a_hundred_fold_apart():
  # q0 = N(0, diag(0.1 .. 10)^2) and the model its 0.9-scaled copy: Z = e^c. Unpreconditioned HMC
  # would need a step below 0.1 and thousands of steps to move the widest coordinate.
  dim, c = 50, -2.0
  scale = jnp.geomspace(0.1, 10.0, dim)
  base = noise.DiagonalGaussian(jnp.zeros(dim), scale)
  target = noise.DiagonalGaussian(jnp.zeros(dim), 0.9 * scale)
  log_ratio = lambda x: target.log_prob(x) - base.log_prob(x) + c  # noqa: E731
  forward = jax.jit(lambda k: ais.annealed_importance_sampling(
      k, log_ratio, base, num_chains=32, num_temperatures=200, step_size=0.5,
      preconditioner=jnp.diag(scale)))(jax.random.PRNGKey(0))
  assert abs(float(forward.log_z) - c) < 3 * float(forward.std_error) + 0.05
  np.testing.assert_allclose(np.std(np.asarray(forward.samples), 0)[-5:] / scale[-5:], 0.9, atol=0.25)


def test_sigmoid_temperatures_run_from_zero_to_one():
  b = ais.sigmoid_temperatures(100)
  assert b.shape == (101,) and float(b[0]) == 0.0 and float(b[-1]) == pytest.approx(1.0)
  assert bool(jnp.all(jnp.diff(b) > 0))


def test_noisier_nce_given_log_m_matches_m_and_tends_to_nwj_past_float32():
  key = jax.random.PRNGKey(0)
  s_data = 3 * jax.random.normal(key, (64,))
  s_noise = jax.random.normal(jax.random.fold_in(key, 1), (64,)) - 2
  d, n = np.asarray(s_data, np.float64), np.asarray(s_noise, np.float64)
  for m in (1.0, 100.0, 1e12):  # Eq. 5 in float64 numpy, term by term
    reference = np.mean(np.logaddexp(0, np.log(m) - d)) + m * np.mean(np.logaddexp(0, n - np.log(m)))
    np.testing.assert_allclose(objectives.noisier_nce_loss(s_data, s_noise, m)[0], reference, rtol=1e-5)
    by_log = objectives.noisier_nce_loss(s_data, s_noise, log_magnitude=math.log(m))[0]
    np.testing.assert_allclose(by_log, reference, rtol=1e-5)
  # log M = 480 (M = e^480, beyond float32): L - log M -> NWJ's -E[s] + E[exp(s)], gradients finite.
  loss = lambda d, n: objectives.noisier_nce_loss(d, n, log_magnitude=480.0)[0]  # noqa: E731
  nwj = objectives.nwj_loss(s_data, s_noise)[0]
  np.testing.assert_allclose(loss(s_data, s_noise) - 480.0, nwj, atol=2e-3)
  grads = jax.grad(loss, argnums=(0, 1))(s_data, s_noise)
  np.testing.assert_allclose(grads[1], jnp.exp(s_noise) / 64, rtol=1e-4)
  huge = jnp.full((4,), 1e4)
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.grad(loss, argnums=(0, 1))(huge, huge))
  with pytest.raises(ValueError, match='one of magnitude and log_magnitude'):
    objectives.noisier_nce_loss(s_data, s_noise, 10.0, log_magnitude=2.0)


@pytest.mark.parametrize('field, value, message', [
    ('noise.name', 'maf', 'config.noise.name=.*allowed values: gaussian, copula, flow'),
    ('noise.flow_bins', 1, r'config.noise.flow_bins=1 is invalid; it must be an integer in \[2, inf\)'),
    ('model.name', 'gaussian', 'config.model.name=.*allowed values: resmlp, mlp'),
    ('model.num_blocks', 0, r'config.model.num_blocks=0 is invalid; it must be an integer in \[1, inf\)'),
    ('ais.num_chains', 7000, 'config.ais.num_chains=7000 is invalid; reverse chains start at validation'),
    ('ais.step_size', 0.0, r'config.ais.step_size=0.0 is invalid; it must be a number in \(0'),
])
def test_bad_image_density_config_names_the_field(field, value, message):
  from experiments.configs import image_density
  assert_refused(image_density.get_config(), field, value, message)


def test_log_magnitude_with_a_schedule_is_refused():
  from experiments.configs import image_density
  from experiments.core.checks import ConfigError
  from experiments.run.training import check_config
  config = image_density.get_config()
  config.objective.update(log_magnitude=500.0, magnitude_schedule='cosine')
  with pytest.raises(ConfigError, match='log_magnitude=500.0 is invalid with objective.magnitude_schedule'):
    check_config(config, num_devices=4)


@pytest.mark.slow
@pytest.mark.parametrize('noise_name', ['gaussian', 'flow'])
def test_image_density_runs_end_to_end_on_small_generated_images(tmp_path, monkeypatch, noise_name):
  from experiments.configs import image_density
  from experiments.run.training import run
  source = tmp_path / 'idx'
  source.mkdir()
  rng = np.random.default_rng(0)
  for prefix, n in (('train', 400), ('t10k', 100)):
    blobs = rng.integers(0, 256, (n, 28, 28)) * (rng.random((n, 28, 28)) < 0.3)  # sparse, like clothes
    write_idx(source / f'{prefix}-images-idx3-ubyte.gz', blobs)
    write_idx(source / f'{prefix}-labels-idx1-ubyte.gz', np.arange(n) % 10)
  monkeypatch.setenv('NNCE_FASHION_MNIST_DIR', str(source))
  config = image_density.get_config()
  config.data.update(num_validation=100, num_test=100)
  config.model.update(width=32, num_blocks=1)
  config.objective.update(num_stages=2, log_magnitude=300.0)  # with the flow: TRE in its latent space
  config.noise.update(name=noise_name, flow_layers=2, flow_hidden=8, flow_steps=20,
                      cache_dir=str(tmp_path / 'q0'))
  config.train.update(num_steps=20, batch_size=32, steps_per_dispatch=10, sync_every=10, log_every=10,
                      eval_every=10, checkpoint_every=20)
  config.ais.update(num_chains=8, num_temperatures=10, num_bridge_samples=200)
  summary = run(config, str(tmp_path / 'run'))
  density = summary['density']
  # 300 training images in 784 dimensions: q0's covariance is degenerate (ridge only), so only finite.
  assert math.isfinite(density['bits_per_dim']) and math.isfinite(density['noise_bits_per_dim'])
  assert density['log_magnitude'] == 300.0 and density['ais_temperatures'] == 10
  assert (tmp_path / 'run' / 'samples.png').exists()
  assert len(list((tmp_path / 'q0').glob('flow_*.msgpack'))) == (noise_name == 'flow')
  written = json.load(open(tmp_path / 'run' / 'summary.json'))
  assert written['density']['bits_per_dim'] == density['bits_per_dim']
  from experiments.report import image_density as report  # log Z again with more temperatures
  cell = {'runs': [{**written, 'run_dir': str(tmp_path / 'run')}]}
  report.reevaluate(cell, 12)
  assert cell['runs'][0]['density']['ais_temperatures'] == 12
  assert (tmp_path / 'run' / 'density_t12.json').exists()
  assert math.isfinite(cell['runs'][0]['density']['bits_per_dim'])


def _cell(bits, wall=100.0, bracket=0.001):
  density = dict(bits_per_dim=0.0, bits_per_dim_se=0.001, bits_per_dim_reverse=0.0, bits_per_dim_bridge=0.0,
                 noise_bits_per_dim=4.2, noise_bits_per_dim_se=0.01, bracket_bits_per_dim=bracket,
                 ais_effective_sample_size=40.0, ais_chains=64, accuracy=0.9, evaluation_wall_s=10.0,
                 log_ratio_test={'mean': 8.0, 'min': -5.0, 'max': 30.0, 'std': 3.0},
                 log_ratio_noise_mean=-7.0,
                 log_magnitude=0.0, noise_above_log_magnitude=0.01, ais_acceptance=0.65,
                 ais_temperatures=1000,
                 log_z={'ais': 0.1, 'reverse_ais': 0.2, 'bridge': 0.15},
                 log_z_se={'ais': 0.1, 'reverse_ais': 0.1, 'bridge': 0.1})
  return {'runs': [{'density': {**density, 'bits_per_dim': b, 'bits_per_dim_reverse': b + bracket},
                    'wall_time_s': wall, 'steps': 3000, 'run_dir': '/nonexistent'} for b in bits],
          'wall_s': 3 * wall}


def test_the_reports_import_side_by_side():
  # This report's flags (--seeds, as the samplers report has) are defined only when it runs as a command.
  from experiments.report import image_density, samplers  # noqa: F401


def test_image_density_verdicts_follow_the_paired_intervals():
  from experiments.report import image_density as report
  from experiments.report.verdicts import INCONCLUSIVE, REFUTED, REPRODUCED
  key = lambda v: ('fashion_mnist', 'gaussian', v)  # noqa: E731
  cells = {key('nce'): _cell([4.10, 4.12, 4.11]),
           key('noisier_nce'): _cell([4.05, 4.08, 4.06], wall=90.0),
           key('tre'): _cell([4.00, 4.03, 4.02], wall=400.0),
           key('noisier_tre'): _cell([4.01, 4.02, 4.04], wall=400.0, bracket=0.05)}
  found = {v.claim[:3]: v for v in report.verdicts(cells)}
  assert found['(a)'].verdict == REPRODUCED  # N²CE lower on every seed, by ~0.05
  assert found['(b)'].verdict == INCONCLUSIVE  # +0.007 [-0.03, 0.04]
  assert found['(c)'].verdict == REPRODUCED and found['(c)'].numbers['cost'] == pytest.approx(0.225)
  assert 'within the AIS bracket' not in found['(a)'].evidence
  assert found['(d)'].verdict == INCONCLUSIVE and 'fewer than two noises' in found['(d)'].evidence
  flow = lambda v: ('fashion_mnist', 'flow', v)  # noqa: E731
  cells[flow('nce')], cells[flow('noisier_nce')] = _cell([3.0, 3.1, 3.2]), _cell([3.0, 3.09, 3.21])
  assert report.verdicts(cells)[3].verdict == REPRODUCED  # a 0.05 gain, then ~0 with the flow
  cells[flow('noisier_nce')] = _cell([2.9, 3.0, 3.1])
  assert report.verdicts(cells)[3].verdict == REFUTED  # the flow gains 0.1, more than 0.05
  cells[key('noisier_nce')] = _cell([4.15, 4.16, 4.17], wall=90.0)
  assert {v.claim[:3]: v for v in report.verdicts(cells)}['(a)'].verdict == REFUTED
  cells[key('nce')] = _cell([4.10, 4.12, 4.11], bracket=0.2)  # N²CE's 0.05 loss is inside NCE's bracket
  assert 'within the AIS bracket, 0.2000' in {v.claim[:3]: v for v in report.verdicts(cells)}['(a)'].evidence
  assert report.verdicts(cells)[3].verdict == INCONCLUSIVE  # N²CE now loses with Gaussian noise
  text = report.render(cells, report.verdicts(cells), quick=False, total_s=600.0, figures='image_density',
                       failed={key('nwj'): 'Diverged: non-finite train_grad_norm at step 1008'})
  assert '- Fashion-MNIST, full-covariance Gaussian noise, NWJ: Diverged: non-finite' in text
  assert '(bracket > 0.02)' in text and 'q0 alone: **4.2000**' in text and 'All runs: 10 min' in text
  # q0 4.2, NCE 4.11 on average: (4.2 - 4.11) * 784 ln 2 = 48.9 nats per image.
  # N²CE 4.16: 21.7 nats, 27.2 fewer than NCE.
  assert "Gain over NCE's 48.9 nats per image: N²CE, M = 100 -27.2" in text
