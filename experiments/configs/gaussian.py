"""d-dimensional Gaussian data against N(0, I) noise, Gaussian family as the model.

Reports the parameter error against the truth and against the closed-form MLE of the same
samples; in 2-D also the cosine between the objective's gradient and the exact MLE gradient.
"""

from experiments.configs import common


def get_config():
  config = common.add_likelihood(common.ratio_config('gaussian'))
  config.data.dim = 5           # >= 1
  config.data.num_train = 1000  # n: the MLE is of these samples
  config.data.num_test = 10000
  # True: one pool of noise_ratio * num_train noise points drawn once and resampled like the
  # data (the fixed-sample estimator of Prop. 3.3); False: fresh noise every step.
  config.data.fixed_noise = False
  config.model.name = 'gaussian'
  config.train.num_steps = 4000
  config.train.log_every = 1000
  config.train.eval_every = 200
  return config


def get_sweep():
  """``python -m experiments.sweep --config=<this file>`` without ``--grid``: the U-shape in M."""
  return {'objective.name': ['noisier_nce'], 'objective.magnitude': [1.0, 10.0, 100.0, 1000.0, 10000.0],
          'data.num_train': [1000, 10000]}
