"""The engine: backends and device counts agree, resume is bit-identical, SIGTERM saves,
non-finite losses stop or skip."""

import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from ml_collections import ConfigDict

from experiments.run.training import fit
from nnce_jax import train as engine
from nnce_jax.parallel import DataParallel
from tests.helpers import leaves, small_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_four_fake_devices():
  assert jax.device_count() == 4


def test_shard_map_and_pmap_agree(tmp_path):
  results = {}
  for backend in ('shard_map', 'pmap'):
    config = small_config()
    config.parallel.backend = backend
    results[backend], _ = fit(config, str(tmp_path / backend))
  for a, b in zip(leaves(results['shard_map']), leaves(results['pmap'])):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_one_and_four_devices_agree_on_the_same_global_batch(tmp_path):
  results = {}
  for devices in (1, 4):
    config = small_config()
    config.parallel.num_devices = devices
    results[devices], _ = fit(config, str(tmp_path / str(devices)))
  for a, b in zip(leaves(results[1]), leaves(results[4])):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize('backend', ['shard_map', pytest.param('pmap', marks=pytest.mark.slow)])
def test_stop_and_resume_is_bit_identical(tmp_path, backend):
  def config(num_steps):
    c = small_config(num_steps=num_steps)
    c.parallel.backend = backend
    return c

  unbroken, _ = fit(config(100), str(tmp_path / 'unbroken'))
  fit(config(50), str(tmp_path / 'resumed'))
  resumed, _ = fit(config(100), str(tmp_path / 'resumed'))
  assert int(resumed.step) == 100
  for a, b in zip(leaves(unbroken), leaves(resumed)):
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_sigterm_saves_a_restorable_checkpoint(tmp_path):
  workdir = tmp_path / 'run'
  env = {**os.environ, 'XLA_FLAGS': '', 'JAX_PLATFORMS': 'cpu'}
  command = [sys.executable, '-m', 'experiments.main', '--config=experiments/configs/density_chasm.py',
             '--config.train.num_steps=1000000', '--config.train.log_every=500',
             '--config.train.checkpoint_every=0', f'--workdir={workdir}']
  child = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  try:
    deadline = time.time() + 120
    while not (workdir / 'metrics.jsonl').exists() or not (workdir / 'metrics.jsonl').stat().st_size:
      assert time.time() < deadline and child.poll() is None, child.stdout.read().decode()[-3000:]
      time.sleep(0.2)
    child.send_signal(signal.SIGTERM)
    output = child.communicate(timeout=120)[0].decode()
  finally:
    child.kill()
  assert child.returncode == 143, output[-3000:]
  saved = sorted(int(p) for p in os.listdir(workdir / 'checkpoints') if p.isdigit())
  assert saved and saved[-1] > 0
  # Restores on another device count (4 here, 1 in the child) and trains on from there.
  config = small_config(num_steps=saved[-1] + 50, log_every=0, eval_every=0, checkpoint_every=0)
  config.train.steps_per_dispatch = 50
  state, _ = fit(config, str(workdir))
  assert int(state.step) == saved[-1] + 50


def _diverging_run(on_nonfinite):
  """SGD on log(w) from w = 1 with lr 2: w = -1 after one step, so step 2's loss is NaN."""
  tx = optax.sgd(2.0)
  loss_fn = lambda params, rng, batch, step: (jnp.log(params['w']), {'loss': jnp.log(params['w'])})  # noqa: E731
  state = engine.create_train_state({'w': jnp.float32(1.0)}, tx, jax.random.PRNGKey(0))
  step = engine.make_train_step(loss_fn, tx, skip_nonfinite=on_nonfinite == 'skip')
  config = ConfigDict(dict(num_steps=4, steps_per_dispatch=1, sync_every=1, log_every=4, eval_every=0,
                           checkpoint_every=0, on_nonfinite=on_nonfinite))
  batches = np.zeros((1, 4), np.int32)

  class Recorder:
    records = []

    def write(self, step, scalars):
      self.records.append(scalars)

  writer = Recorder()
  state, _ = engine.train(state, step, parallel=DataParallel(), batches_for=lambda _: batches,
                          config=config, writer=writer)
  return state, writer.records


def test_nonfinite_loss_stops_with_step_and_metric():
  with pytest.raises(FloatingPointError, match='non-finite train_loss at step 2'):
    _diverging_run('stop')


def test_nonfinite_loss_skips_and_counts():
  state, records = _diverging_run('skip')
  assert float(state.params['w']) == -1.0  # the NaN updates were skipped
  assert records[-1]['train_skipped'] == 0.75


def test_a_task_trains_one_way_and_keeps_truth_apart_from_references():
  from experiments.core.task import Task
  from experiments.tasks import gaussian
  config = small_config('gaussian')
  task = gaussian.build(config)
  assert set(task.truth) == {'kl', 'kl_error', 'param_error', 'param_error_mle'}  # closed form only
  assert set(task.references) == {'mle_param_error', 'cramer_rao_param_error'}
  common = dict(init_params={}, eval_fn=lambda params: {}, table_metrics=())
  step = engine.TrainStep(lambda state, inputs: inputs, lambda state, shard: (state, {}))
  for bad in ({}, {'loss_fn': task.loss_fn, 'train_step': step, 'optimizer': optax.adam(1e-3)},
              {'train_step': step}, {'loss_fn': task.loss_fn, 'optimizer': optax.adam(1e-3)}):
    with pytest.raises(ValueError, match='give loss_fn alone, or train_step and optimizer'):
      Task(**common, **bad)
  Task(**common, train_step=step, optimizer=optax.adam(1e-3))  # DxMI's shape
