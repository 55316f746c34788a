"""Step-time benchmarks; prints one JSON object per line.

    python bench/step_time.py [--devices N] [--steps 2000] [--repeats 3]

- objective: median ms per optimizer step of NCE, N^2CE (M = 100) and NWJ through the engine,
  same model and batch, and the ratio to NCE;
- backend: steps/s of the shard_map and pmap backends over the same devices;
- engine: steps/s on 8gaussians with a 2-128-128-1 leaky-ReLU MLP at batch 100 and 1000, with 1
  and 20 steps per dispatch, beside a hand-written jitted optax step of the same model and loss
  (the ceiling the engine's overhead is measured against).

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


def _rate(run) -> float:
  """Steps/s of ``run(num_steps)`` (which blocks), with compilation and warm-up cancelled."""
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


def engine_run(objective='noisier_nce', batch=1000, steps_per_dispatch=20, backend='shard_map'):
  objective_fns = objectives.make_objective(objective, magnitude=100.0)
  sample = lambda key: toy2d.sample('8gaussians', key, 1)[0]  # noqa: E731
  loss_fn = estimation.make_ratio_loss(MODEL.apply, sample, BASE, objective_fns)
  train_step = engine.make_train_step(loss_fn, TX, ema_decay=0.999)
  parallel = DataParallel(backend)
  ids = np.tile(np.arange(batch, dtype=np.int32), (steps_per_dispatch, 1))

  def run(num_steps):
    num_steps -= num_steps % steps_per_dispatch
    config = ConfigDict(dict(num_steps=num_steps, steps_per_dispatch=steps_per_dispatch,
                             sync_every=max(steps_per_dispatch, 20), log_every=0, eval_every=0,
                             checkpoint_every=0, on_nonfinite='stop'))
    state = engine.create_train_state(PARAMS, TX, jax.random.PRNGKey(1))
    state, _ = engine.train(state, train_step, parallel=parallel, batches_for=lambda _: ids, config=config)
    jax.block_until_ready(state)

  return run


def handwritten_run(batch):
  @jax.jit
  def step(params, opt_state, key):
    data_key, noise_key = jax.random.split(key)
    x, y = toy2d.sample('8gaussians', data_key, batch), BASE.sample(noise_key, (batch,))

    def loss(p):
      return objectives.noisier_nce_loss(MODEL.apply(p, x)[:, 0], MODEL.apply(p, y)[:, 0], 100.0)[0]

    value, grads = jax.value_and_grad(loss)(params)
    updates, opt_state = TX.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value

  def run(num_steps):
    params, opt_state, root = PARAMS, TX.init(PARAMS), jax.random.PRNGKey(1)
    for i in range(num_steps):
      params, opt_state, value = step(params, opt_state, jax.random.fold_in(root, i))
    jax.block_until_ready(params)

  return run


def emit(**record):
  print(json.dumps({'devices': jax.device_count(), 'backend_platform': jax.default_backend(), **record}),
        flush=True)


def main():
  rates = median_rates({name: engine_run(name) for name in ('nce', 'noisier_nce', 'nwj')})
  for objective, rate in rates.items():
    emit(bench='objective', objective=objective, batch=1000, steps_per_dispatch=20,
         step_ms=1e3 / rate, step_time_over_nce=rates['nce'] / rate)
  rates = median_rates({backend: engine_run(backend=backend) for backend in ('shard_map', 'pmap')})
  for backend, rate in rates.items():
    emit(bench='backend', backend=backend, batch=1000, steps_per_dispatch=20, steps_per_s=rate)
  for batch in (100, 1000):
    rates = median_rates({'handwritten': handwritten_run(batch),
                          1: engine_run(batch=batch, steps_per_dispatch=1),
                          20: engine_run(batch=batch, steps_per_dispatch=20)})
    for steps_per_dispatch in (1, 20):
      emit(bench='engine', batch=batch, steps_per_dispatch=steps_per_dispatch,
           engine_steps_per_s=rates[steps_per_dispatch], handwritten_steps_per_s=rates['handwritten'],
           engine_over_handwritten=rates[steps_per_dispatch] / rates['handwritten'])


if __name__ == '__main__':
  main()
