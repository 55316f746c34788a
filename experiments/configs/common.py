"""Fields shared by every task config; each task's ``get_config()`` starts from here."""

import ml_collections


def base_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.task = ''         # a module of experiments/tasks: density_chasm | gaussian | toy_densities | ...
  config.seed = 0          # root of every key: data, noise, init
  config.compare = ''      # comma-separated objectives run side by side ('' runs objective.name)
  config.num_seeds = 1     # with compare: seeds seed .. seed + num_seeds - 1 for each objective

  config.data = ml_collections.ConfigDict()  # task-specific

  config.model = ml_collections.ConfigDict()
  config.model.name = 'gaussian'   # gaussian (exponential family) | mlp | resmlp (pre-norm residual MLP)
  config.model.hidden = (128, 128)  # mlp only
  config.model.width = 512          # resmlp only: the residual stream's width
  config.model.num_blocks = 2       # resmlp only: residual blocks >= 1

  config.objective = ml_collections.ConfigDict()
  config.objective.name = 'noisier_nce'  # nce | noisier_nce | nwj | ranking_nce
  config.objective.magnitude = 100.0     # N^2CE's M in (0, 1e12] (noisier_nce only); the initial M of a decay
  config.objective.magnitude_schedule = 'constant'  # constant | linear | cosine | exponential (in log M)
  config.objective.final_magnitude = 1.0  # in (0, 1e12]: M at train.num_steps for the decays
  config.objective.log_magnitude = 0.0   # >= 0; > 0: N^2CE's constant log M replacing magnitude (M > 1e12)
  config.objective.noise_ratio = 1       # real noise samples per data sample >= 1 (nce's nu)
  config.objective.num_candidates = 16   # ranking_nce's N >= 2 (one data + N-1 noise)
  config.objective.num_stages = 1        # telescoping waymark stages K >= 1
  config.objective.l2_penalty = 0.0      # lambda >= 0 of lambda * E[s^2]

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.name = 'adam'         # adam | sgd
  config.optimizer.learning_rate = 1e-2  # > 0: the initial rate
  config.optimizer.schedule = 'constant'  # constant | cosine (to 0 at train.num_steps)
  config.optimizer.grad_clip_norm = 0.0  # >= 0; 0 disables clipping

  config.train = ml_collections.ConfigDict()
  config.train.num_steps = 8000
  config.train.batch_size = 1000        # global; divisible by the device count
  config.train.steps_per_dispatch = 50  # optimizer steps per compiled call (lax.scan)
  config.train.sync_every = 50          # block on outputs at least this often (fake devices hang otherwise)
  config.train.log_every = 1000         # multiples of steps_per_dispatch; 0: only at the end
  config.train.eval_every = 100
  config.train.checkpoint_every = 2000
  config.train.max_checkpoints = 2
  config.train.ema_decay = 0.99         # in [0, 1); evaluation uses the EMA params
  config.train.on_nonfinite = 'stop'    # stop | skip

  config.likelihood = ml_collections.ConfigDict()  # log Z by every estimator after training
  config.likelihood.num_samples = 10000  # per side: model samples (MALA) and q0 samples; 0 disables
  config.likelihood.num_chains = 100     # MALA chains, started at held-out data
  config.likelihood.num_warmup = 500     # step-size adaptation steps, discarded
  config.likelihood.thin = 5             # keep every thin-th step

  config.parallel = ml_collections.ConfigDict()
  config.parallel.backend = 'shard_map'  # shard_map | pmap
  config.parallel.num_devices = 0        # 0: all local devices
  return config
