"""Objectives against hand-computed values, their identities, and extremes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnce_jax import objectives

S_DATA = np.array([0.3, -1.2, 2.5, 0.0], np.float32)
S_NOISE = np.array([-0.7, 1.1, -3.0, 0.4, 2.2, -0.1], np.float32)


def softplus(t):
  return np.logaddexp(0.0, np.asarray(t, np.float64))


@pytest.mark.parametrize('nu', [1.0, 3.0])
def test_nce_matches_hand_computation(nu):
  expected = softplus(np.log(nu) - S_DATA).mean() + nu * softplus(S_NOISE - np.log(nu)).mean()
  loss, diagnostics = objectives.nce_loss(S_DATA, S_NOISE, noise_ratio=nu)
  np.testing.assert_allclose(loss, expected, rtol=1e-6)
  accuracy = 0.5 * ((S_DATA > np.log(nu)).mean() + (S_NOISE < np.log(nu)).mean())
  np.testing.assert_allclose(diagnostics['accuracy'], accuracy)
  np.testing.assert_allclose(diagnostics['log_ratio_noise'], S_NOISE.mean(), rtol=1e-6)


def test_noisier_nce_matches_hand_computation_and_is_nce_at_m_1():
  m = 100.0
  expected = softplus(np.log(m) - S_DATA).mean() + m * softplus(S_NOISE - np.log(m)).mean()
  np.testing.assert_allclose(objectives.noisier_nce_loss(S_DATA, S_NOISE, m)[0], expected, rtol=1e-6)
  at_one, _ = objectives.noisier_nce_loss(S_DATA, S_NOISE, 1.0)
  np.testing.assert_array_equal(at_one, objectives.nce_loss(S_DATA, S_NOISE)[0])


def test_noisier_nce_minus_log_m_tends_to_nwj():
  nwj, _ = objectives.nwj_loss(S_DATA, S_NOISE)
  gaps = [abs(float(objectives.noisier_nce_loss(S_DATA, S_NOISE, m)[0]) - np.log(m) - float(nwj))
          for m in (1e1, 1e2, 1e3)]
  assert gaps[0] > gaps[1] > gaps[2]
  assert gaps[2] < 0.05


def test_nwj_ranking_and_penalty_match_hand_computation():
  nwj, diagnostics = objectives.nwj_loss(S_DATA, S_NOISE)
  np.testing.assert_allclose(nwj, -S_DATA.mean() + np.exp(S_NOISE.astype(np.float64)).mean(), rtol=1e-6)
  np.testing.assert_allclose(diagnostics['kl_lower_bound'], 1 - nwj, rtol=1e-6)

  noise = S_NOISE[:4].reshape(4, 1)  # one noise candidate per data point: N = 2
  logits = np.concatenate([S_DATA[:, None], noise], 1).astype(np.float64)
  expected = (np.log(np.exp(logits).sum(1)) - S_DATA).mean()
  ranking, diagnostics = objectives.ranking_nce_loss(S_DATA, noise.ravel())
  np.testing.assert_allclose(ranking, expected, rtol=1e-6)
  np.testing.assert_allclose(diagnostics['accuracy'], (logits.argmax(1) == 0).mean())

  penalty = objectives.log_ratio_l2_penalty(S_DATA, S_NOISE, 0.5)
  np.testing.assert_allclose(penalty, 0.25 * ((S_DATA**2).mean() + (S_NOISE**2).mean()), rtol=1e-6)


def test_ranking_nce_at_two_candidates_is_logistic_regression():
  # N = 2: -s(x) + log(e^s(x) + e^s(y)) = softplus(s(y) - s(x)), the pairwise logistic loss.
  loss, _ = objectives.ranking_nce_loss(S_DATA, S_NOISE[:4])
  np.testing.assert_allclose(loss, softplus(S_NOISE[:4] - S_DATA).mean(), rtol=1e-6)


def test_telescoping_sums_stage_losses_and_log_ratios():
  data = np.stack([S_DATA, S_DATA * 2, -S_DATA])
  noise = np.stack([S_NOISE, S_NOISE - 1, S_NOISE * 0.5])
  loss_fn = lambda d, n: objectives.noisier_nce_loss(d, n, 10.0)  # noqa: E731
  total, _ = objectives.telescoping(loss_fn)(data, noise)
  np.testing.assert_allclose(total, sum(loss_fn(d, n)[0] for d, n in zip(data, noise)), rtol=1e-6)
  np.testing.assert_allclose(objectives.telescoped_log_ratio(data.T), data.sum(0), rtol=1e-6)


def test_make_objective_noise_counts_and_unknown_name():
  assert objectives.make_objective('nce', noise_ratio=5).noise_per_data == 5
  assert objectives.make_objective('ranking_nce', num_candidates=8).noise_per_data == 7
  with pytest.raises(ValueError, match='objective.name=.*nce, noisier_nce, nwj, ranking_nce'):
    objectives.make_objective('infonce')


EXTREME_LOGITS = np.array([-1e4, -50.0, 0.0, 50.0, 1e4], np.float32)


@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize('name', objectives.OBJECTIVES)
@pytest.mark.parametrize('magnitude', [1.0, 1e3, 1e12])
def test_values_and_gradients_finite_at_extremes(name, magnitude, dtype):
  objective = objectives.make_objective(name, magnitude=magnitude, num_candidates=2, l2_penalty=0.1)
  s_data = jnp.asarray(np.repeat(EXTREME_LOGITS, 5), dtype)[None]   # [K=1, 25]
  s_noise = jnp.asarray(np.tile(EXTREME_LOGITS, 5), dtype)[None]     # every pairing appears
  (loss, diagnostics), grads = jax.value_and_grad(
      lambda d, n: objective.loss(d, n), argnums=(0, 1), has_aux=True)(s_data, s_noise)
  assert loss.dtype == jnp.float32  # bfloat16 logits accumulate in float32
  assert np.isfinite(float(loss))
  for g in grads:
    assert np.all(np.isfinite(np.asarray(g, np.float32)))
  assert all(np.isfinite(float(v)) for v in diagnostics.values())
