"""DAMC's reference iteration: each behaviour the reference code has and a wrong port would miss."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nnce_jax import damc, latent_ebm
from nnce_jax import train as engine
from nnce_jax.parallel import DataParallel

SHAPE = (8, 8, 1)


def leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def tiny(**settings):
  options = dict(generator='mlp', latent_dim=2, generator_hidden=(16,), prior_hidden=(8,), sampler='damc',
                 encoder='mlp', embed_dim=8, amortizer_widths=(8,), diffusion_steps=3, posterior_steps=2,
                 prior_steps=2, observation_std=1.0)
  return latent_ebm.make_latent_ebm(SHAPE, **{**options, **settings})


def run_reference(model, num_steps, learning_rates=None):
  """``num_steps`` reference iterations on random images; the state after each."""
  default = {'generator': 1e-2, 'prior': 1e-2, **({'amortizer': 1e-2} if model.damc else {})}
  tx = latent_ebm.reference_optimizer(learning_rates or default,
                                      amortizer_updates=model.damc.updates_per_step if model.damc else 1)
  parallel = DataParallel()
  dispatch = parallel.compile(latent_ebm.make_reference_train_step(model, None, tx))
  state = parallel.put_state(engine.create_train_state(model.init(jax.random.PRNGKey(0)), tx,
                                                       jax.random.PRNGKey(1)))
  images = np.random.default_rng(0).uniform(-1, 1, (num_steps, 1, 8, *SHAPE)).astype(np.float32)
  states = [parallel.host_state(state)]
  for step in range(num_steps):
    state, _ = dispatch(state, parallel.put_batch({'image': images[step]}))
    states.append(parallel.host_state(state))
  return states


@pytest.fixture(scope='module')
def reference_run():  # compiles the whole reference iteration on 4 devices: the slow tier
  model = tiny(amortizer_loss='sum', amortizer_updates=3, target_rate=0.5, target_every=2,
               negatives_from='posterior_start')
  return model, run_reference(model, 4)


@pytest.mark.slow
def test_the_target_amortiser_lags_the_live_one_at_its_rate_and_period(reference_run):
  _, states = reference_run
  live = [s.params['amortizer'] for s in states]
  target = [s.params['amortizer_target'] for s in states]
  for a, b in zip(leaves(target[1]), leaves(live[0])):  # step 1: not yet updated (every 2)
    np.testing.assert_array_equal(a, b)
  # After steps 2 and 4: Q_t <- 0.5 Q + 0.5 Q_t, i.e. 0.5 Q_4 + 0.25 Q_2 + 0.25 Q_0.
  expected = jax.tree.map(lambda q4, q2, q0: 0.5 * q4 + 0.25 * q2 + 0.25 * q0, live[4], live[2], live[0])
  for a, b in zip(leaves(target[4]), leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
  assert not np.allclose(leaves(target[4])[0], leaves(live[4])[0])  # it lags


@pytest.mark.slow
def test_the_amortiser_is_updated_k_times_per_iteration_and_the_others_once(reference_run):
  _, states = reference_run
  is_adam = lambda s: isinstance(s, optax.ScaleByAdamState)  # noqa: E731
  adam = lambda state: [s for s in jax.tree.leaves(state, is_leaf=is_adam) if is_adam(s)][0]  # noqa: E731
  counts = {group: int(adam(states[-1].opt_state[group]).count)
            for group in ('generator', 'prior', 'amortizer')}
  assert counts == {'generator': 4, 'prior': 4, 'amortizer': 12}


@pytest.mark.slow
def test_short_run_chains_train_the_generator_and_prior_by_the_reference_iteration():
  # The baseline sampler under the same optimisers: chains from N(0, I), no amortiser to update.
  states = run_reference(tiny(sampler='short_run', negatives_from='posterior_start'), 2)
  assert set(states[-1].params) == {'generator', 'prior'}
  for group in ('generator', 'prior'):
    assert not np.allclose(leaves(states[-1].params[group])[0], leaves(states[0].params[group])[0])


@pytest.mark.slow
def test_the_reference_amortiser_loss_is_the_conditional_plus_the_prior_loss():
  model = tiny()
  params = model.init(jax.random.PRNGKey(0))['amortizer']
  key = jax.random.PRNGKey(3)
  z = jax.random.normal(key, (16, 2))
  x = jax.random.uniform(jax.random.fold_in(key, 1), (16, *SHAPE), minval=-1, maxval=1)
  conditional_key, prior_key = jax.random.split(key)
  term = lambda p, k, on_prior: damc._denoising_loss(  # noqa: E731
      model.damc.amortizer, p, jax.random.split(k, 3), z, x, jnp.full(16, on_prior), -5.1, 9.8)
  total = lambda p: damc.denoising_loss(model.damc.amortizer, p, key, z, x, combine='sum')  # noqa: E731

  @jax.jit
  def everything(p):  # one compilation
    prior_mlp = lambda f: jax.grad(f)(p)['params']['prior_mlp']  # noqa: E731
    return (total(p), term(p, conditional_key, False), term(p, prior_key, True), prior_mlp(total),
            prior_mlp(lambda q: term(q, prior_key, True)))

  summed, conditional, prior, full, prior_only = everything(params)
  np.testing.assert_allclose(summed, conditional + prior, rtol=1e-6)
  # Every update moves the prior embedding with the full batch: its gradient is the prior term's.
  for a, b in zip(leaves(full), leaves(prior_only)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-8)
  with pytest.raises(ValueError, match="combine='half' is not one of mixed, sum"):
    damc.denoising_loss(model.damc.amortizer, params, key, z, x, combine='half')


@pytest.mark.slow
def test_training_chains_start_at_the_target_and_evaluation_at_the_live_amortiser():
  model = tiny(target_rate=0.1)
  params = model.init(jax.random.PRNGKey(0))
  params['amortizer_target'] = jax.tree.map(lambda p: p + 0.5, params['amortizer'])
  key, x = jax.random.PRNGKey(2), jnp.zeros((4, *SHAPE))
  np.testing.assert_array_equal(model.initial_posterior(key, params, x, training=True),
                                model.damc.sample(params['amortizer_target'], key, x))
  np.testing.assert_array_equal(model.initial_posterior(key, params, x),
                                model.damc.sample(params['amortizer'], key, x))


@pytest.mark.slow
@pytest.mark.parametrize('negatives_from', ['posterior_start', 'prior'])
def test_mle_negatives_start_where_the_reference_starts_them(negatives_from):
  model = tiny(prior_step_size=1e-6, negatives_from=negatives_from)  # the negatives stay at their start
  params = model.init(jax.random.PRNGKey(0))
  key = jax.random.PRNGKey(4)
  batch = {'image': jnp.zeros((4, *SHAPE)), 'noise': jnp.zeros((4, 1, 2))}
  z, z0 = jax.random.normal(key, (4, 2)), jax.random.normal(jax.random.fold_in(key, 1), (4, 2)) + 3
  _, metrics = model.generator_prior_loss(None, params, key, batch, z, z0)
  start = z0 if negatives_from == 'posterior_start' else model.damc.sample(params['amortizer'],
                                                                           jax.random.split(key)[0], None, 4)
  expected = jnp.mean(model.log_ratio(params, start)) - jnp.mean(model.log_ratio(params, z))
  np.testing.assert_allclose(metrics['prior_loss'], expected, rtol=1e-5)


@pytest.mark.slow
def test_the_reference_output_layer_reads_the_step_and_the_image():
  z, embedding = jnp.ones((3, 2)), jax.random.normal(jax.random.PRNGKey(0), (3, 8))
  for output_layer in ('dense', 'concat_squash'):
    denoiser = damc.Denoiser(2, (8,), time_features=16, output_layer=output_layer)
    params = denoiser.init(jax.random.PRNGKey(1), z, jnp.zeros(3), embedding)
    out = lambda e, t: denoiser.apply(params, z, jnp.full(3, t), e)  # noqa: E731
    if output_layer == 'dense':  # zero-initialised: eps_hat = z_t whatever the context
      np.testing.assert_array_equal(out(embedding, 0.0), z)
      np.testing.assert_array_equal(out(2 * embedding, 3.0), z)
    else:
      assert not np.allclose(out(embedding, 0.0), out(2 * embedding, 0.0))
      assert not np.allclose(out(embedding, 0.0), out(embedding, 3.0))


def test_reference_sizes_and_prior_activation():
  encoder = latent_ebm.ReferenceEncoder()
  shapes = jax.eval_shape(lambda: encoder.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1))))
  assert sum(leaf.size for leaf in jax.tree.leaves(shapes)) == 20_455_168  # as the reference's Encoder_mnist
  assert float(latent_ebm.PRIOR_ACTIVATIONS['leaky_relu'](jnp.float32(-1.0))) == pytest.approx(-0.2)
  with pytest.raises(ValueError, match="encoder='resnet' is not one of mlp, conv, reference"):
    tiny(encoder='resnet')


def test_reference_optimizer_clips_each_network_alone_and_decays_every_1000_iterations():
  tx = latent_ebm.reference_optimizer({'a': 1e-3, 'b': 1e-3}, clip_norm=1.0, decay_every=10)
  params = {'a': jnp.zeros(2), 'b': jnp.zeros(2)}
  grads = {'a': jnp.full(2, 1e6), 'b': jnp.array([0.3, -0.4])}  # a's norm would scale b's under a global clip
  updates, _ = tx.update(grads, tx.init(params), params)
  alone = optax.adam(1e-3, b1=0.5)
  np.testing.assert_allclose(updates['b'], alone.update(grads['b'], alone.init(params['b']))[0], rtol=1e-6)

  def step(state, _):
    updates, state = tx.update({'b': grads['b']}, state, params)
    return state, updates['b'][0]

  _, first_components = jax.lax.scan(step, tx.init(params), None, length=21)
  # Adam's steps are ~ the rate for a constant gradient: 1e-3, then x0.99 after 10 and 20 updates.
  np.testing.assert_allclose(-np.asarray(first_components)[[0, 10, 20]], [1e-3, 0.99e-3, 0.99 ** 2 * 1e-3],
                             rtol=1e-3)
