"""Energy-based models of 28×28 images judged in bits/dim (TRE's and DRE-∞'s MNIST benchmark).

``p(y) = q0(y) exp(s(y)) / Z`` in the logit space of dequantised pixels
(:mod:`nnce_jax.bits_per_dim`): ``q0`` (``noise.name``) is fitted to the training split by
maximum likelihood and frozen; ``s`` is trained by ``objective`` against it (``num_stages =
K > 1``: TRE's linear-mixing waymarks, each stage its own head). With the flow noise, ``s`` reads
the flow's latent coordinates ``z = f(y)``, where ``q0`` is ``N(0, I)`` and TRE's waymarks mix
(as TRE did); a fitted copula or flow is kept in ``noise.cache_dir`` and reused by every run.
After training, ``log Z`` is estimated by annealed importance sampling from ``q0`` (a stochastic
lower bound) and by its reverse from validation images (an upper bound when they are samples of
the model), with the optimal-bridge estimate beside them, and the test bits/dim is reported with
each.

Each training batch is drawn on the host (``batches_for``: training images chosen and
dequantised by a generator keyed by the seed and the step, so a resumed run reads the same
batches); the noise is drawn under ``jit`` (``sample_batch``). During training the evaluation
records held-out ``E[s]`` on validation images and on noise, the classifier's accuracy and a
cheap bits/dim proxy (``log Z`` by importance sampling over fixed noise draws: optimistic).
"""

import hashlib
import json
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from flax import serialization

from experiments.core import plotting
from experiments.core.checks import ConfigError, number, one_of
from experiments.core.files import write_atomically
from experiments.core.task import Task
from experiments.tasks.common import ratio
from nnce_jax import ais, copula, flow, normalizers
from nnce_jax import bits_per_dim as bpd
from nnce_jax import noise as noise_lib
from nnce_jax.data import builders

DATASETS = ('fashion_mnist', 'mnist5k')
NOISES = ('gaussian', 'copula', 'flow')
IMAGE_MODELS = ('resmlp', 'mlp')
NUM_EVAL = 2000  # validation images and noise draws in each training-time evaluation
NUM_SAMPLES_SHOWN = 32


def check(config) -> None:
  one_of(config, 'data.dataset', DATASETS)
  number(config, 'data.num_validation', low=1, integer=True)
  one_of(config, 'noise.name', NOISES)
  number(config, 'noise.copula_bins', low=2, integer=True)
  number(config, 'noise.copula_steps', low=1, integer=True)
  for field in ('flow_layers', 'flow_hidden', 'flow_steps'):
    number(config, f'noise.{field}', low=1, integer=True)
  number(config, 'noise.flow_bins', low=2, integer=True)
  one_of(config, 'model.name', IMAGE_MODELS)
  number(config, 'ais.num_chains', low=2, integer=True)
  number(config, 'ais.num_temperatures', low=1, integer=True)
  number(config, 'ais.num_leapfrog', low=1, integer=True)
  number(config, 'ais.step_size', low=0, low_open=True)
  number(config, 'ais.num_bridge_samples', low=2, integer=True)
  if config.ais.num_chains > config.data.num_validation:
    raise ConfigError(f'config.ais.num_chains={config.ais.num_chains} is invalid; reverse chains start at '
                      f'validation images: it must be <= data.num_validation={config.data.num_validation}')


def pixel_splits(config) -> dict[str, np.ndarray]:
  """``{'train', 'validation', 'test'}: uint8 pixels [n, 784]``; the validation images are a fixed
  random ``data.num_validation`` of the training split (the same for every seed)."""
  fashion = config.data.dataset == 'fashion_mnist'
  arrays = builders.fashion_mnist_arrays() if fashion else builders.mnist5k_arrays()
  train, test = (arrays[split][0].reshape(len(arrays[split][0]), -1) for split in ('train', 'test'))
  if config.data.num_validation >= len(train):
    raise ConfigError(f'config.data.num_validation={config.data.num_validation} is invalid; the training '
                      f'split of {config.data.dataset} has {len(train)} images')
  order = np.random.default_rng(0).permutation(len(train))
  held_out = order[:config.data.num_validation]
  return {'train': train[np.sort(order[config.data.num_validation:])],
          'validation': train[np.sort(held_out)], 'test': test[:config.data.num_test]}


def dequantized(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """``(p + u) / 256`` with ``u`` from ``rng``: on the host, in numpy, so that batches are made off the
  device (:func:`nnce_jax.bits_per_dim.dequantize` is the same map keyed by a JAX key)."""
  return (pixels + rng.random(pixels.shape, np.float32)) / np.float32(256.0)


def fit_noise(config, y_train, y_validation):
  """``q0`` by maximum likelihood on the training split (logit space); a degenerate fit raises a
  one-line :class:`ConfigError` naming ``noise.name`` (``main`` prints it as such). The flow stops
  early on ``y_validation``. The copula and the flow are kept in ``noise.cache_dir`` and reused
  (:func:`cached_noise`)."""
  try:
    if config.noise.name == 'gaussian':
      return noise_lib.fit_gaussian(y_train, ridge=1e-6)
    return cached_noise(config, lambda: _fit_slow_noise(config, y_train, y_validation),
                        noise_lib.Gaussian(jnp.zeros(y_train.shape[1]), jnp.eye(y_train.shape[1])))
  except (ValueError, FloatingPointError) as error:
    raise ConfigError(f'config.noise.name={config.noise.name!r} did not fit the training split: '
                      f'{error}') from None


def noise_settings(config) -> dict:
  """What determines a fitted copula or flow besides the data."""
  n = config.noise
  if n.name == 'copula':
    return dict(num_bins=n.copula_bins, num_steps=n.copula_steps)
  return dict(num_layers=n.flow_layers, hidden=n.flow_hidden, num_bins=n.flow_bins, num_steps=n.flow_steps)


def _fit_slow_noise(config, y_train, y_validation):
  settings = noise_settings(config)
  if config.noise.name == 'flow':
    return flow.fit_flow(jax.random.PRNGKey(0), y_train, y_validation, **settings)
  fitted, losses = copula.fit_gaussian_copula(jax.random.PRNGKey(0), y_train, **settings)
  if not np.isfinite(float(losses[-1])):
    raise ValueError(f'the copula marginals did not fit (loss {float(losses[-1])}): lower noise.copula_bins')
  logging.info('copula marginals: per-dimension NLL %.4f -> %.4f', float(losses[0]), float(losses[-1]))
  return fitted, {'marginal_nll': [float(losses[0]), float(losses[-1])]}


def cache_settings(config) -> dict:
  return {'dataset': config.data.dataset, 'validation': config.data.num_validation,
          'noise': config.noise.name, **noise_settings(config)}


def noise_cache_path(config) -> str:
  """Where :func:`cached_noise` keeps the fit: the file's name hashes what determines it."""
  key = json.dumps(cache_settings(config), sort_keys=True)
  return os.path.join(os.path.expanduser(config.noise.cache_dir),
                      f'{config.noise.name}_{hashlib.sha256(key.encode()).hexdigest()[:12]}.msgpack')


def cached_noise(config, fit, gaussian):
  """``fit() -> (noise, history)`` run once per dataset, noise and settings: read from
  ``noise.cache_dir`` when a run fitted it before (the file's name hashes what determines it),
  else fitted and written there whole (``''``: fitted in this process, not kept). ``gaussian`` (of
  the data's dimension) shapes the template the file is read into."""
  if not config.noise.cache_dir:
    return fit()[0]
  path = noise_cache_path(config)
  if os.path.exists(path):
    if config.noise.name == 'flow':
      n = config.noise
      template = flow.untrained_flow(gaussian, num_layers=n.flow_layers, hidden=n.flow_hidden,
                                     num_bins=n.flow_bins)
    else:
      bins = 3 * config.noise.copula_bins + 1
      template = copula.GaussianCopula(gaussian.mean, gaussian.mean, jnp.zeros((gaussian.dim, bins)),
                                       gaussian)
    with open(path, 'rb') as f:
      return serialization.from_bytes(template, f.read())
  started = time.perf_counter()
  fitted, history = fit()
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path[:-len('.msgpack')] + '.json', 'w') as f:
    json.dump({'settings': cache_settings(config), 'history': history,
               'wall_s': time.perf_counter() - started}, f)
  write_atomically(path, serialization.to_bytes(fitted))  # last, whole or absent: a cut fit is redone
  return fitted


def whitened(base, log_ratio, key):
  """AIS's coordinates: ``(base_w, log_ratio_w, to_y, to_w, preconditioner)``; ``log_ratio`` reads
  :func:`model_coordinates`. For flow noise the chains run in the flow's latent space. For the Gaussian
  ``q0 = N(m, L L^T)`` the chains run in ``w = L^-1 (y - m)`` against ``N(0, I)`` (the same Z,
  and HMC sees ``q0`` isotropic: 3x cheaper than a triangular solve per gradient); for other
  noises they run in ``y`` preconditioned by the Cholesky factor of 20,000 draws' covariance."""
  if isinstance(base, flow.FlowNoise):  # s reads the latent z, where q0 is N(0, I) already
    return noise_lib.isotropic_gaussian(base.dim), log_ratio, jax.jit(base.from_latent), base.to_latent, None
  if isinstance(base, noise_lib.Gaussian):
    to_y = lambda w: w @ base.scale_tril.T + base.mean  # noqa: E731
    to_w = lambda y: jax.scipy.linalg.solve_triangular(base.scale_tril, (y - base.mean).T, lower=True).T  # noqa: E731
    return noise_lib.isotropic_gaussian(base.dim), lambda w: log_ratio(to_y(w)), to_y, to_w, None
  covariance = jnp.cov(base.sample(key, (20000,)).T)
  identity = lambda y: y  # noqa: E731
  return base, log_ratio, identity, identity, jnp.linalg.cholesky(covariance)


def model_coordinates(base):
  """``(base_t, to_t)``: the noise in the coordinates ``s`` reads, and the map into them from ``y``:
  the flow's latent space (``N(0, I)``) for flow noise, ``y`` itself for the others."""
  if isinstance(base, flow.FlowNoise):
    return noise_lib.isotropic_gaussian(base.dim), jax.jit(base.to_latent)
  return base, lambda y: y


def logit_data(config) -> tuple[dict, np.ndarray, np.ndarray, dict]:
  """``(pixels, mean, y_train, held_out)``: the uint8 splits (:func:`pixel_splits`), the per-pixel
  training mean, the training split dequantised once and in logit space minus the mean (what
  ``q0`` is fitted to: the same for every seed), and ``{'x_val', 'y_val', 'x_test', 'y_test'}``
  (dequantised pixels and their centred logits)."""
  pixels = pixel_splits(config)
  logit_train = np.asarray(bpd.to_logit(dequantized(pixels['train'], np.random.default_rng([0, 0]))))
  mean = logit_train.mean(0)
  held_out = {}
  for split, name, seed in (('validation', 'val', 1), ('test', 'test', 2)):
    held_out[f'x_{name}'] = dequantized(pixels[split], np.random.default_rng([0, seed]))
    held_out[f'y_{name}'] = bpd.to_logit(jnp.asarray(held_out[f'x_{name}'])) - mean
  return pixels, mean, logit_train - mean, held_out


def build(config) -> Task:
  splits, mean, y_train, held_out = logit_data(config)
  x_val, y_val, x_test, y_test = (held_out[k] for k in ('x_val', 'y_val', 'x_test', 'y_test'))
  base = fit_noise(config, y_train, y_val)
  del y_train
  base_t, to_t = model_coordinates(base)
  t_val = to_t(y_val)
  dim = mean.shape[0]
  batch, spd = config.train.batch_size, config.train.steps_per_dispatch

  def batches_for(step):
    rng = np.random.default_rng([config.seed, step])
    x = dequantized(splits['train'][rng.integers(0, len(splits['train']), (spd, batch))], rng)
    return np.asarray(to_t(bpd.to_logit(x) - mean), np.float32)

  model, params, loss_fn, _ = ratio.ratio_parts(config, base_t, None, dim)
  objective = ratio.make_objective(config)

  def sample_batch(key, inputs):
    return {'data': inputs, 'noise': base_t.sample(key, (inputs.shape[0], objective.noise_per_data))}

  eval_key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 3)
  t_noise = base_t.sample(eval_key, (NUM_EVAL,))
  log_q0_val = base.log_prob(y_val[:NUM_EVAL])
  log_weight = log_magnitude(config)

  @jax.jit
  def eval_fn(params):
    s_val = ratio.log_ratio(model, params, t_val[:NUM_EVAL])
    s_noise = ratio.log_ratio(model, params, t_noise)
    log_z = normalizers.log_mean_exp(s_noise)
    proxy = bpd.bits_per_dim(log_q0_val + s_val - log_z, x_val[:NUM_EVAL])
    return {'validation_log_ratio': jnp.mean(s_val), 'noise_log_ratio': jnp.mean(s_noise),
            'log_z_importance': log_z, 'bits_per_dim_proxy': jnp.mean(proxy),
            'accuracy': 0.5 * (jnp.mean(s_val > log_weight) + jnp.mean(s_noise < log_weight))}

  def report(params, workdir):
    return evaluate_density(config, model, params, base, mean, x_val, y_val, x_test, y_test, workdir)

  return Task(init_params=params, loss_fn=loss_fn, eval_fn=eval_fn,
              table_metrics=('bits_per_dim_proxy', 'validation_log_ratio'), report=report,
              batches_for=batches_for, sample_batch=sample_batch)


def log_magnitude(config) -> float:
  """The classifier's decision threshold ``log M`` (``log nu`` for NCE, 0 for the others)."""
  o = config.objective
  if o.name == 'noisier_nce':  # a decaying M ends at final_magnitude, where training is judged
    final = o.magnitude if o.magnitude_schedule == 'constant' else o.final_magnitude
    return o.log_magnitude or math.log(final)
  return math.log(o.noise_ratio) if o.name == 'nce' else 0.0


def _bits(log_prob_y, x) -> tuple[float, float]:
  """Mean test bits/dim and its standard error over images."""
  values = np.asarray(bpd.bits_per_dim(log_prob_y, x), np.float64)
  return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))


def evaluate_density(config, model, params, base, mean, x_val, y_val, x_test, y_test, workdir) -> dict:
  """Test bits/dim of ``q0`` alone and of the EBM with ``log Z`` three ways (forward and reverse
  AIS, the optimal bridge), the AIS diagnostics, the log ratio's range, and a grid of the
  forward chains' end points (samples of the EBM by annealed HMC from noise samples)."""
  started = time.perf_counter()
  a = config.ais
  log_ratio = jax.jit(lambda t: ratio.log_ratio(model, params, t))
  key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 4)
  cov_key, forward_key, reverse_key, start_key, bridge_key = jax.random.split(key, 5)
  base_t, to_t = model_coordinates(base)
  base_w, log_ratio_w, to_y, to_w, preconditioner = whitened(base, log_ratio, cov_key)
  options = dict(num_temperatures=a.num_temperatures, num_leapfrog=a.num_leapfrog, step_size=a.step_size,
                 preconditioner=preconditioner)
  forward = jax.jit(lambda k: ais.annealed_importance_sampling(
      k, log_ratio_w, base_w, num_chains=a.num_chains, **options))(forward_key)
  starts = to_w(y_val[jax.random.choice(start_key, y_val.shape[0], (a.num_chains,), replace=False)])
  reverse = jax.jit(lambda k, x: ais.reverse_annealed_importance_sampling(
      k, log_ratio_w, base_w, x, **options))(reverse_key, starts)
  t_noise = base_t.sample(bridge_key, (a.num_bridge_samples,))
  s_val, s_noise, s_test = log_ratio(to_t(y_val)), log_ratio(t_noise), log_ratio(to_t(y_test))
  if not bool(jnp.all(jnp.isfinite(s_test))):
    raise FloatingPointError(f'the trained log ratio is not finite on {int(jnp.sum(~jnp.isfinite(s_test)))} '
                             'test images; lower optimizer.learning_rate')
  bridge = normalizers.optimal_bridge_sampling(s_val, s_noise)
  log_q0_test = base.log_prob(y_test)
  log_z = {'ais': float(forward.log_z), 'reverse_ais': float(reverse.log_z), 'bridge': float(bridge.log_z)}
  bits = {name: _bits(log_q0_test + s_test - value, x_test) for name, value in log_z.items()}
  q0_bits = _bits(log_q0_test, x_test)
  dim = y_test.shape[-1]
  gap_bits = float(bpd.nats_to_bits_per_dim(reverse.log_z - forward.log_z, dim))
  threshold = log_magnitude(config)
  samples = bpd.from_logit(to_y(forward.samples[:NUM_SAMPLES_SHOWN]) + mean) * 2 - 1
  plotting.image_grid(np.asarray(samples).reshape(-1, 28, 28, 1), os.path.join(workdir, 'samples.png'))
  result = {
      'bits_per_dim': bits['ais'][0], 'bits_per_dim_se': bits['ais'][1],
      'bits_per_dim_reverse': bits['reverse_ais'][0], 'bits_per_dim_bridge': bits['bridge'][0],
      'noise_bits_per_dim': q0_bits[0], 'noise_bits_per_dim_se': q0_bits[1],
      'log_z': log_z, 'log_z_se': {'ais': float(forward.std_error), 'reverse_ais': float(reverse.std_error),
                                   'bridge': float(bridge.std_error)},
      # Crossing by less than two joint standard errors is the estimators' noise, not a crossing.
      'bracket_bits_per_dim': gap_bits,
      'brackets_cross': bool(reverse.log_z - forward.log_z
                             < -2 * jnp.hypot(forward.std_error, reverse.std_error)),
      'ais_effective_sample_size': float(forward.effective_sample_size),
      'reverse_effective_sample_size': float(reverse.effective_sample_size),
      'ais_acceptance': float(forward.acceptance_rate), 'reverse_acceptance': float(reverse.acceptance_rate),
      'ais_chains': a.num_chains, 'ais_temperatures': a.num_temperatures,
      'log_ratio_test': {'mean': float(jnp.mean(s_test)), 'min': float(jnp.min(s_test)),
                         'max': float(jnp.max(s_test)), 'std': float(jnp.std(s_test))},
      'log_ratio_noise_mean': float(jnp.mean(s_noise)), 'log_magnitude': threshold,
      'noise_above_log_magnitude': float(jnp.mean(s_noise > threshold)),
      'accuracy': float(0.5 * (jnp.mean(s_val > threshold) + jnp.mean(s_noise < threshold))),
      'evaluation_wall_s': time.perf_counter() - started,
  }
  if result['brackets_cross']:
    logging.warning('AIS brackets cross: reverse log Z %.2f below forward %.2f by over 2 standard errors '
                    '(%.3f bits/dim): the validation images are not samples of the model, or too few '
                    'temperatures',
                    log_z['reverse_ais'], log_z['ais'], gap_bits)
  logging.info('test bits/dim %.4f (q0 alone %.4f), AIS bracket %.4f bits/dim, ESS %.1f of %d',
               result['bits_per_dim'], result['noise_bits_per_dim'], gap_bits,
               result['ais_effective_sample_size'], a.num_chains)
  return {'density': result}
