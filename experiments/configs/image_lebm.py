"""The paper-scale latent EBM shared by the CIFAR-10, SVHN and CelebA configs.

LEBM's settings (Pang et al. 2020) with the prior learned by N²CE: z of 100 dimensions,
sigma = 0.3, 20 posterior Langevin steps of size 0.1, batch 100, Adam 2e-4, a conv generator
upsampling by stride-2 transposed convolutions, an MLP prior with K = 3 telescoping heads.
"""

from experiments.configs import mnist_lebm


def config_for(dataset: str, *, image_size: int, generator_features: int, prior_hidden):
  config = mnist_lebm.get_config()
  config.data.dataset = dataset
  config.data.anomaly_digit = -1      # generation only
  config.data.image_size = image_size
  config.data.num_test = 1000         # images reconstructed and scored at each eval
  config.model.generator = 'conv'
  config.model.generator_features = generator_features
  config.model.hidden = prior_hidden
  config.model.latent_dim = 100
  config.model.sampler = 'short_run'  # LEBM's: chains from N(0, I)
  config.model.observation_std = 0.3
  config.model.posterior_steps = 20
  config.objective.num_stages = 3
  config.optimizer.learning_rate = 2e-4
  config.train.num_steps = 70000
  config.train.steps_per_dispatch = 10
  config.train.log_every = 500
  config.train.eval_every = 5000
  config.train.checkpoint_every = 5000
  return config
