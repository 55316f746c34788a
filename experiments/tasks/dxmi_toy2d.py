"""DxMI on a 2-D toy density: a ``T``-step sampler cut from a trained DDPM teacher
(``ddpm_toy2d``) and fine-tuned against an energy learned by DxMI's own loss, NCE, N²CE or NWJ.

Each evaluation judges ``T``-step samples against held-out data (sliced W2, MMD, modes) and the
energy (AUROC of ``-E`` between held-out data and uniform points). The summary's references hold the
teacher's ``T``-step numbers before fine-tuning, the teacher's 100-step sliced W2 (the threshold
of ``steps_to_tolerance``) and the floor: the distance between two held-out samples.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np

from experiments.core import plotting
from experiments.core.checks import one_of
from experiments.core.task import Task
from experiments.tasks.common import samplers
from nnce_jax import few_step, ranking_metrics
from nnce_jax.data import toy2d


def check(config) -> None:
  one_of(config, 'data.dataset', toy2d.DATASETS)
  samplers.check_fine_tuning(config)


def build(config) -> Task:
  network, schedule = samplers.teacher(config)
  teacher_params = samplers.restore_teacher(config, network, 2, 'experiments/configs/ddpm_toy2d.py')
  num_steps = config.sampler.steps
  root, held_out = jax.random.PRNGKey(config.seed), samplers.held_out(config)
  eval_key = jax.random.fold_in(root, 3)
  draw_data = lambda key, inputs: toy2d.sample(config.data.dataset, key, config.train.batch_size)  # noqa: E731
  tuned = samplers.fine_tuning(config, network, schedule, teacher_params, 2, draw_data, held_out.shape[0])
  sampler_output = lambda params, key: tuned.sample(params, key, held_out.shape[0])  # noqa: E731

  uniform = samplers.uniform_box(jax.random.fold_in(root, 5), held_out.shape[0])
  is_data = np.concatenate([np.ones(held_out.shape[0]), np.zeros(uniform.shape[0])])
  energy_on = tuned.energy

  def eval_fn(params):
    samples = sampler_output(params, eval_key)[-1]
    metrics = samplers.sample_metrics(eval_key, config.data.dataset, samples, held_out)
    scores = -np.asarray(energy_on(params, jnp.concatenate([held_out, uniform])))
    metrics['energy_auroc'] = ranking_metrics.roc_auc(scores, is_data)
    metrics['mean_sigma'] = float(jnp.mean(jnp.exp(params['sampler']['log_sigma'][:-1])))
    return metrics

  teacher = samplers.sample_metrics(eval_key, config.data.dataset, sampler_output(tuned.params, eval_key)[-1],
                                    held_out)
  hundred = few_step.var_schedule(schedule, samplers.THRESHOLD_STEPS)
  epsilon = lambda x, t: network.apply(teacher_params, x, t)  # noqa: E731
  threshold = samplers.sample_metrics(eval_key, config.data.dataset, few_step.sample_trajectory(
      epsilon, jnp.log(hundred.sigma), hundred, eval_key, held_out.shape)[-1], held_out)['sliced_w2']
  floor = _floor(config, eval_key, held_out)
  references = {**{f'teacher_{k}': v for k, v in teacher.items()},
                f'teacher_{samplers.THRESHOLD_STEPS}_step_sliced_w2': threshold,
                'data_floor_sliced_w2': floor}

  def report(params, workdir):
    shown = {'held-out data': held_out,
             f'teacher, {num_steps} steps': sampler_output(tuned.before(params), eval_key)[-1],
             f'DxMI ({config.energy.loss}), {num_steps} steps': sampler_output(params, eval_key)[-1]}
    figure, axes = samplers.sample_panels(shown, extra=1)
    limit = samplers.LIMIT
    axis = np.linspace(-limit, limit, 120)
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    axes[-1].imshow(-np.asarray(energy_on(params, jnp.asarray(grid))).reshape(120, 120), origin='lower',
                    extent=[-limit, limit, -limit, limit], cmap='viridis')
    axes[-1].set_title('-E(x), the learned energy')
    return {'samples_png': plotting.save(figure, os.path.join(workdir, 'dxmi_samples.png'))}

  return Task(init_params=tuned.params, eval_fn=eval_fn, references=references,
              table_metrics=('sliced_w2', 'mmd', 'energy_auroc'),
              tolerance_metric='sliced_w2', tolerance=threshold, report=report, optimizer=tuned.optimizer,
              train_step=tuned.train_step)


def _floor(config, key, held_out) -> float:
  """Sliced W2 between two independent held-out samples: what sampling noise alone gives."""
  other = toy2d.sample(config.data.dataset, jax.random.fold_in(jax.random.PRNGKey(config.seed), 98),
                       held_out.shape[0])
  return samplers.sample_metrics(key, config.data.dataset, other, held_out)['sliced_w2']
