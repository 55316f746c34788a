"""SiD on a 2-D toy density: a one-step generator distilled from the DDPM teacher.

Train the teacher first (``python -m experiments.main --config=experiments/configs/ddpm_toy2d.py
--workdir=runs/ddpm_toy2d``), then ``python -m experiments.main --config=experiments/configs/sid_toy2d.py``;
``sid.real_term`` adds a term on real data: SiD²A's adversarial loss, NCE (M = 1) or N²CE
(M = ``sid.magnitude``, 50 in the paper). The whole comparison: ``python -m experiments.report.one_step``.
"""

import ml_collections

from experiments.configs import ddpm_toy2d


def sid_config() -> ml_collections.ConfigDict:
  """SiD's fields; the defaults are the reference's (``mingyuanzhou/SiD``) but the learning rates."""
  c = ml_collections.ConfigDict()
  c.real_term = 'none'  # none | adversarial (SiD²A's) | nce (M = 1) | noisier_nce (M = magnitude)
  c.magnitude = 50.0                  # > 0: N²CE's M
  c.real_weight = 1e-4                # >= 0: the generator's real-data term per dimension against SiD's
  c.alpha = 1.2                       # >= 0: the score identity's alpha
  c.init_sigma = 2.5                  # > 0: G(z) = the teacher's denoiser at this EDM noise level
  c.t_max = 0.8                       # in (0, 1]: the generator loss's noise levels, u ~ U(0, t_max)
  c.sigma_data = 0.5                  # > 0: EDM's weight of the fake score's loss
  # > 0 each; on 8gaussians 1e-4 made the generator's sliced W2 jump between 0.12 and 0.31 from one
  # evaluation to the next, 1e-5 was smooth but slow, 3e-5 between (SiD alone, seed 0, 750 steps).
  c.generator_learning_rate = 3e-5
  c.fake_score_learning_rate = 3e-5
  c.discriminator_learning_rate = 3e-5  # real_term != none
  c.b1 = 0.0                          # in [0, 1): Adam's beta1 for every network (the reference's)
  c.discriminator_hidden = (128, 128)  # the time-conditioned MLP s(x_n, n)
  return c


def get_config():
  config = ddpm_toy2d.student_config('sid_toy2d')
  config.sid = sid_config()
  config.train.num_steps = 1000
  config.train.batch_size = 256             # the reference's CIFAR-10 batch
  config.train.steps_per_dispatch = 50
  config.train.sync_every = 50
  config.train.log_every = 250
  config.train.eval_every = 50                # the curves of quality against iterations
  config.train.checkpoint_every = 500
  config.train.ema_decay = 0.0                # evaluation sees the parameters
  return config


def get_sweep():
  """The four variants on the same seeds: ``python -m experiments.sweep
  --config=experiments/configs/sid_toy2d.py --seeds=5 --workdir=W``."""
  return {'sid.real_term': ['none', 'adversarial', 'nce', 'noisier_nce']}
