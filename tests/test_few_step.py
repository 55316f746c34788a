"""The DDPM teacher and the T-step sampler cut from it, against Gaussian data, where the
optimal noise predictor is known: for x ~ N(0, s^2 I), E[eps | x_n] = sqrt(1 - abar) x_n / v,
v = abar s^2 + 1 - abar."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnce_jax import ddpm, few_step

STD = 0.5
SCHEDULE = ddpm.linear_schedule()


def exact_epsilon(x, n):
  abar = ddpm.alpha_cumprod_at(SCHEDULE, n)[:, None]
  return jnp.sqrt(1 - abar) * x / (abar * STD ** 2 + 1 - abar)


def test_ancestral_sampling_with_the_exact_noise_predictor_recovers_the_data_variance():
  sample = jax.jit(lambda key: ddpm.ancestral_sample(exact_epsilon, key, (20000, 2), SCHEDULE))
  x = sample(jax.random.PRNGKey(0))
  np.testing.assert_allclose(np.var(x, 0), STD ** 2, rtol=0.04)
  np.testing.assert_allclose(np.mean(x, 0), 0.0, atol=0.02)


def test_denoising_loss_at_the_exact_predictor_is_the_posterior_variance_of_the_noise():
  x = STD * jax.random.normal(jax.random.PRNGKey(1), (200000, 2))
  loss = ddpm.denoising_loss(exact_epsilon, jax.random.PRNGKey(2), x, SCHEDULE)
  abar = np.asarray(SCHEDULE.alphas_cumprod, np.float64)
  minimum = np.mean(1 - (1 - abar) / (abar * STD ** 2 + 1 - abar))  # E_n Var(eps | x_n)
  np.testing.assert_allclose(loss, minimum, rtol=0.02)
  zero = ddpm.denoising_loss(lambda x, n: jnp.zeros_like(x), jax.random.PRNGKey(2), x, SCHEDULE)
  assert loss < 0.5 * zero  # predicting nothing costs Var(eps) = 1


def test_var_schedule_matches_the_reference_and_ends_at_data():
  # DxMI's T = 10 levels, printed in its trainer: FastDPM's bound on c binds.
  np.testing.assert_allclose(few_step.var_noise_levels(SCHEDULE, 10),
                             [1e-4, 1.1025e-2, 4e-2, 8.7025e-2, 0.1521, 0.235225, 0.3364, 0.455625, 0.5929,
                              0.748225], rtol=1e-4)
  eta = few_step.var_noise_levels(SCHEDULE, 100)  # enough steps: reaches the teacher's abar_N
  np.testing.assert_allclose(np.prod(1 - eta), SCHEDULE.alphas_cumprod[-1], rtol=1e-3)
  for num_steps in (1, 4, 10, 100):
    schedule = few_step.var_schedule(SCHEDULE, num_steps)
    steps = np.asarray(schedule.teacher_steps)
    assert np.all(np.diff(steps) < 0) and (steps[-1] == 0.0 or num_steps == 1), steps
    assert schedule.sigma[-1] == pytest.approx(few_step.LAST_SIGMA)
  with pytest.raises(ValueError, match='at least 1 step'):
    few_step.var_schedule(SCHEDULE, 0)


@pytest.mark.parametrize('num_steps', [4, 10])
def test_few_step_sampler_follows_its_linear_gaussian_recursion(num_steps):
  """With the exact predictor each step is x' = k x + sigma xi, so Var x' = k^2 Var x + sigma^2;
  the sampler must match that (it loses variance: the step ignores Var(x_0 | x))."""
  schedule = few_step.var_schedule(SCHEDULE, num_steps)
  states = few_step.sample_trajectory(exact_epsilon, jnp.log(schedule.sigma), schedule, jax.random.PRNGKey(3),
                                      (40000, 2))
  variance = 1.0
  for i in range(num_steps):
    abar = float(ddpm.alpha_cumprod_at(SCHEDULE, schedule.teacher_steps[i:i + 1])[0])
    k = schedule.x_scale[i] + schedule.epsilon_scale[i] * np.sqrt(1 - abar) / (abar * STD ** 2 + 1 - abar)
    variance = k ** 2 * variance + schedule.sigma[i] ** 2
    np.testing.assert_allclose(np.var(states[i + 1]), variance, rtol=0.03)
  assert np.var(states[-1]) < 0.8 * STD ** 2  # the few-step teacher's gap that fine-tuning closes


def test_many_steps_approach_the_data_variance():
  schedule = few_step.var_schedule(SCHEDULE, 100)
  states = few_step.sample_trajectory(exact_epsilon, jnp.log(schedule.sigma), schedule, jax.random.PRNGKey(4),
                                      (20000, 2))
  np.testing.assert_allclose(np.var(states[-1]), STD ** 2, rtol=0.1)


def test_clipping_the_denoised_guess_bounds_the_last_state_and_is_inert_inside_the_bound():
  schedule = few_step.var_schedule(SCHEDULE, 10)
  sample = lambda epsilon, bound: few_step.sample_trajectory(  # noqa: E731
      epsilon, jnp.log(schedule.sigma), schedule, jax.random.PRNGKey(5), (2000, 2), x0_bound=bound)[-1]
  np.testing.assert_allclose(sample(exact_epsilon, 1e3), sample(exact_epsilon, None), rtol=1e-5, atol=1e-5)
  wrong = lambda x, n: -3.0 * exact_epsilon(x, n)  # noqa: E731  overshoots: |x0_hat| grows step by step
  assert np.max(np.abs(sample(wrong, None))) > 2.0
  # The last step's mean is the clipped guess itself (g' = 1); only its 1e-3 noise is added.
  assert np.max(np.abs(sample(wrong, 1.0))) <= 1.0 + 6 * few_step.LAST_SIGMA


def test_v_prediction_loss_at_the_exact_predictor_and_its_read_back_as_epsilon():
  x = STD * jax.random.normal(jax.random.PRNGKey(1), (50000, 2))
  loss = ddpm.denoising_loss(exact_epsilon, jax.random.PRNGKey(2), x, SCHEDULE, prediction='v')
  abar = np.asarray(SCHEDULE.alphas_cumprod, np.float64)
  minimum = np.mean(STD ** 2 / (abar * STD ** 2 + 1 - abar))  # E_n Var(v | x_n) = Var(eps | x_n) / abar
  np.testing.assert_allclose(loss, minimum, rtol=0.03)
  # A v network's epsilon at the noisiest step is x_n itself up to sqrt(abar) times its output:
  # where an epsilon network's error would be multiplied by 1 / sqrt(abar) ~ 160, a v network's is not.
  network = ddpm.EpsilonMLP((16,), prediction='v')
  params = network.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)), jnp.zeros(1))
  x_n = jax.random.normal(jax.random.PRNGKey(3), (64, 2))
  last = jnp.full(64, 999.0)
  raw = ddpm.EpsilonMLP((16,)).apply(params, x_n, last)  # the same weights read as epsilon
  np.testing.assert_allclose(network.apply(params, x_n, last),
                             np.sqrt(abar[-1]) * raw + np.sqrt(1 - abar[-1]) * x_n, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="prediction='x0' is not one of epsilon, v"):
    ddpm.denoising_loss(exact_epsilon, jax.random.PRNGKey(2), x, SCHEDULE, prediction='x0')
