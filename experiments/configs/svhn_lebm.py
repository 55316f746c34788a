"""Latent-space EBM on SVHN (cropped digits, 32 x 32) at the paper's scale (N²CE M = 100, K = 3).

Needs ``svhn_cropped`` prepared as array_record in ``data.data_dir`` (docs/data.md).
"""

from experiments.configs import image_lebm


def get_config():
  return image_lebm.config_for('svhn_cropped', image_size=0, generator_features=64, prior_hidden=(200, 200))
