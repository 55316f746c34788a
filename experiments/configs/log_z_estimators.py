"""log Z estimators (IS, reverse IS, bridge, optimal bridge = RLR = MIS = NCE) against the
number of samples on d-dim Gaussian pairs of growing KL; no training.

``python -m experiments.main --config=experiments/configs/normalizers.py`` writes
``normalizers.{md,json,png}`` in the workdir (docs/normalizers.md shows them).
"""

from experiments.configs import common


def get_config():
  config = common.base_config('log_z_estimators')
  config.data.num_seeds = 10                        # >= 1: independent repeats per cell
  config.data.dim = 10                              # >= 1
  # Target std > 0; inside (1/sqrt 2, sqrt 2) both IS and reverse IS have finite variance.
  config.data.scale = 0.8
  config.data.kl_values = (1.0, 5.0, 20.0, 50.0)    # KL(pi || q) in nats, each >= the unshifted pair's
  config.data.sample_sizes = (100, 1000, 10000, 100000)  # N per side, each >= 2
  return config
