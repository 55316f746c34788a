"""Score identity distillation against closed forms: a Gaussian teacher, whose optimal one-step
generator is known, and the real-data terms' identities."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import linen as nn

from nnce_jax import ddpm, sid
from nnce_jax import train as engine

MEAN, STD = np.array([1.5, -0.5], np.float32), 0.7
SCHEDULE = ddpm.linear_schedule(1000)


class GaussianEpsilon(nn.Module):
  """The exact noise predictor of ``N(mean, std^2 I)`` data: ``eps*(x_n) = sqrt(1 - abar) (x_n -
  sqrt(abar) mean) / (abar std^2 + 1 - abar)``, with ``mean`` and ``log std`` learned."""
  mean: tuple = (0.0, 0.0)
  std: float = 1.0

  @nn.compact
  def __call__(self, x, n):
    mean = self.param('mean', lambda _: jnp.asarray(self.mean, jnp.float32))
    log_std = self.param('log_std', lambda _: jnp.log(jnp.full(x.shape[-1:], self.std, jnp.float32)))
    abar = ddpm.alpha_cumprod_at(SCHEDULE, n)[:, None]
    return jnp.sqrt(1 - abar) * (x - jnp.sqrt(abar) * mean) / (abar * jnp.exp(2 * log_std) + 1 - abar)


def affine_generator(params, z):
  return params['scale'] * z + params['shift']


def distil(num_steps, hyper=sid.Hyper(), discriminator=None):
  """SiD from the exact teacher of ``N(MEAN, STD^2 I)``: an affine generator that starts at
  ``N(0, 0.3^2 I)``, the fake score a Gaussian denoiser initialised at the teacher."""
  exact = GaussianEpsilon(tuple(MEAN), STD)
  teacher_params = exact.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)), jnp.zeros(1))
  networks = sid.Networks(teacher=lambda x, n: exact.apply(teacher_params, x, n), fake_score=exact.apply,
                          generator=affine_generator, discriminator=discriminator)
  params = {'generator': {'scale': jnp.full(2, 0.3), 'shift': jnp.zeros(2)}, 'fake_score': teacher_params}
  optimizers = {'generator': optax.adam(1e-2), 'fake_score': optax.adam(3e-2)}
  if discriminator is not None:
    params['discriminator'] = {'w': jnp.zeros(2), 'b': jnp.zeros(())}
    optimizers['discriminator'] = optax.adam(1e-2)
  tx = engine.per_group(optimizers)
  update = sid.make_update(networks, SCHEDULE, tx, hyper)

  def step(carry, key):
    params, opt_state = carry
    data_key, batch_key = jax.random.split(key)
    data = MEAN + STD * jax.random.normal(data_key, (256, 2))
    params, opt_state, metrics = update(params, opt_state, sid.sample_batch(batch_key, data, hyper, SCHEDULE))
    return (params, opt_state), metrics

  run = jax.jit(lambda carry: jax.lax.scan(step, carry, jax.random.split(jax.random.PRNGKey(1), num_steps)))
  (params, _), metrics = run((params, tx.init(params)))
  return params, jax.tree.map(lambda m: m[-1], metrics)


def errors(params):
  g = params['generator']
  return float(np.max(np.abs(g['shift'] - MEAN))), float(np.max(np.abs(np.abs(g['scale']) - STD)))


def test_sid_moves_a_wrong_generator_towards_the_gaussian_teacher():
  start = errors({'generator': {'scale': np.full(2, 0.3), 'shift': np.zeros(2)}})
  params, metrics = distil(400)
  end = errors(params)
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert end[0] < 0.2 * start[0] and end[1] < 0.3 * start[1], (start, end)


def linear_discriminator(params, x, n):
  return x @ params['w'] + params['b']


@pytest.mark.slow
@pytest.mark.parametrize('real_term', ['adversarial', 'nce', 'noisier_nce'])
def test_a_real_data_term_trains_the_discriminator_and_keeps_the_generator_moving(real_term):
  magnitude = 50.0 if real_term == 'noisier_nce' else 1.0
  hyper = sid.Hyper(real_term=real_term, magnitude=magnitude, real_weight=1e-2)
  params, metrics = distil(200, hyper, linear_discriminator)
  assert np.abs(np.asarray(params['discriminator']['w'])).max() > 0  # it learned to tell them apart
  assert np.isfinite(float(metrics['discriminator_loss']))
  assert np.isfinite(float(metrics['generator_real_loss']))
  start = errors({'generator': {'scale': np.full(2, 0.3), 'shift': np.zeros(2)}})
  assert errors(params)[0] < 0.5 * start[0]


def test_the_noisier_nce_term_at_m_1_is_the_nce_term():
  key = jax.random.PRNGKey(3)
  s_data, s_generated = jax.random.normal(key, (2, 64)) * 2
  nce, noisier = sid.Hyper(real_term='nce'), sid.Hyper(real_term='noisier_nce', magnitude=1.0)
  for fn in (lambda h, a, b: sid.real_data_losses(h, a, b)[0],
             lambda h, a, b: jnp.mean(sid.generator_real_loss(h, b))):
    np.testing.assert_allclose(fn(nce, s_data, s_generated), fn(noisier, s_data, s_generated), rtol=1e-6)
    grad = lambda h: jax.grad(lambda a, b: fn(h, a, b), argnums=(0, 1))(s_data, s_generated)  # noqa: E731
    for a, b in zip(grad(nce), grad(noisier)):
      np.testing.assert_allclose(a, b, rtol=1e-6)
  # A larger M moves the generator's term: it asks for a log ratio above log M.
  larger = sid.Hyper(real_term='noisier_nce', magnitude=50.0)
  assert float(jnp.mean(sid.generator_real_loss(larger, s_generated))) > float(
      jnp.mean(sid.generator_real_loss(nce, s_generated)))


def test_the_generator_starts_as_the_teachers_one_step_denoiser():
  exact = GaussianEpsilon(tuple(MEAN), STD)
  params = exact.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)), jnp.zeros(1))
  z = jax.random.normal(jax.random.PRNGKey(1), (4096, 2))
  x = sid.one_step_generator(exact.apply, SCHEDULE, init_sigma=2.5)(params, z)
  # E[x0 | x0 + sigma eps = sigma z] of N(MEAN, STD^2) data, read at pure noise sigma z:
  # MEAN sigma^2 / (STD^2 + sigma^2) + sigma STD^2 / (STD^2 + sigma^2) z.
  shrink = 2.5 ** 2 + STD ** 2
  np.testing.assert_allclose(np.mean(x, 0), MEAN * 2.5 ** 2 / shrink, atol=0.01)
  np.testing.assert_allclose(np.std(x, 0), 2.5 * STD ** 2 / shrink, rtol=0.05)
  levels = sid.generator_sigma(sid.Hyper(), jnp.asarray([0.0, 0.8]))
  np.testing.assert_allclose(levels, [0.002, 24.41], rtol=1e-3)


@pytest.mark.parametrize('settings, message', [
    ({'real_term': 'gan'}, "real_term='gan' is not one of none, adversarial, nce, noisier_nce"),
    ({'real_term': 'noisier_nce', 'magnitude': 0.0}, 'magnitude=0.0 must be > 0'),
    ({'real_term': 'noisier_nce', 'magnitude': -5.0}, 'magnitude=-5.0 must be > 0'),
])
def test_bad_settings_are_refused(settings, message):
  with pytest.raises(ValueError, match=message.replace('(', r'\(')):
    sid.check_hyper(sid.Hyper(**settings))


def test_the_report_judges_both_claims_by_paired_seeds():
  from experiments.report import one_step as report

  def runs(finals, reach_at=600):
    """Curves evaluated every 100 of 1,000 iterations, 1 above ``final`` before ``reach_at``
    (one per seed, or one for all)."""
    step = np.arange(100, 1001, 100)
    reach = np.broadcast_to(reach_at, len(finals))
    return [{'step': step, 'judged': np.where(step >= r, f, f + 1.0), 'budget': 1000}
            for f, r in zip(finals, reach)]
  # N²CE ends lower than both, and its trailing mean is at the adversarial final value from the
  # start, where the adversarial run's gets there at 1,000 (the window's 5 evaluations after 600;
  # 900 on one seed, so the paired differences are not all equal).
  curves = {'none': runs([0.5] * 4), 'adversarial': runs([0.30, 0.31, 0.29, 0.30], [600, 600, 500, 600]),
            'nce': runs([0.30, 0.32, 0.31, 0.30]),
            'noisier_nce': runs([0.20, 0.21, 0.19, 0.22], reach_at=100)}
  assert str(report.claim_a(curves, 'sliced W2')[1]) == 'reproduced'
  rows, verdict = report.claim_b(curves)
  assert str(verdict) == 'reproduced' and 'reached it on 4 of 4 seeds' in rows[0][-1]
  # Ties: no claim.
  tied = {name: runs([0.30, 0.31, 0.29, 0.30]) for name in curves}
  assert str(report.claim_a(tied, 'sliced W2')[1]).startswith('inconclusive')
  # Worse at the end, never at the adversarial value: refuted.
  curves['noisier_nce'] = runs([0.40, 0.41, 0.42, 0.40])
  assert report.claim_a(curves, 'sliced W2')[1].verdict == report.claim_b(curves)[1].verdict == 'refuted'
  # The final quality is the mean of the last WINDOW evaluations, not the last one alone.
  assert report.final({'judged': np.array([9.0, 1.0, 2.0, 3.0, 4.0, 5.0])}) == 3.0
