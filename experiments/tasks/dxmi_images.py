"""DxMI on 28x28 images: a ``T``-step sampler cut from a trained image teacher (``ddpm_images``)
and fine-tuned against an energy learned by DxMI's own loss, NCE, N²CE or NWJ.

Each evaluation judges ``judge.num_samples`` ``T``-step samples by the teacher's classifier
(Fréchet distance and KID to the test split in its features, class-histogram KL to uniform) and
the energy (AUROC of ``-E`` between test images and the teacher's ``T``-step samples). The truth
holds the teacher's ``T``-step numbers before fine-tuning, its 100-step Fréchet distance (read
from the teacher run's summary: the bar of ``steps_to_tolerance``) and the data floor.
"""

import json
import os

import jax.numpy as jnp
import numpy as np

from experiments.core.checks import ConfigError
from experiments.core.task import Task
from experiments.tasks import sampler_images, samplers
from experiments.tasks.dxmi_toy2d import THRESHOLD_STEPS
from nnce_jax import ranking_metrics

TEACHER_CONFIG = 'experiments/configs/ddpm_images.py'


def check(config) -> None:
  sampler_images.check(config)
  samplers.check_fine_tuning(config)


def teacher_bar(config) -> float:
  """The teacher run's final ``THRESHOLD_STEPS``-step Fréchet distance, by the same judge."""
  workdir = os.path.expanduser(config.teacher.workdir)
  path = os.path.join(workdir, 'summary.json')
  if not os.path.exists(path):
    raise FileNotFoundError(f'the teacher run in {workdir} has not finished (no summary.json); finish '
                            f'it with `python -m experiments.main --config={TEACHER_CONFIG} '
                            f'--workdir={workdir}`')
  with open(path) as f:
    summary = json.load(f)
  trained = summary['config']
  if trained['judge'] != json.loads(json.dumps(config.judge.to_dict())) or (
      trained['data']['num_test'] != config.data.num_test):
    raise ConfigError(f'config.judge / config.data.num_test differ from the teacher run in {workdir}; '
                      'its bar was measured by another judge')
  key = f'frechet_distance_{THRESHOLD_STEPS}_steps'
  if key not in summary['final']:
    raise ConfigError(f'the teacher run in {workdir} did not judge its {THRESHOLD_STEPS}-step sampler; '
                      f'its config.teacher.eval_steps must hold {THRESHOLD_STEPS}')
  return summary['final'][key]


def build(config) -> Task:
  dim, num = sampler_images.DIM, config.judge.num_samples
  network, schedule = samplers.teacher(config)
  teacher_params = samplers.restore_teacher(config, network, dim, TEACHER_CONFIG)
  bar = teacher_bar(config)
  judge = sampler_images.Judge(config)
  tuned = samplers.fine_tuning(config, network, schedule, teacher_params, dim,
                               lambda key, inputs: inputs['image'], num)
  eval_key = samplers.evaluation_key(config)
  teacher_samples = np.asarray(tuned.sample(tuned.params, eval_key, num)[-1])
  x_test = jnp.asarray(judge.x_test)
  contrast = jnp.concatenate([x_test, jnp.asarray(teacher_samples[:x_test.shape[0]])])
  is_data = np.concatenate([np.ones(x_test.shape[0]), np.zeros(min(num, x_test.shape[0]))])

  def eval_fn(params):
    metrics = judge.metrics(np.asarray(tuned.sample(params, eval_key, num)[-1]))
    metrics['energy_auroc'] = ranking_metrics.roc_auc(-np.asarray(tuned.energy(params, contrast)), is_data)
    metrics['mean_sigma'] = float(jnp.mean(jnp.exp(params['sampler']['log_sigma'][:-1])))
    return metrics

  floor = judge.metrics(sampler_images.split_arrays(config, 'train', config.data.num_test)[0])
  truth = {**{f'teacher_{k}': v for k, v in judge.metrics(teacher_samples).items()},
           f'teacher_{THRESHOLD_STEPS}_step_frechet_distance': bar,
           **{f'data_floor_{k}': v for k, v in floor.items()}, 'judge_test_accuracy': judge.test_accuracy}

  def report(params, workdir):
    sampler_images.save_grid(teacher_samples, workdir, 'teacher_samples.png')
    tuned_samples = tuned.sample(params, eval_key, 64)[-1]
    return {'samples_png': sampler_images.save_grid(tuned_samples, workdir, 'dxmi_samples.png')}

  return Task(None, tuned.params, None, eval_fn, truth,
              table_metrics=('frechet_distance', 'kid', 'class_kl', 'energy_auroc'),
              tolerance_metric='frechet_distance', tolerance=bar, report=report,
              batches_for=sampler_images.train_batches(config), optimizer=tuned.optimizer,
              train_step=tuned.train_step)
