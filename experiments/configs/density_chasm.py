"""TRE's 1-D density chasm: q* = N(0, sigma^2) against q0 = N(0, 1), quadratic model.

KL(q* || q0) = -log sigma - 1/2 + sigma^2 / 2: 6.41 nats at sigma = 1e-3 (the default; one run
of N^2CE with M = 100, or ``python -m experiments.main`` with no flags: NCE beside it over 3 seeds,
about a minute on 2 CPU cores), 13.3 at 1e-6.
"""

from experiments.configs import common


def get_config():
  config = common.add_likelihood(common.ratio_config('density_chasm'))
  config.data.sigma = 1e-3       # > 0: data standard deviation
  config.data.num_train = 10000  # TRE's sample size
  config.data.num_test = 10000
  config.data.tolerance = 0.1    # nats: report the first step the KL estimate stays this close
  config.model.name = 'gaussian'
  # Adam's constant step leaves N^2CE (whose gradient variance grows with M) jittering by
  # ~0.1 nat; a 500-step EMA makes "stays within 0.1 nat" measure convergence, not jitter.
  config.train.ema_decay = 0.998
  return config


def get_sweep():
  """``python -m experiments.sweep --config=<this file>`` without ``--grid``: N²CE over M (M = 1 is NCE)."""
  return {'objective.name': ['noisier_nce'], 'objective.magnitude': [1.0, 10.0, 100.0, 1000.0, 10000.0]}
