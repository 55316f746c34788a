"""Latent-space EBM on images (TFDS through grain), with leave-one-digit-out anomaly detection.

Trains :class:`nnce_jax.latent_ebm.LatentEBM` on ``data.dataset``. With
``data.anomaly_digit = d >= 0`` the training split holds the other nine digits; evaluation
scores every held-out test image by ``-log p(x, z)`` at a short-run posterior sample (see
``LatentEBM.anomaly_score``) and reports the AUPRC with digit ``d`` as the positive class.
The report saves prior samples and test reconstructions as PNG grids.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from experiments.core import plotting
from experiments.core.checks import ConfigError, number, one_of
from experiments.core.task import Task
from experiments.tasks.ratio import make_objective
from nnce_jax import fid as nnce_fid
from nnce_jax import latent_ebm
from nnce_jax.data import builders, images

# The N²CE paper's AUPRC (Yu et al. 2026, trained on all of MNIST) for digits 1, 4, 5, 7, 9.
PAPER_AUPRC = {'noisier_nce_k3': {1: 0.959, 4: 0.935, 5: 0.959, 7: 0.845, 9: 0.854},
               'noisier_nce_k1': {1: 0.910, 4: 0.911, 5: 0.935, 7: 0.779, 9: 0.699},
               'nce': {1: 0.702, 4: 0.829, 5: 0.764, 7: 0.605, 9: 0.502}}



def check(config) -> None:
  if not isinstance(config.data.dataset, str) or not config.data.dataset:
    raise ConfigError(f'config.data.dataset={config.data.dataset!r} is invalid; it must name a TFDS '
                      'image dataset (mnist5k and sklearn_digits are built offline)')
  number(config, 'data.anomaly_digit', low=-1, high=9, integer=True)
  number(config, 'data.image_size', low=0, integer=True)
  one_of(config, 'model.generator', latent_ebm.GENERATORS)
  for field in ('latent_dim', 'posterior_steps', 'generator_features'):
    number(config, f'model.{field}', low=1, integer=True)
  for field in ('observation_std', 'posterior_step_size'):
    number(config, f'model.{field}', low=0, low_open=True)
  number(config, 'fid.num_samples', low=2, integer=True)
  if config.fid.features and not os.path.isfile(os.path.expanduser(config.fid.features)):
    raise ConfigError(f'config.fid.features={config.fid.features!r} is invalid; it must be a file written '
                      "by jax.export, or '' to skip FID")
  if config.objective.name == 'ranking_nce':
    raise ConfigError('config.objective.name=ranking_nce is invalid for task latent_images; allowed '
                      'values: nce, noisier_nce, nwj')


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
  """Area under the precision-recall curve as average precision: the mean, over the
  positives, of the precision among all images scored at least as high (ties count
  together, as scikit-learn's ``average_precision_score``)."""
  scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
  if not positive.any():
    raise ValueError('average precision needs at least one positive')
  order = np.argsort(-scores, kind='stable')
  scores, positive = scores[order], positive[order]
  last_of_tie = np.r_[scores[1:] != scores[:-1], True]
  true_positives = np.cumsum(positive)[last_of_tie]
  precision = true_positives / (np.flatnonzero(last_of_tie) + 1)
  recall_gain = np.diff(np.r_[0, true_positives]) / positive.sum()
  return float(np.sum(precision * recall_gain))


def open_dataset(config, split):
  """The TFDS source of ``config.data.dataset``; local (package-shipped) datasets are built
  on first use, anything else must be prepared (the error says how)."""
  data_dir = os.path.expanduser(config.data.data_dir)
  name = config.data.dataset
  if name in builders.LOCAL_BUILDERS and not os.path.isdir(os.path.join(data_dir, name)):
    logging.info('building %s into %s (offline, from an installed package)', name, data_dir)
    builders.prepare(name, data_dir)
  return images.image_source(name, split, data_dir)


def _training_labels(config):
  digit = config.data.anomaly_digit
  return None if digit < 0 else [d for d in range(10) if d != digit]


def build(config) -> Task:
  train_source, test_source = open_dataset(config, 'train'), open_dataset(config, 'test')
  side = config.data.image_size
  shape = (side, side, train_source[0]['image'].shape[-1]) if side else tuple(train_source[0]['image'].shape)
  m = config.model
  model = latent_ebm.make_latent_ebm(
      shape, generator=m.generator, latent_dim=m.latent_dim, generator_features=m.generator_features,
      generator_hidden=tuple(m.generator_hidden), prior_hidden=tuple(m.hidden),
      num_stages=config.objective.num_stages, observation_std=m.observation_std,
      posterior_steps=m.posterior_steps, posterior_step_size=m.posterior_step_size)
  params = model.init(jax.random.fold_in(jax.random.PRNGKey(config.seed), 1))
  objective = make_objective(config)
  loss_fn = model.make_loss(objective)

  # Each process reads its shard and its slice of every global batch (multi-host ready).
  per_process = config.train.batch_size // jax.process_count()
  train_batches = images.image_batches(
      train_source, batch_size=per_process, seed=config.seed, shard_index=jax.process_index(),
      shard_count=jax.process_count(), keep_labels=_training_labels(config), dequantize=True,
      image_size=config.data.image_size)
  spd = config.train.steps_per_dispatch

  def batches_for(step):
    """Batches ``step .. step + spd - 1``: random access, so a resumed run reads the same ones."""
    return {'image': np.stack([train_batches[step + i]['image'] for i in range(spd)])}

  num_test = min(config.data.num_test, len(test_source))
  test = images.image_batches(test_source, batch_size=num_test, seed=config.seed, shuffle=False,
                              dequantize=False, image_size=config.data.image_size)[0]
  x_test, labels = jnp.asarray(test['image']), np.asarray(test['label'])
  score = jax.jit(lambda params, key: model.anomaly_scores(key, params, x_test))
  reconstruct = jax.jit(lambda params, key: model.generator.apply(
      params['generator'], model.sample_posterior(key, params, x_test[:64])))
  eval_key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 3)

  def eval_fn(params):
    scores = {k: np.asarray(v) for k, v in score(params, eval_key).items()}
    mse = float(jnp.mean(jnp.square(reconstruct(params, eval_key) - x_test[:64])))
    metrics = {'test_mean_squared_error': mse, 'mean_score': float(np.mean(scores['joint']))}
    if config.data.anomaly_digit >= 0:
      anomalous = labels == config.data.anomaly_digit
      metrics['auprc'] = average_precision(scores['joint'], anomalous)
      # The terms alone: the prior term is where NCE and N²CE differ.
      metrics['auprc_prior'] = average_precision(scores['prior'], anomalous)
      metrics['auprc_reconstruction'] = average_precision(scores['reconstruction'], anomalous)
      metrics['positive_rate'] = float(np.mean(anomalous))  # AUPRC of a random score
    return metrics

  def report(params, workdir):
    samples = model.generator.apply(params['generator'],
                                    model.sample_prior(jax.random.PRNGKey(config.seed), params, 64))
    paths = {'samples_png': os.path.join(workdir, 'samples.png'),
             'reconstructions_png': os.path.join(workdir, 'reconstructions.png')}
    plotting.image_grid(samples, paths['samples_png'])
    originals, reconstructed = np.asarray(x_test[:32]), np.asarray(reconstruct(params, eval_key))[:32]
    plotting.image_grid(np.concatenate([originals, reconstructed]), paths['reconstructions_png'])
    return {**paths, 'fid': fid(params)}

  def fid(params):
    """FID of prior samples against the test images, or why it was skipped."""
    if not config.fid.features:
      logging.info('FID skipped: config.fid.features is empty (a jax.export file of a feature network)')
      return 'skipped: set config.fid.features to a jax.export file of InceptionV3 pool3 features'
    features = load_features(config.fid.features)
    z = model.sample_prior(jax.random.PRNGKey(config.seed + 1), params, config.fid.num_samples)
    generated = model.generator.apply(params['generator'], z)
    return nnce_fid.feature_distance(features(generated), features(x_test))

  digit = config.data.anomaly_digit
  variant = ('nce' if config.objective.name == 'nce'
             else f'{config.objective.name}_k{config.objective.num_stages}')
  truth = {}
  if digit in PAPER_AUPRC.get(variant, {}):
    truth['auprc'] = PAPER_AUPRC[variant][digit]  # the paper's, on all of MNIST: a reference
  metrics = ('auprc', 'test_mean_squared_error') if digit >= 0 else ('test_mean_squared_error',)
  return Task(model, params, loss_fn, eval_fn, truth, table_metrics=metrics, report=report,
              batches_for=batches_for, sample_batch=model.make_sampler(objective))


def load_features(path: str):
  """A feature network saved by ``jax.export``: ``images [n, ...] -> features [n, d]``, called
  in chunks of its exported batch size when that is fixed."""
  with open(os.path.expanduser(path), 'rb') as f:
    exported = jax.export.deserialize(bytearray(f.read()))
  chunk = exported.in_avals[0].shape[0]

  def features(images):
    images = np.asarray(images, exported.in_avals[0].dtype)
    if not isinstance(chunk, int):
      return np.asarray(exported.call(images))
    usable = len(images) // chunk * chunk
    if not usable:
      raise ValueError(f'FID needs at least {chunk} images (the feature network\'s batch)')
    return np.concatenate([np.asarray(exported.call(images[i:i + chunk])) for i in range(0, usable, chunk)])

  return features
