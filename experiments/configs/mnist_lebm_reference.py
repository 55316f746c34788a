"""The DAMC reference's MNIST anomaly model at its own size, for an accelerator.

As ``yuPeiyu98/Diffusion-Amortized-MCMC`` ``train_anomaly_det.py``: z of 8 dimensions; the conv
generator z -> 7x7x1024 -> 14x14x512 -> 28x28x256 -> 1 (10.9M parameters); a 200-200 prior;
sigma 1; 30 posterior Langevin steps of 0.1 and 60 prior steps of 0.4; the amortiser a
100-step latent diffusion model on a conv image embedding, p_mask 0.2; batch 128; Adam with
betas (0.5, 0.999) is not exposed, so Adam's defaults; learning rate 1e-4 (the reference gives
the prior 5e-5), gradients clipped at 100. The prior by N²CE, M = 100, K = 3.
Differences left: one amortiser update per iteration (the reference makes 6), one learning rate.
"""

from experiments.configs import mnist_lebm


def get_config():
  config = mnist_lebm.get_config()
  config.model.generator = 'reference'
  config.model.generator_features = 128  # ngf
  config.model.encoder = 'conv'
  config.model.embed_dim = 128
  config.model.amortizer_widths = (128, 256, 256)
  config.model.diffusion_steps = 100
  config.objective.num_stages = 3
  config.optimizer.learning_rate = 1e-4
  config.train.batch_size = 128
  config.train.num_steps = 20000
  config.train.log_every = 500
  config.train.eval_every = 2000
  config.train.checkpoint_every = 2000
  return config
