"""One run of a config: the task checked and trained (state, devices, checkpoints, metrics) or
evaluated, and its summary."""

import logging
import os
import time

import jax
import optax
import orbax.checkpoint as ocp

from experiments import tasks
from experiments.core.checks import check_common
from experiments.core.files import write_json_atomically
from experiments.core.metrics import MetricWriter, read_metrics
from experiments.core.task import Task
from nnce_jax import checkpoint
from nnce_jax import train as engine
from nnce_jax.parallel import DataParallel


def check_config(config, num_devices: int, num_processes: int = 1) -> None:
  """Raises :class:`~experiments.core.checks.ConfigError` naming the first invalid field: the
  task's name, the shared fields, then the task's own."""
  task = tasks.get(config.task)
  check_common(config, num_devices, num_processes)
  task.check(config)


def make_optimizer(config) -> optax.GradientTransformation:
  o = config.optimizer
  rate = (optax.cosine_decay_schedule(o.learning_rate, config.train.num_steps) if o.schedule == 'cosine'
          else o.learning_rate)
  tx = optax.adam(rate) if o.name == 'adam' else optax.sgd(rate)
  return optax.chain(optax.clip_by_global_norm(o.grad_clip_norm), tx) if o.grad_clip_norm else tx


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
  task = tasks.get(config.task).build(config)
  parallel = DataParallel(config.parallel.backend,
                          jax.devices()[:config.parallel.num_devices or None])
  tx = task.optimizer or make_optimizer(config)
  rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0)
  state = engine.create_train_state(task.init_params, tx, rng)
  train_step = task.train_step or engine.make_train_step(task.loss_fn, tx, config.train.ema_decay,
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
  # Every process reads the metrics process 0 wrote (the summary): not before they are all there.
  ocp.multihost.sync_global_processes('nnce_metrics_written')
  return state, task


def run(config, workdir: str) -> dict:
  """Trains (resuming) or evaluates ``config`` in ``workdir``; returns its summary."""
  task = tasks.get(config.task)
  if tasks.is_trained(task):
    return train_and_evaluate(config, workdir)
  os.makedirs(workdir, exist_ok=True)
  return task.evaluate(config, workdir)


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains ``config`` in ``workdir`` (resuming) and returns the summary also written to
  ``workdir/summary.json``: final eval metrics, the truth, steps to tolerance, the config."""
  started = time.perf_counter()
  state, task = fit(config, workdir)
  is_main = jax.process_index() == 0
  history = [r for r in read_metrics(workdir) if any(k.startswith('eval_') for k in r)]
  final = {k.removeprefix('eval_'): v for k, v in history[-1].items() if k != 'step'}
  summary = {'task': config.task, 'seed': config.seed,
             **({'objective': config.objective.name} if 'objective' in config else {}),
             'steps': int(state.step), 'final': final, 'truth': task.truth,
             'references': task.references,
             'wall_time_s': time.perf_counter() - started,
             # Plots and likelihoods: process 0's job (params are on every host).
             **(task.report(state.ema_params, workdir) if is_main else {}), 'config': config.to_dict()}
  if task.tolerance_metric:
    summary['steps_to_tolerance'] = steps_to_tolerance(history, f'eval_{task.tolerance_metric}',
                                                       task.tolerance)
    summary['tolerance'] = {task.tolerance_metric: task.tolerance}
  summary['table_metrics'] = list(task.table_metrics)
  if is_main:  # a sweep reads it as the mark of a finished run: never half-written
    write_json_atomically(os.path.join(workdir, 'summary.json'), summary, indent=2, default=str)
  return summary
