"""Latent-space EBM on CelebA, centre-cropped and resized to 64 x 64 (N²CE M = 100, K = 3).

Needs ``celeb_a`` prepared as array_record in ``data.data_dir`` (docs/data.md).
"""

from experiments.configs import image_lebm


def get_config():
  return image_lebm.config_for('celeb_a', image_size=64, generator_features=64, prior_hidden=(200, 200))
