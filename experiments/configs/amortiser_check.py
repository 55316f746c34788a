"""DAMC's amortiser against long-run Langevin on a toy generator with a known posterior (seconds on a CPU).

``python -m experiments.main --config=experiments/configs/amortiser_check.py`` trains ``Q`` and
writes ``amortiser_check.png``; the summary's ``amortised_distance`` (Q + K Langevin steps) and
``short_run_distance`` (K steps from N(0, I)) are sliced Wasserstein distances to the long run.
"""

import ml_collections

from experiments.configs import common


def get_config():
  config = common.add_optimizer(common.add_engine(common.base_config('amortiser_check')))
  config.model = ml_collections.ConfigDict()
  config.data.observation_dim = 4        # x = W tanh(A z) + sigma eps, z in 2-D
  config.data.observation_std = 0.3      # > 0: smaller makes the posterior sharper and farther from N(0, I)
  config.data.num_eval_observations = 8  # held-out x
  config.data.samples_per_observation = 256
  config.data.long_run_steps = 2000      # the ground truth's Langevin steps
  config.model.posterior_steps = 20      # K: Langevin steps per iteration (and for short-run)
  config.model.posterior_step_size = 0.1  # s: z += s^2/2 grad + s xi
  config.model.diffusion_steps = 20
  config.model.amortizer_widths = (64, 64)
  config.optimizer.learning_rate = 2e-3
  config.train.num_steps = 1500
  config.train.batch_size = 256
  config.train.steps_per_dispatch = 50
  config.train.sync_every = 50
  config.train.log_every = 200
  config.train.eval_every = 250
  config.train.checkpoint_every = 1500
  config.train.ema_decay = 0.0
  return config
