"""Latent-space EBM on CIFAR-10 at the paper's scale (LEBM architecture, N²CE M = 100, K = 3).

Needs CIFAR-10 prepared as array_record in ``data.data_dir`` (docs/data.md says how); meant
for accelerators and multi-host runs. FID needs ``eval.inception_path`` (skipped otherwise).
"""

from experiments.configs import image_lebm


def get_config():
  return image_lebm.config_for('cifar10', image_size=0, generator_features=128, prior_hidden=(1000, 1000))
