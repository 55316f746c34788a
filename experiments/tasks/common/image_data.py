"""Image datasets and what the 28x28 sampler tasks share (``ddpm_images``, ``dxmi_images``,
``sid_images``, ``teacher_sampling``): a dataset opened (built offline on first use when a
package ships it), images as flat vectors in ``[-1, 1]``, their training batches, the teacher
run's bar, and the judge of samples: a small classifier trained on
the same training split (fixed seed and steps, so every run and method gets the same one), in
whose features the Fréchet distance and KID to the test split are measured, with the KL of the
predicted-class histogram to uniform.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from experiments.core import plotting
from experiments.core.checks import ConfigError, number, one_of, widths
from nnce_jax import classifier, fid
from nnce_jax.data import builders, images

DATASETS = ('mnist5k', 'fashion_mnist')
SIDE = 28
DIM = SIDE * SIDE
TEACHER_CONFIG = 'experiments/configs/ddpm_images.py'
CLASSIFIER_SEED = 12345  # not config.seed: one judge for every seed and method


def open_dataset(config, split):
  """The TFDS source of ``config.data.dataset``; local (package-shipped) datasets are built
  on first use, anything else must be prepared (the error says how)."""
  data_dir = os.path.expanduser(config.data.data_dir)
  name = config.data.dataset
  if name in builders.LOCAL_BUILDERS and not os.path.isdir(os.path.join(data_dir, name)):
    logging.info('building %s into %s (offline, from an installed package)', name, data_dir)
    builders.prepare(name, data_dir)
  return images.image_source(name, split, data_dir)


def check(config) -> None:
  one_of(config, 'data.dataset', DATASETS)
  number(config, 'data.num_test', low=2, integer=True)
  number(config, 'judge.num_samples', low=2, integer=True)
  number(config, 'judge.train_steps', low=1, integer=True)
  number(config, 'judge.num_train', low=10, integer=True)
  widths(config, 'judge.hidden')


def train_batches(config):
  """``batches_for(step) -> {'image': [steps_per_dispatch, B, DIM]}``: dequantised training
  images, random access, so a resumed run reads the batches an unbroken one would."""
  source = open_dataset(config, 'train')
  batches = images.image_batches(source, batch_size=config.train.batch_size // jax.process_count(),
                                 seed=config.seed, shard_index=jax.process_index(),
                                 shard_count=jax.process_count(), dequantize=True)
  spd = config.train.steps_per_dispatch

  def batches_for(step):
    stacked = np.stack([batches[step + i]['image'] for i in range(spd)])
    return {'image': stacked.reshape(spd, stacked.shape[1], DIM)}

  return batches_for


def split_arrays(config, split: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
  """The first ``limit`` images of ``split`` (a fixed random subset when the split is larger),
  ``[n, DIM]`` in ``[-1, 1]``, and their labels."""
  source = open_dataset(config, split)
  indices = np.arange(len(source))
  if limit < len(indices):
    indices = np.sort(np.random.default_rng(0).choice(indices, limit, replace=False))
  batch = images.image_batches(source, batch_size=len(indices), seed=0, indices=indices, shuffle=False,
                               dequantize=False)[0]
  return batch['image'].reshape(len(indices), DIM), np.asarray(batch['label'])


class Judge:
  """The fixed feature classifier of ``config.judge`` and the test split it compares with."""

  def __init__(self, config):
    j = config.judge
    x_train, y_train = split_arrays(config, 'train', j.num_train)
    self.x_test, y_test = split_arrays(config, 'test', config.data.num_test)
    self.model = classifier.FeatureClassifier(tuple(j.hidden))
    self.params = classifier.train_classifier(self.model, jax.random.PRNGKey(CLASSIFIER_SEED),
                                              jnp.asarray(x_train), jnp.asarray(y_train),
                                              num_steps=j.train_steps)
    self.test_accuracy = classifier.accuracy(self.model, self.params, jnp.asarray(self.x_test),
                                             jnp.asarray(y_test))
    self._features = jax.jit(lambda params, x: self.model.apply(params, x, features=True))
    self.test_features = self.features(self.x_test)

  def features(self, x) -> np.ndarray:
    return np.asarray(self._features(self.params, jnp.asarray(x)), np.float64)

  def metrics(self, samples) -> dict:
    """Fréchet distance and KID (subsets of up to 1,000) of ``samples [n, DIM]`` to the test
    split in the classifier's features, and the class histogram's KL to uniform."""
    samples = np.clip(samples, -1, 1)  # judged as images: pixels live in [-1, 1]
    distances = fid.feature_distances(self.features, samples, self.test_features)
    return {'frechet_distance': distances['frechet_distance'], 'kid': distances['kid'],
            'class_kl': classifier.class_histogram_kl(self.model, self.params, jnp.asarray(samples))}


def save_grid(samples, workdir: str, name: str) -> str:
  path = os.path.join(workdir, name)
  plotting.image_grid(np.asarray(samples[:64]).reshape(-1, SIDE, SIDE, 1), path)
  return path


def teacher_bar(config, steps: int) -> float:
  """The teacher run's final ``steps``-step Fréchet distance, by the same judge (a student run
  under another judge is refused: its bar was measured in other features)."""
  workdir = os.path.expanduser(config.teacher.workdir)
  path = os.path.join(workdir, 'summary.json')
  if not os.path.exists(path):
    raise FileNotFoundError(f'the teacher run in {workdir} has not finished (no summary.json); finish '
                            f'it with `python -m experiments.main --config={TEACHER_CONFIG} '
                            f'--workdir={workdir}`')
  with open(path) as f:
    summary = json.load(f)
  trained = summary['config']
  if trained['judge'] != json.loads(json.dumps(config.judge.to_dict())) or (
      trained['data']['num_test'] != config.data.num_test):
    raise ConfigError(f'config.judge / config.data.num_test differ from the teacher run in {workdir}; '
                      'its bar was measured by another judge')
  key = f'frechet_distance_{steps}_steps'
  if key not in summary['final']:
    raise ConfigError(f'the teacher run in {workdir} did not judge its {steps}-step sampler; '
                      f'its config.teacher.eval_steps must hold {steps}')
  return summary['final'][key]
