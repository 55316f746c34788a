"""TRE's high-dimensional MI benchmark: (d, MI) = (40, 10), (80, 20), (160, 40), (320, 80) nats.

``q*``: correlated 2 x 2 blocks; ``q0 = N(0, I)``, the product of its marginals. The MI
estimate is ``E_q*[s]`` on held-out data. Quadratic (``model.name = gaussian``) or MLP heads.
"""

from experiments.configs import common


def get_config():
  config = common.add_likelihood(common.ratio_config('mutual_information'))
  config.data.dim = 40                   # even, >= 2
  config.data.mutual_information = 10.0  # nats, > 0
  config.data.num_train = 100000         # TRE's sample size
  config.data.num_test = 10000
  config.data.tolerance = 0.05           # relative: the first step the estimate stays within 5%
  config.model.name = 'gaussian'         # gaussian (quadratic) | mlp
  config.optimizer.learning_rate = 3e-3  # 1e-2 and 3e-2 overshoot MI = 10 at d = 40 by 2 and 8 nats
  config.train.num_steps = 8000
  config.train.batch_size = 500
  config.train.log_every = 1000
  config.train.eval_every = 200
  config.train.checkpoint_every = 8000
  config.train.ema_decay = 0.99
  config.likelihood.num_samples = 0      # MALA in 320-D is slow; enable for log Z
  return config


def get_sweep():
  """``python -m experiments.sweep --config=<this file>`` without ``--grid``: N²CE's estimate saturates
  near log M, so M is swept up to the tested 1e12 (log M = 27.6 nats)."""
  return {'objective.name': ['noisier_nce'], 'objective.magnitude': [1e2, 1e4, 1e8, 1e12]}
