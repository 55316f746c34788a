"""The teacher of the 28x28 sampler experiments: a DDPM (epsilon- or v-prediction MLP on the flattened
image) on mnist5k or Fashion-MNIST, judged at each evaluation by the few-step VAR samplers cut
from it, in the features of a fixed classifier (``image_data.Judge``)."""

import jax
import numpy as np

from experiments.core.task import Task
from experiments.tasks.common import image_data, samplers


def check(config) -> None:
  image_data.check(config)
  samplers.check_teacher(config)


def build(config) -> Task:
  network, schedule = samplers.teacher(config)
  root = jax.random.PRNGKey(config.seed)
  dim = image_data.DIM
  params = network.init(jax.random.fold_in(root, 1), np.zeros((1, dim), np.float32), np.zeros(1, np.float32))
  judge = image_data.Judge(config)
  eval_key, num = samplers.evaluation_key(config), config.judge.num_samples
  few_step_samples = samplers.cut_samplers(network, schedule, config.teacher.eval_steps, eval_key, (num, dim))

  def eval_fn(params):
    metrics = {}
    for t, samples in few_step_samples(params).items():
      metrics.update({f'{k}_{t}_steps': v for k, v in judge.metrics(np.asarray(samples)).items()})
    return metrics

  def report(params, workdir):
    paths = {f'samples_{t}_steps_png': image_data.save_grid(samples, workdir, f'teacher_{t}_steps.png')
             for t, samples in few_step_samples(params).items()}
    return {**paths, 'judge_test_accuracy': judge.test_accuracy}

  floor = judge.metrics(image_data.split_arrays(config, 'train', config.data.num_test)[0])
  references = {'judge_test_accuracy': judge.test_accuracy,
                **{f'data_floor_{k}': v for k, v in floor.items()}}
  return Task(init_params=params, loss_fn=samplers.teacher_loss(network, schedule), eval_fn=eval_fn,
              references=references,
              table_metrics=tuple(f'frechet_distance_{t}_steps' for t in config.teacher.eval_steps),
              report=report, batches_for=image_data.train_batches(config),
              sample_batch=lambda key, inputs: inputs['image'])
