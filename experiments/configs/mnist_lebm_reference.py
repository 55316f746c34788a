"""The DAMC reference's MNIST anomaly model at its own size and with its own iteration, for an accelerator.

As ``yuPeiyu98/Diffusion-Amortized-MCMC`` ``train_anomaly_det.py``: z of 8 dimensions; the conv
generator z -> 7x7x1024 -> 14x14x512 -> 28x28x256 -> 1 (10.9M parameters); a 200-200 prior with
LeakyReLU(0.2); sigma 1; 30 posterior Langevin steps of 0.1 and 60 prior steps of 0.4; the
amortiser a 100-step latent diffusion model with a 128-feature time embedding, concat-squash
layers to the output and the reference's InstanceNorm conv encoder to a 1,024-feature embedding
(20.5M parameters); batch 128. Its iteration (``model.step = 'reference'``): chains from a target
amortiser (EMA at 0.005 every 10 iterations), 6 amortiser updates on the conditional plus the
prior-embedding loss, then the generator and the prior; MLE's negatives start at the posterior
chains' start; one Adam per network (G 1e-4, Q 1e-4, E 5e-5, betas (0.5, 0.999), x0.99 every 1,000
iterations, clip 100 each), raw parameters evaluated. The prior by N²CE, M = 100, K = 3 (the
reference learns it by MLE: ``--config.model.prior_learning=mle``). Differences left (docs/damc.md):
PyTorch's default initialisation, mnist5k's 5,000 images (Fashion-MNIST: ``data.dataset``) in place
of all 70,000 of MNIST, dequantised pixels, and selection on validation normals.
"""

from experiments.configs import mnist_lebm


def get_config():
  config = mnist_lebm.get_config()
  config.model.generator = 'reference'
  config.model.generator_features = 128  # ngf
  config.model.encoder = 'reference'
  config.model.embed_dim = 1024
  config.model.time_features = 128
  config.model.denoiser_output = 'concat_squash'
  config.model.prior_activation = 'leaky_relu'
  config.model.amortizer_widths = (128, 256, 256)
  config.model.diffusion_steps = 100
  config.model.step = 'reference'
  config.model.negatives_from = 'posterior_start'
  config.objective.num_stages = 3
  config.train.batch_size = 128
  config.train.num_steps = 20000
  config.train.ema_decay = 0.0  # the reference evaluates its raw parameters
  config.train.log_every = 500
  config.train.eval_every = 2000
  config.train.checkpoint_every = 2000
  return config
