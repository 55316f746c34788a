"""On a Gaussian, the N^2CE gradient tends to the exact MLE gradient as M grows.

Population gradients use deterministic quasi-samples (normal quantiles), so the bias is
measured without Monte-Carlo noise. With r = p/q0,
``grad L_M - grad L_inf = int r/(M + r) (q* - p) grad s = (1/M) int r (q* - p) grad s + O(1/M^2)``:
the bias *norm* falls as 1/M (slope -1 in log-log), its square, the bias term of the MSE in
Prop. 3.3, as 1/M^2.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

from nnce_jax import models, noise, objectives

N = 200001
QUANTILES = ndtri((jnp.arange(N) + 0.5) / N)[:, None]
X_DATA = 0.5 + 0.7 * QUANTILES  # q* = N(0.5, 0.7^2)
Y_NOISE = QUANTILES             # q0 = N(0, 1)
MODEL = models.GaussianRatio(base=noise.isotropic_gaussian(1))
MEAN, SD = 0.2, 0.9             # the model's Gaussian, away from the optimum, normalised (c = 0)
PARAMS = {'params': {'whitened_mean': jnp.array([[MEAN / SD]]),
                     'log_precision_diag': jnp.array([[-2 * np.log(SD)]]),
                     'precision_offdiag': jnp.zeros((1, 1, 1)), 'log_normalizer': jnp.zeros((1,))}}


def _shape_gradient(loss):
  """Gradient of ``loss(s_data, s_noise)`` in the Gaussian's mean and precision (not log Z)."""
  def objective(params):
    return loss(MODEL.apply(params, X_DATA)[:, 0], MODEL.apply(params, Y_NOISE)[:, 0])
  g = jax.grad(objective)(PARAMS)['params']
  return jnp.concatenate([g['whitened_mean'].ravel(), g['log_precision_diag'].ravel()])


def _exact_mle_gradient():
  # -grad log N(x; mu, sd^2) averaged over q*, in closed form, then mapped to (m, log precision).
  mu_star, var_star = 0.5, 0.49
  d_mu = -(mu_star - MEAN) / SD**2                      # d/dmu of E[-log N]
  d_log_prec = 0.5 * (var_star + (mu_star - MEAN)**2) / SD**2 - 0.5
  # mu = m * SD (whitened), log-precision a: mu = m exp(-a/2), so d/dm = SD d/dmu and
  # d/da|_m = d/da|_mu + d/dmu * dmu/da = d_log_prec - 0.5 * MEAN * d_mu.
  return np.array([SD * d_mu, d_log_prec - 0.5 * MEAN * d_mu])


def test_nwj_limit_is_the_exact_mle_gradient():
  g_nwj = _shape_gradient(lambda d, n: objectives.nwj_loss(d, n)[0])
  np.testing.assert_allclose(g_nwj, _exact_mle_gradient(), atol=2e-5)


def test_bias_falls_as_one_over_m_and_direction_aligns():
  g_mle = _exact_mle_gradient()
  magnitudes = np.logspace(1, 4, 7)
  gradients = [_shape_gradient(lambda d, n, m=m: objectives.noisier_nce_loss(d, n, m)[0])
               for m in magnitudes]
  bias = np.array([np.linalg.norm(g - g_mle) for g in gradients])
  assert np.all(np.diff(bias) < 0)
  slope = np.polyfit(np.log(magnitudes), np.log(bias), 1)[0]
  assert -1.1 < slope < -0.9, slope            # bias norm ~ 1/M
  squared_slope = np.polyfit(np.log(magnitudes), np.log(bias**2), 1)[0]
  assert -2.2 < squared_slope < -1.8, squared_slope  # squared bias ~ 1/M^2
  cosines = [float(g @ g_mle / np.linalg.norm(g) / np.linalg.norm(g_mle)) for g in gradients]
  assert cosines[-1] > 0.9999 and cosines[-1] > cosines[0]
