"""The teacher of the sampler experiments: a DDPM (epsilon-prediction MLP) on a 2-D toy
density, judged at each evaluation by the few-step VAR samplers cut from it and, once at the
end, by its full N-step ancestral sampler (``summary.json``'s ``full_sampler``)."""

import os

import jax
import numpy as np

from experiments.core import plotting
from experiments.core.checks import number, one_of
from experiments.core.task import Task
from experiments.tasks.common import samplers
from nnce_jax import ddpm
from nnce_jax.data import toy2d


def check(config) -> None:
  one_of(config, 'data.dataset', toy2d.DATASETS)
  samplers.check_teacher(config)
  number(config, 'teacher.num_eval_samples', low=2, integer=True)


def build(config) -> Task:
  network, schedule = samplers.teacher(config)
  root = jax.random.PRNGKey(config.seed)
  params = network.init(jax.random.fold_in(root, 1), np.zeros((1, 2), np.float32), np.zeros(1, np.float32))
  x_test = samplers.held_out(config)
  eval_key = jax.random.fold_in(root, 3)
  num = config.teacher.num_eval_samples
  few_step_samples = samplers.cut_samplers(network, schedule, config.teacher.eval_steps, eval_key, (num, 2))
  full_steps = schedule.betas.shape[0]

  def sample_batch(key, inputs=None):
    return toy2d.sample(config.data.dataset, key, config.train.batch_size)

  def judged(samples_by_steps) -> dict:
    metrics = {}
    for t, samples in samples_by_steps.items():
      found = samplers.sample_metrics(eval_key, config.data.dataset, samples, x_test)
      metrics.update({f'{k}_{t}_steps': v for k, v in found.items()})
    return metrics

  def eval_fn(params):
    return judged(few_step_samples(params))

  def report(params, workdir):
    """The full N-step ancestral sampler, once (N network calls per sample), and the plot."""
    full = jax.jit(lambda p: ddpm.ancestral_sample(lambda x, n: network.apply(p, x, n), eval_key, (num, 2),
                                                   schedule))(params)
    cut = few_step_samples(params)
    shown = {'held-out data': x_test, f'{full_steps} steps (ancestral)': full,
             **{f'{t} steps (VAR)': samples for t, samples in cut.items()}}
    figure, _ = samplers.sample_panels(shown)
    path = plotting.save(figure, os.path.join(workdir, 'teacher_samples.png'))
    return {'samples_png': path, 'full_sampler': judged({full_steps: full})}

  return Task(init_params=params, loss_fn=samplers.teacher_loss(network, schedule), eval_fn=eval_fn,
              table_metrics=tuple(f'sliced_w2_{t}_steps' for t in config.teacher.eval_steps),
              report=report, sample_batch=sample_batch)
