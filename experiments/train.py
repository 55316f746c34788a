"""One training run of a task: state, devices, checkpoints, metrics and the summary."""

import json
import logging
import os
import time

import jax

from experiments import density_chasm, gaussian, latent_ebm, mutual_information, toy2d
from experiments.config_checks import check_config
from experiments.task import Task, make_optimizer
from experiments.writers import MetricWriter, read_metrics
from nnce_jax import checkpoint
from nnce_jax import train as engine
from nnce_jax.parallel import DataParallel

TASKS = {'density_chasm': density_chasm.build, 'gaussian': gaussian.build, 'toy2d': toy2d.build,
         'mutual_information': mutual_information.build, 'latent_ebm': latent_ebm.build}


def steps_to_tolerance(history: list[dict], metric: str, tolerance: float) -> int | None:
  """The first eval step from which ``metric`` stays below ``tolerance`` (None if never)."""
  first = None
  for record in history:
    if record[metric] >= tolerance:
      first = None
    elif first is None:
      first = record['step']
  return first


def fit(config, workdir: str) -> tuple[engine.TrainState, Task]:
  """Trains ``config`` in ``workdir``, resuming from its latest checkpoint."""
  check_config(config, jax.device_count(), jax.process_count())
  task = TASKS[config.task](config)
  parallel = DataParallel(config.parallel.backend,
                          jax.devices()[:config.parallel.num_devices or None])
  tx = make_optimizer(config)
  rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0)
  state = engine.create_train_state(task.init_params, tx, rng)
  train_step = engine.make_train_step(task.loss_fn, tx, config.train.ema_decay,
                                      skip_nonfinite=config.train.on_nonfinite == 'skip',
                                      sample_batch=task.sample_batch)

  os.makedirs(workdir, exist_ok=True)
  manager = checkpoint.make_manager(os.path.join(workdir, 'checkpoints'), config.train.max_checkpoints)
  restored = checkpoint.restore_latest(manager, parallel.abstract_state(state))
  if restored is not None:
    state = restored
    logging.info('resumed %s from step %d', workdir, int(state.step))
  is_main = jax.process_index() == 0
  writer = MetricWriter(workdir, resume_step=int(state.step)) if is_main else None

  try:
    state, _ = engine.train(state, train_step, parallel=parallel, batches_for=task.batches_for,
                            config=config.train, eval_fn=task.eval_fn, manager=manager, writer=writer)
  finally:
    if writer:
      writer.close()
    manager.close()
  return state, task


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains ``config`` in ``workdir`` (resuming) and returns the summary also written to
  ``workdir/summary.json``: final eval metrics, the truth, steps to tolerance, the config."""
  started = time.perf_counter()
  state, task = fit(config, workdir)
  is_main = jax.process_index() == 0
  history = [r for r in read_metrics(workdir) if any(k.startswith('eval_') for k in r)]
  final = {k.removeprefix('eval_'): v for k, v in history[-1].items() if k != 'step'}
  summary = {'task': config.task, 'objective': config.objective.name, 'seed': config.seed,
             'steps': int(state.step), 'final': final, 'truth': task.truth,
             'wall_time_s': time.perf_counter() - started,
             # Plots and likelihoods: process 0's job (params are on every host).
             **(task.report(state.ema_params, workdir) if is_main else {}), 'config': config.to_dict()}
  if task.tolerance_metric:
    summary['steps_to_tolerance'] = steps_to_tolerance(history, f'eval_{task.tolerance_metric}',
                                                       task.tolerance)
    summary['tolerance'] = {task.tolerance_metric: task.tolerance}
  summary['table_metrics'] = list(task.table_metrics)
  if is_main:
    with open(os.path.join(workdir, 'summary.json'), 'w') as f:
      json.dump(summary, f, indent=2, default=str)
  return summary
