"""Latent-space EBM on images (TFDS through grain), with leave-one-class-out anomaly detection.

Trains :class:`nnce_jax.latent_ebm.LatentEBM` on ``data.dataset``: posterior chains start at
``N(0, I)`` (``model.sampler=short_run``) or at DAMC's amortiser (``damc``), and the prior is
learned by maximum likelihood (``model.prior_learning=mle``) or by ``config.objective`` as a
density ratio against ``N(0, I)`` (``ratio``).

With ``data.anomaly_digit = d >= 0`` the run follows the DAMC reference protocol: the train and
test splits are pooled, 80% of each normal class trains (``data.validation_fraction`` of it
held out as validation normals) and the test set is the other 20% plus every image of class
``d`` (:func:`nnce_jax.data.anomaly_split.anomaly_split`). Evaluation scores test images by
``||x - g(z)||^2 + E(z) + ||z||^2 / 2`` (``LatentEBM.anomaly_scores``) and reports AUPRC and
AUROC of the score and of its terms, the validation normals' reconstruction error (what a
checkpoint is selected on: never the test set) and the prior's chasm on validation posteriors
under the training likelihood. The report saves prior samples and test reconstructions as PNG grids.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from experiments.core import plotting
from experiments.core.checks import ConfigError, number, one_of
from experiments.core.task import Task
from experiments.tasks.common.image_data import open_dataset
from experiments.tasks.common.published import PAPER_AUPRC
from experiments.tasks.common.ratio import make_objective
from nnce_jax import damc, latent_ebm, noise, ranking_metrics
from nnce_jax import fid as nnce_fid
from nnce_jax.data import anomaly_split, images

PRIOR_LEARNING = ('ratio', 'mle')
STEPS = ('joint', 'reference')


def check(config) -> None:
  if not isinstance(config.data.dataset, str) or not config.data.dataset:
    raise ConfigError(f'config.data.dataset={config.data.dataset!r} is invalid; it must name a TFDS '
                      'image dataset (mnist5k, sklearn_digits and fashion_mnist are built offline)')
  number(config, 'data.anomaly_digit', low=-1, high=9, integer=True)
  number(config, 'data.image_size', low=0, integer=True)
  number(config, 'data.validation_fraction', low=0, high=0.5, low_open=True)
  one_of(config, 'model.generator', latent_ebm.GENERATORS)
  one_of(config, 'model.sampler', latent_ebm.SAMPLERS)
  one_of(config, 'model.prior_learning', PRIOR_LEARNING)
  one_of(config, 'model.encoder', latent_ebm.ENCODERS)
  one_of(config, 'model.denoiser_output', damc.OUTPUT_LAYERS)
  one_of(config, 'model.prior_activation', tuple(latent_ebm.PRIOR_ACTIVATIONS))
  one_of(config, 'model.step', STEPS)
  one_of(config, 'model.negatives_from', latent_ebm.NEGATIVE_STARTS)
  number(config, 'model.time_features', low=2, integer=True)
  for field in ('amortizer_updates', 'target_every', 'decay_every'):
    number(config, f'reference.{field}', low=1, integer=True)
  number(config, 'reference.target_rate', low=0, high=1, high_open=True)
  number(config, 'reference.decay_rate', low=0, high=1, low_open=True)
  for field in ('generator_learning_rate', 'prior_learning_rate', 'amortizer_learning_rate', 'clip_norm'):
    number(config, f'reference.{field}', low=0, low_open=True)
  number(config, 'reference.b1', low=0, high=1, high_open=True)
  for field in ('latent_dim', 'posterior_steps', 'prior_steps', 'generator_features', 'embed_dim'):
    number(config, f'model.{field}', low=1, integer=True)
  number(config, 'model.diffusion_steps', low=2, integer=True)
  number(config, 'model.prior_fraction', low=0, high=1, high_open=True)
  for field in ('observation_std', 'posterior_step_size', 'prior_step_size'):
    number(config, f'model.{field}', low=0, low_open=True)
  number(config, 'score.steps', low=0, integer=True)
  number(config, 'score.observation_std', low=0)
  number(config, 'fid.num_samples', low=2, integer=True)
  if config.fid.features and not os.path.isfile(os.path.expanduser(config.fid.features)):
    raise ConfigError(f'config.fid.features={config.fid.features!r} is invalid; it must be a file written '
                      "by jax.export, or '' to skip FID")
  if config.model.prior_learning == 'ratio' and config.objective.name == 'ranking_nce':
    raise ConfigError('config.objective.name=ranking_nce is invalid for task latent_images; allowed '
                      'values: nce, noisier_nce, nwj')


def data_split(config):
  """``(source, train, validation, test)``: a source and index arrays into it.

  Anomaly runs pool the dataset's splits and re-split them by the reference protocol (fixed
  by ``data.split_seed``, the same for every training seed); a test set larger than
  ``num_test`` is cut to a random subset (its prevalence kept in expectation). Without an anomaly class,
  the train split trains and validates and the test split tests."""
  d = config.data
  train_source = open_dataset(config, 'train')
  pool = images.PooledSource([train_source, open_dataset(config, 'test')])
  if d.anomaly_digit < 0:
    train, test = np.arange(len(train_source)), np.arange(len(train_source), len(pool))
  else:
    train, test = anomaly_split.anomaly_split(images.labels_of(pool), d.anomaly_digit, seed=d.split_seed)
  rng = np.random.default_rng(d.split_seed)
  train = rng.permutation(train)
  cut = int(round(d.validation_fraction * len(train)))
  validation, train = np.sort(train[:cut]), np.sort(train[cut:])
  if d.num_test < len(test):
    test = np.sort(rng.choice(test, d.num_test, replace=False))
  return pool, train, validation, test


def make_model(config, image_shape) -> latent_ebm.LatentEBM:
  m = config.model
  return latent_ebm.make_latent_ebm(
      image_shape, generator=m.generator, latent_dim=m.latent_dim, generator_features=m.generator_features,
      generator_hidden=tuple(m.generator_hidden), prior_hidden=tuple(m.hidden),
      num_stages=config.objective.num_stages if m.prior_learning == 'ratio' else 1,
      sampler=m.sampler, encoder=m.encoder, embed_dim=m.embed_dim, amortizer_widths=tuple(m.amortizer_widths),
      diffusion_steps=m.diffusion_steps, prior_fraction=m.prior_fraction, observation_std=m.observation_std,
      posterior_steps=m.posterior_steps, posterior_step_size=m.posterior_step_size,
      prior_steps=m.prior_steps, prior_step_size=m.prior_step_size, time_features=m.time_features,
      denoiser_output=m.denoiser_output, prior_activation=m.prior_activation, negatives_from=m.negatives_from,
      **(reference_amortizer(config) if m.step == 'reference' else {}))


def reference_amortizer(config) -> dict:
  """The amortiser settings of DAMC's reference iteration (``model.step = 'reference'``)."""
  r = config.reference
  return dict(amortizer_loss='sum', amortizer_updates=r.amortizer_updates, target_rate=r.target_rate,
              target_every=r.target_every)


def reference_step(config, model, objective) -> tuple:
  """``(optimizer, train_step)`` of DAMC's reference iteration, or ``(None, None)`` (the engine's)."""
  if config.model.step != 'reference':
    return None, None
  r = config.reference
  rates = {'generator': r.generator_learning_rate, 'prior': r.prior_learning_rate}
  if config.model.sampler == 'damc':
    rates['amortizer'] = r.amortizer_learning_rate
  tx = latent_ebm.reference_optimizer(rates, b1=r.b1, clip_norm=r.clip_norm, decay_rate=r.decay_rate,
      decay_every=r.decay_every, amortizer_updates=r.amortizer_updates)
  return tx, latent_ebm.make_reference_train_step(model, objective, tx)


def _eval_images(source, indices, config):
  batch = images.image_batches(source, batch_size=len(indices), seed=config.seed, indices=indices,
                               shuffle=False, dequantize=False, image_size=config.data.image_size)[0]
  return jnp.asarray(batch['image']), np.asarray(batch['label'])


def build(config) -> Task:
  source, train, validation, test = data_split(config)
  side = config.data.image_size
  shape = (side, side, source[0]['image'].shape[-1]) if side else tuple(source[0]['image'].shape)
  model = make_model(config, shape)
  params = model.init(jax.random.fold_in(jax.random.PRNGKey(config.seed), 1))
  objective = make_objective(config) if config.model.prior_learning == 'ratio' else None
  loss_fn = model.make_loss(objective)

  # Each process reads its shard and its slice of every global batch (multi-host ready).
  per_process = config.train.batch_size // jax.process_count()
  train_batches = images.image_batches(
      source, batch_size=per_process, seed=config.seed, shard_index=jax.process_index(),
      shard_count=jax.process_count(), indices=train, dequantize=True, image_size=side)
  spd = config.train.steps_per_dispatch

  def batches_for(step):
    """Batches ``step .. step + spd - 1``: random access, so a resumed run reads the same ones."""
    return {'image': np.stack([train_batches[step + i]['image'] for i in range(spd)])}

  x_test, labels = _eval_images(source, test, config)
  x_validation, _ = _eval_images(source, validation, config)
  score_std = config.score.observation_std or None
  score = jax.jit(lambda params, key, x: model.anomaly_scores(key, params, x, num_steps=config.score.steps,
                                                              observation_std=score_std))
  # The prior is fitted to posteriors under the training likelihood; the scoring chains' z follow
  # score.observation_std (sharper for digit 1), where the prior is extrapolating.
  posterior = jax.jit(lambda params, key: model.sample_posterior(key, params, x_validation))
  reconstruct = jax.jit(lambda params, key: model.generator.apply(
      params['generator'], model.sample_posterior(key, params, x_test[:64])))
  eval_key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 3)
  base = noise.isotropic_gaussian(model.latent_dim)

  def eval_fn(params):
    scores = {k: np.asarray(v) for k, v in score(params, eval_key, x_test).items()}
    held_out = score(params, eval_key, x_validation)
    s_posterior = np.asarray(model.log_ratio(params, posterior(params, eval_key)))
    s_noise = np.asarray(model.log_ratio(params, base.sample(eval_key, (len(s_posterior),))))
    metrics = {'test_mean_squared_error': float(np.mean(scores['reconstruction'])) / x_test[0].size,
               'validation_reconstruction': float(jnp.mean(held_out['reconstruction'])),
               'mean_score': float(np.mean(scores['joint'])),
               # The chasm the prior crosses: held-out normals' training posterior vs N(0, I).
               'chasm_log_ratio': float(np.mean(s_posterior) - np.mean(s_noise)),
               'chasm_accuracy': float(0.5 * (np.mean(s_posterior > 0) + np.mean(s_noise < 0)))}
    if config.data.anomaly_digit >= 0:
      anomalous = labels == config.data.anomaly_digit
      metrics['positive_rate'] = float(np.mean(anomalous))  # AUPRC of a random score
      for term, suffix in (('joint', ''), ('reconstruction', '_reconstruction'), ('prior', '_prior')):
        metrics['auprc' + suffix] = ranking_metrics.average_precision(scores[term], anomalous)
        metrics['auroc' + suffix] = ranking_metrics.roc_auc(scores[term], anomalous)
      metrics['auprc_trapezoid'] = ranking_metrics.trapezoidal_auprc(scores['joint'], anomalous)
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
  references = {}
  if config.data.dataset.startswith('mnist') and digit in PAPER_AUPRC.get(variant_name(config), {}):
    references['auprc'] = PAPER_AUPRC[variant_name(config)][digit]  # the paper's, another protocol
  metrics = ('auprc', 'auroc', 'test_mean_squared_error') if digit >= 0 else ('test_mean_squared_error',)
  optimizer, train_step = reference_step(config, model, objective)
  trained_by = ({'optimizer': optimizer, 'train_step': train_step} if train_step else
                {'loss_fn': loss_fn, 'sample_batch': model.make_sampler(objective)})
  return Task(init_params=params, eval_fn=eval_fn, references=references, table_metrics=metrics,
              report=report, batches_for=batches_for, **trained_by)


def variant_name(config) -> str:
  """``mle``, ``nce``, ``nwj`` or ``noisier_nce_k{K}``: how the prior is learned."""
  if config.model.prior_learning == 'mle':
    return 'mle'
  name = config.objective.name
  return f'{name}_k{config.objective.num_stages}' if name == 'noisier_nce' else name


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
