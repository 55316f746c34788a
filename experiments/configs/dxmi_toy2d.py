"""DxMI on a 2-D toy density: the teacher's T-step sampler fine-tuned against an energy.

Train the teacher first (``runs/ddpm_toy2d``), then
``python -m experiments.main --config=experiments/configs/dxmi_toy2d.py``; ``energy.loss``
picks DxMI's own energy loss or NCE / N²CE (M = ``energy.magnitude``) / NWJ on ``s = -E``.
Writes ``dxmi_samples.png`` (data, the teacher's and the fine-tuned samples, the energy).
The defaults follow the reference's CIFAR-10 config (one time-independent network for energy and
values, no costs in the value target, the last sigma fixed, tau1 = 0.1): on 8gaussians with
T = 4 they hold their gain, where the separate value network of the issue's description oscillates
(docs/dxmi.md).
"""

import ml_collections

from experiments.configs import ddpm_toy2d


def get_config():
  config = ddpm_toy2d.student_config('dxmi_toy2d')
  config.sampler = ml_collections.ConfigDict()
  config.sampler.steps = 4                    # T >= 1
  config.sampler.network_learning_rate = 1e-5  # > 0: the teacher's epsilon network, fine-tuned
  config.sampler.sigma_learning_rate = 1e-3   # > 0: log sigma_t
  config.sampler.grad_clip_norm = 1.0         # > 0
  config.energy = ml_collections.ConfigDict()
  config.energy.loss = 'dxmi'                 # dxmi | nce | noisier_nce | nwj
  config.energy.hidden = (128, 128)
  config.energy.learning_rate = 1e-4          # > 0 (also the value steps' when value.shared_with_energy)
  config.energy.magnitude = 100.0             # > 0: N²CE's M (loss = noisier_nce)
  config.value = ml_collections.ConfigDict()
  config.value.hidden = (128, 128)
  config.value.learning_rate = 1e-3           # > 0
  config.value.shared_with_energy = True      # True: the energy is every V^t (the reference's CIFAR-10)
  config.dxmi = ml_collections.ConfigDict()
  config.dxmi.tau_entropy = 0.1               # tau1 >= 0
  config.dxmi.tau_velocity = 0.01             # tau2 >= 0
  config.dxmi.gamma = 1.0                     # >= 0: DxMI's energy square penalty
  config.dxmi.velocity_decay = 0.99           # in [0, 1): s_t^2's running average
  config.dxmi.costs_in_value = False          # True: the value target adds tau2 c_t - tau1 log sigma_t
  config.dxmi.train_last_sigma = False        # False: the last step's sigma stays fixed
  config.train.num_steps = 1000
  config.train.batch_size = 512
  config.train.steps_per_dispatch = 50
  config.train.sync_every = 50
  config.train.log_every = 250
  config.train.eval_every = 50                # the curves of iterations-to-threshold
  config.train.checkpoint_every = 500
  config.train.ema_decay = 0.0                # evaluation sees the parameters (DxMI keeps no average)
  return config


def get_sweep():
  """``python -m experiments.sweep --config=experiments/configs/dxmi_toy2d.py --seeds=5
  --workdir=W``: every energy loss of the comparison on the same seeds (the whole comparison,
  teachers and tables included: ``python -m experiments.report.samplers``)."""
  return {'energy.loss': ['dxmi', 'nce', 'noisier_nce']}
