"""Config sections; each task's ``get_config()`` composes the ones its task reads.

A field a task does not read is not in its config, so ``--config.optimizer.learning_rate=0.1`` on
a task with its own optimisers is refused at the command line instead of recorded and ignored.
The checks (``experiments/core/checks.py``) check the sections present.

- :func:`base_config`: every task (name, seed, data);
- :func:`add_engine`: a trained task's loop (``train``, ``parallel``);
- :func:`add_optimizer`: a task trained by the engine's one optimiser;
- :func:`add_ratio`: a log-ratio model and its objective (``model``, ``objective``);
- :func:`add_likelihood`: log Z and test log-likelihood after training;
- :func:`ratio_config`: the ratio-estimation family, all of the above but the likelihood.
"""

import ml_collections


def base_config(task: str) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.task = task       # a module of experiments/tasks: density_chasm | gaussian | toy_densities | ...
  config.seed = 0          # root of every key: data, noise, init
  config.data = ml_collections.ConfigDict()  # task-specific
  return config


def add_engine(config) -> ml_collections.ConfigDict:
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

  config.parallel = ml_collections.ConfigDict()
  config.parallel.backend = 'shard_map'  # shard_map | pmap
  config.parallel.num_devices = 0        # 0: all local devices
  return config


def add_optimizer(config) -> ml_collections.ConfigDict:
  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.name = 'adam'         # adam | sgd
  config.optimizer.learning_rate = 1e-2  # > 0: the initial rate
  config.optimizer.schedule = 'constant'  # constant | cosine (to 0 at train.num_steps)
  config.optimizer.grad_clip_norm = 0.0  # >= 0; 0 disables clipping
  return config


def add_ratio(config) -> ml_collections.ConfigDict:
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
  return config


def add_likelihood(config) -> ml_collections.ConfigDict:
  config.likelihood = ml_collections.ConfigDict()  # log Z by every estimator after training
  config.likelihood.num_samples = 10000  # per side: model samples (MALA) and q0 samples; 0 disables
  config.likelihood.num_chains = 100     # MALA chains, started at held-out data
  config.likelihood.num_warmup = 500     # step-size adaptation steps, discarded
  config.likelihood.thin = 5             # keep every thin-th step
  return config


def ratio_config(task: str) -> ml_collections.ConfigDict:
  """A ratio-estimation task trained by the engine: model, objective, optimiser, loop."""
  return add_ratio(add_optimizer(add_engine(base_config(task))))
