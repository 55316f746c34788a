"""The teacher DDPM of the sampler experiments on a 2-D toy density (about a minute on a CPU).

``python -m experiments.main --config=experiments/configs/ddpm_toy2d.py`` trains an
epsilon-prediction MLP over 1,000 diffusion steps; its run directory (``runs/ddpm_toy2d``) is
what ``dxmi_toy2d.py``'s ``teacher.workdir`` names. Evaluation: sliced W2, MMD and modes
covered of the 1,000-step ancestral samples and of the few-step VAR samplers cut from it.
"""

import ml_collections

from experiments.configs import common


def teacher_config(hidden: tuple[int, ...]) -> ml_collections.ConfigDict:
  """The teacher's fields, shared with the image teacher (``ddpm_images.py``)."""
  teacher = ml_collections.ConfigDict()
  teacher.hidden = hidden                # the epsilon MLP's widths, positive integers
  teacher.diffusion_steps = 1000         # N >= 2
  teacher.beta_start = 1e-4              # in (0, 1): beta linear from here ...
  teacher.beta_end = 0.02                # ... to here, >= beta_start
  teacher.prediction = 'epsilon'         # epsilon | v: what the MLP outputs (read back as epsilon)
  teacher.eval_steps = (4, 10, 100)      # few-step samplers judged at each eval, >= 1 each
  return teacher


def student_config(task: str) -> ml_collections.ConfigDict:
  """The fields of a task that reads a finished ``ddpm_toy2d`` run (DxMI, SiD)."""
  config = common.add_engine(common.base_config(task))
  config.data.dataset = '8gaussians'  # 8gaussians | checkerboard | two_spirals | rings | pinwheel
  config.data.num_test = 5000         # held-out points the samples are compared with
  config.teacher = get_config().teacher  # must match the teacher run's
  config.teacher.workdir = 'runs/ddpm_toy2d'  # a ddpm_toy2d run directory
  return config


def get_config():
  config = common.add_optimizer(common.add_engine(common.base_config('ddpm_toy2d')))
  config.data.dataset = '8gaussians'   # 8gaussians | checkerboard | two_spirals | rings | pinwheel
  config.data.num_test = 5000          # held-out points the samples are compared with
  config.teacher = teacher_config(hidden=(256, 256, 256))
  config.teacher.num_eval_samples = 5000   # >= 2
  config.optimizer.learning_rate = 1e-3
  config.optimizer.schedule = 'cosine'
  config.train.num_steps = 20000
  config.train.batch_size = 512
  config.train.steps_per_dispatch = 100
  config.train.sync_every = 100
  config.train.log_every = 2000
  config.train.eval_every = 5000
  config.train.checkpoint_every = 5000
  config.train.ema_decay = 0.999
  return config
