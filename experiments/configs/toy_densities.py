"""2-D toy densities against a Gaussian fitted to the data, MLP ratio.

Test NLL uses the exact normaliser of exp(s) q0 by quadrature on a grid; a heat map of the
learned density is saved beside the data.
"""

from experiments.configs import common


def get_config():
  config = common.add_likelihood(common.ratio_config('toy_densities'))
  config.data.dataset = '8gaussians'  # 8gaussians | checkerboard | two_spirals | rings | pinwheel
  config.data.num_test = 10000
  config.data.grid_size = 200         # quadrature grid per axis over [-grid_limit, grid_limit]^2
  config.data.grid_limit = 5.0
  config.model.name = 'mlp'
  config.model.hidden = (128, 128)
  config.optimizer.learning_rate = 1e-3
  config.train.num_steps = 5000
  config.train.batch_size = 512
  config.train.eval_every = 500
  config.train.checkpoint_every = 5000
  config.train.ema_decay = 0.999
  return config
