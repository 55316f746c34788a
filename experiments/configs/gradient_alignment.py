"""The N^2CE gradient against the exact MLE gradient on a 2-D Gaussian, for a grid of M; no training.

``python -m experiments.main --config=experiments/configs/gradient_alignment.py`` writes
``gradient_alignment.{md,json,png}`` in the workdir: cosines, the bias against M -> inf and its slope.
"""

from experiments.configs import common


def get_config():
  config = common.base_config('gradient_alignment')
  config.data.num_samples = 1_000_000  # common samples for every M, >= 2
  config.data.magnitudes = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)  # M in [1, 1e12]
  return config
