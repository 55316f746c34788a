"""Step-time benchmarks; prints one JSON object per line.

    python bench/step_time.py [--devices N] [--steps 2000] [--repeats 3] [--only engine,...]

- objective: median ms per optimizer step of NCE, N^2CE (M = 100) and NWJ through the engine,
  same model and batch, and the ratio to NCE;
- backend: steps/s of the shard_map and pmap backends over the same devices;
- engine: steps/s on 8gaussians with a 2-128-128-1 leaky-ReLU MLP, noise N(0, 4I), NCE, Adam
  1e-3, through the public engine (``estimation``, ``train.make_train_step``, ``train.train``,
  ``parallel.DataParallel``) at 1 and 20 steps per dispatch, beside a hand-written jitted optax
  step and a hand-written ``lax.scan`` of 20 such steps (the ceilings), timed the same way: the
  same warm-up, and every loop blocks on its outputs every ``SYNC_EVERY`` steps as the engine
  does; and beside a plain PyTorch loop of the same model and loss when ``torch`` is installed
  in the benchmark's environment (``pip install torch``; never a dependency of the project);
- conv_latent_ebm (``--only conv_latent_ebm``): ms per step of the DAMC reference-size latent
  EBM (``mnist_lebm_reference.py``), the accelerator measurement; skipped with a message on a CPU.

Rates are differences of two timed runs of different lengths, so compilation cancels out. The
variants compared within a group are measured round-robin and each reported as its median over
``--repeats`` rounds: on a 2-core machine one-off timings of identical work differ by 10-30%.
"""

import argparse
import json
import os
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument('--devices', type=int, default=1, help='fake CPU devices (set before JAX starts)')
parser.add_argument('--steps', type=int, default=2000, help='timed steps per measurement')
parser.add_argument('--repeats', type=int, default=3)
parser.add_argument('--batches', default='100,1000', help='batch sizes of the engine group')
parser.add_argument('--only', default='objective,backend,engine',
                    help='groups to run: objective, backend, engine, conv_latent_ebm')
args = parser.parse_args()
os.environ['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={args.devices}'
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from ml_collections import ConfigDict  # noqa: E402

from nnce_jax import estimation, models, noise, objectives  # noqa: E402
from nnce_jax import train as engine  # noqa: E402
from nnce_jax.data import toy2d  # noqa: E402
from nnce_jax.parallel import DataParallel  # noqa: E402

MODEL = models.MLPRatio(hidden=(128, 128))
BASE = noise.isotropic_gaussian(2, scale=2.0)
TX = optax.adam(1e-3)
PARAMS = MODEL.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))
SYNC_EVERY = 20  # every loop below blocks on its outputs this often (the engine's default)


def sample_data(key, n):
  return toy2d.sample('8gaussians', key, n)


def _rate(run) -> float:
  """Steps/s of ``run(num_steps)`` (which blocks): after a warm-up run (compilation), the
  difference of a short and a long run (what every run pays once cancels)."""
  run(args.steps // 4)
  start = time.perf_counter()
  run(args.steps // 4)
  short = time.perf_counter() - start
  start = time.perf_counter()
  run(args.steps // 4 + args.steps)
  return args.steps / (time.perf_counter() - start - short)


def median_rates(runs: dict) -> dict:
  """Median steps/s of each ``run`` in ``runs``, measured round-robin."""
  rates = {name: [] for name in runs}
  for _ in range(args.repeats):
    for name, run in runs.items():
      rates[name].append(_rate(run))
  return {name: float(np.median(r)) for name, r in rates.items()}


def engine_run(objective='nce', batch=1000, steps_per_dispatch=20, backend='shard_map'):
  objective_fns = objectives.make_objective(objective, magnitude=100.0)
  loss_fn = estimation.make_ratio_loss(MODEL.apply, objective_fns)
  sample_batch = estimation.make_ratio_sampler(sample_data, BASE, objective_fns.noise_per_data, batch)
  train_step = engine.make_train_step(loss_fn, TX, ema_decay=0.999, sample_batch=sample_batch)
  parallel = DataParallel(backend)

  def run(num_steps):
    num_steps -= num_steps % steps_per_dispatch
    config = ConfigDict(dict(num_steps=num_steps, steps_per_dispatch=steps_per_dispatch,
                             sync_every=max(steps_per_dispatch, SYNC_EVERY), log_every=0, eval_every=0,
                             checkpoint_every=0, on_nonfinite='stop'))
    state = engine.create_train_state(PARAMS, TX, jax.random.PRNGKey(1))
    state, _ = engine.train(state, train_step, parallel=parallel, config=config)
    jax.block_until_ready(state)

  return run


def _handwritten_step(batch):
  """One NCE step as a user would write it: sample, loss, gradient, Adam."""

  def step(params, opt_state, key):
    data_key, noise_key = jax.random.split(key)
    x, y = sample_data(data_key, batch), BASE.sample(noise_key, (batch,))

    def loss(p):
      return objectives.nce_loss(MODEL.apply(p, x)[:, 0], MODEL.apply(p, y)[:, 0])[0]

    value, grads = jax.value_and_grad(loss)(params)
    updates, opt_state = TX.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value

  return step


def handwritten_run(batch, steps_per_dispatch=1):
  """The hand-written step jitted (or ``steps_per_dispatch`` of them in a ``lax.scan``), the key
  folded in inside the jit, blocking on the losses every ``SYNC_EVERY`` steps."""
  step = _handwritten_step(batch)

  @jax.jit
  def dispatch(params, opt_state, root, first):
    def body(carry, i):
      params, opt_state = carry
      params, opt_state, value = step(params, opt_state, jax.random.fold_in(root, first + i))
      return (params, opt_state), value
    (params, opt_state), values = jax.lax.scan(body, (params, opt_state), jnp.arange(steps_per_dispatch))
    return params, opt_state, values

  def run(num_steps):
    params, opt_state, root = PARAMS, TX.init(PARAMS), jax.random.PRNGKey(1)
    pending = []
    for first in range(0, num_steps - num_steps % steps_per_dispatch, steps_per_dispatch):
      params, opt_state, values = dispatch(params, opt_state, root, first)
      pending.append(values)
      if (first + steps_per_dispatch) % max(steps_per_dispatch, SYNC_EVERY) == 0:
        jax.device_get(pending)
        pending = []
    jax.block_until_ready(params)

  return run


def torch_run(batch):
  """A plain PyTorch loop of the same model, loss and optimizer (``None`` without torch)."""
  try:
    import torch
  except ImportError:
    return None
  torch.manual_seed(0)
  model = torch.nn.Sequential(torch.nn.Linear(2, 128), torch.nn.LeakyReLU(0.01), torch.nn.Linear(128, 128),
                              torch.nn.LeakyReLU(0.01), torch.nn.Linear(128, 1))
  optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
  centres = 4.0 * torch.stack([torch.cos(torch.arange(8) * torch.pi / 4),
                               torch.sin(torch.arange(8) * torch.pi / 4)], -1)

  def run(num_steps):
    for i in range(num_steps):
      x = (centres[torch.randint(0, 8, (batch,))] + 0.5 * torch.randn(batch, 2)) / 1.414
      y = 2.0 * torch.randn(batch, 2)
      s_x, s_y = model(x)[:, 0], model(y)[:, 0]
      loss = torch.nn.functional.softplus(-s_x).mean() + torch.nn.functional.softplus(s_y).mean()
      optimizer.zero_grad()
      loss.backward()
      optimizer.step()
      if (i + 1) % SYNC_EVERY == 0:
        loss.item()

  return run


def conv_latent_ebm_run(batch=128):
  """Steps of the DAMC reference-size latent EBM (``experiments/configs/mnist_lebm_reference.py``:
  10.9M-parameter conv generator, z of 8, conv encoder, 100-step amortiser, N²CE K = 3, batch
  128) on random images."""
  from experiments.configs import mnist_lebm_reference
  from experiments.tasks.latent_images import make_model

  reference = mnist_lebm_reference.get_config()
  model = make_model(reference, (28, 28, 1))
  params = model.init(jax.random.PRNGKey(0))
  objective_fns = objectives.make_objective('noisier_nce', magnitude=reference.objective.magnitude)
  tx = optax.adam(reference.optimizer.learning_rate)
  train_step = engine.make_train_step(model.make_loss(objective_fns), tx,
                                      sample_batch=model.make_sampler(objective_fns))
  images = {'image': np.random.default_rng(0).uniform(-1, 1, (1, batch, 28, 28, 1)).astype(np.float32)}

  def run(num_steps):
    config = ConfigDict(dict(num_steps=num_steps, steps_per_dispatch=1, sync_every=1, log_every=0,
                             eval_every=0, checkpoint_every=0, on_nonfinite='stop'))
    state = engine.create_train_state(params, tx, jax.random.PRNGKey(1))
    state, _ = engine.train(state, train_step, parallel=DataParallel(), config=config,
                            batches_for=lambda _: images)
    jax.block_until_ready(state)

  return run


def emit(**record):
  print(json.dumps({'devices': jax.device_count(), 'backend_platform': jax.default_backend(), **record}),
        flush=True)


def main():
  groups = args.only.split(',')
  if 'objective' in groups:
    rates = median_rates({name: engine_run(name) for name in ('nce', 'noisier_nce', 'nwj')})
    for objective, rate in rates.items():
      emit(bench='objective', objective=objective, batch=1000, steps_per_dispatch=20,
           step_ms=1e3 / rate, step_time_over_nce=rates['nce'] / rate)
  if 'backend' in groups:
    rates = median_rates({backend: engine_run(backend=backend) for backend in ('shard_map', 'pmap')})
    for backend, rate in rates.items():
      emit(bench='backend', backend=backend, batch=1000, steps_per_dispatch=20, steps_per_s=rate)
  if 'engine' in groups:
    for batch in map(int, args.batches.split(',')):
      runs = {'handwritten_1': handwritten_run(batch), 'handwritten_20': handwritten_run(batch, 20),
              'engine_1': engine_run(batch=batch, steps_per_dispatch=1),
              'engine_20': engine_run(batch=batch, steps_per_dispatch=20)}
      if (torch_loop := torch_run(batch)) is not None:
        runs['torch'] = torch_loop
      rates = median_rates(runs)
      for spd in (1, 20):
        engine_rate, ceiling = rates[f'engine_{spd}'], rates[f'handwritten_{spd}']
        emit(bench='engine', batch=batch, steps_per_dispatch=spd, engine_steps_per_s=engine_rate,
             handwritten_steps_per_s=ceiling, engine_over_handwritten=engine_rate / ceiling,
             torch_steps_per_s=rates.get('torch'),
             engine_over_torch=engine_rate / rates['torch'] if 'torch' in rates else None)
  if 'conv_latent_ebm' in groups:
    if jax.default_backend() == 'cpu':
      emit(bench='conv_latent_ebm', skipped='no accelerator: the reference-size DAMC step is an accelerator '
           'measurement (seconds per step on a CPU)')
    else:
      rate = median_rates({'conv': conv_latent_ebm_run()})['conv']
      emit(bench='conv_latent_ebm', batch=128, step_ms=1e3 / rate, device_kind=jax.devices()[0].device_kind)


if __name__ == '__main__':
  main()
