"""DxMI on 28x28 images: a ``T``-step sampler cut from a trained image teacher (``ddpm_images``)
and fine-tuned against an energy learned by DxMI's own loss, NCE, N²CE or NWJ.

Each evaluation judges ``judge.num_samples`` ``T``-step samples by the teacher's classifier
(Fréchet distance and KID to the test split in its features, class-histogram KL to uniform) and
the energy (AUROC of ``-E`` between test images and the teacher's ``T``-step samples). The
references hold the teacher's ``T``-step numbers before fine-tuning, its 100-step Fréchet distance (read
from the teacher run's summary: the bar of ``steps_to_tolerance``) and the data floor.
"""


import jax.numpy as jnp
import numpy as np

from experiments.core.task import Task
from experiments.tasks.common import image_data, samplers
from nnce_jax import ranking_metrics


def check(config) -> None:
  image_data.check(config)
  samplers.check_fine_tuning(config)


def build(config) -> Task:
  dim, num = image_data.DIM, config.judge.num_samples
  network, schedule = samplers.teacher(config)
  teacher_params = samplers.restore_teacher(config, network, dim, image_data.TEACHER_CONFIG)
  bar = image_data.teacher_bar(config, samplers.THRESHOLD_STEPS)
  judge = image_data.Judge(config)
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

  floor = judge.metrics(image_data.split_arrays(config, 'train', config.data.num_test)[0])
  references = {**{f'teacher_{k}': v for k, v in judge.metrics(teacher_samples).items()},
                f'teacher_{samplers.THRESHOLD_STEPS}_step_frechet_distance': bar,
                **{f'data_floor_{k}': v for k, v in floor.items()},
                'judge_test_accuracy': judge.test_accuracy}

  def report(params, workdir):
    image_data.save_grid(teacher_samples, workdir, 'teacher_samples.png')
    tuned_samples = tuned.sample(params, eval_key, 64)[-1]
    return {'samples_png': image_data.save_grid(tuned_samples, workdir, 'dxmi_samples.png')}

  return Task(init_params=tuned.params, eval_fn=eval_fn, references=references,
              table_metrics=('frechet_distance', 'kid', 'class_kl', 'energy_auroc'),
              tolerance_metric='frechet_distance', tolerance=bar, report=report,
              batches_for=image_data.train_batches(config), optimizer=tuned.optimizer,
              train_step=tuned.train_step)
