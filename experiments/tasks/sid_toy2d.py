"""SiD on a 2-D toy density: a one-step generator distilled from a trained DDPM teacher
(``ddpm_toy2d``), alone or with a term on real data (SiD²A's adversarial loss, NCE or N²CE).

Each evaluation judges the generator's samples against held-out data (sliced W2, MMD, modes).
The summary's references hold the teacher's cut samplers at 1, 4, 10 and 100 steps on the same
held-out data and evaluation key (the reference rows), the generator before distillation (the
teacher's one-step denoiser of pure noise) and the floor: two held-out samples' distance.
"""

import os

import jax

from experiments.core import plotting
from experiments.core.checks import one_of
from experiments.core.task import Task
from experiments.tasks.common import samplers
from nnce_jax.data import toy2d


def check(config) -> None:
  one_of(config, 'data.dataset', toy2d.DATASETS)
  samplers.check_distillation(config)


def build(config) -> Task:
  network, schedule = samplers.teacher(config)
  teacher_params = samplers.restore_teacher(config, network, 2, 'experiments/configs/ddpm_toy2d.py')
  held_out = samplers.held_out(config)
  eval_key = samplers.evaluation_key(config)
  draw_data = lambda key, inputs: toy2d.sample(config.data.dataset, key, config.train.batch_size)  # noqa: E731
  distilled = samplers.distillation(config, network, schedule, teacher_params, 2, draw_data)
  judge = lambda samples: samplers.sample_metrics(eval_key, config.data.dataset, samples, held_out)  # noqa: E731
  generated = lambda params: distilled.generate(params, eval_key, held_out.shape[0])  # noqa: E731

  cut = samplers.cut_samplers(network, schedule, samplers.REFERENCE_STEPS, eval_key,
                              held_out.shape)(teacher_params)
  other = toy2d.sample(config.data.dataset, jax.random.fold_in(jax.random.PRNGKey(config.seed), 98),
                       held_out.shape[0])
  references = {**{f'teacher_{t}_steps_{k}': v for t, samples in cut.items()
                   for k, v in judge(samples).items()},
                **{f'before_{k}': v for k, v in judge(generated(distilled.params)).items()},
                'data_floor_sliced_w2': judge(other)['sliced_w2']}

  def report(params, workdir):
    shown = {'held-out data': held_out, 'teacher, 100 steps': cut[100],
             'generator before (1 step)': generated(distilled.params),
             f'SiD, {config.sid.real_term}': generated(params)}
    figure, _ = samplers.sample_panels(shown)
    return {'samples_png': plotting.save(figure, os.path.join(workdir, 'sid_samples.png'))}

  return Task(init_params=distilled.params, eval_fn=lambda params: judge(generated(params)),
              references=references,
              table_metrics=('sliced_w2', 'mmd', 'modes_covered'), report=report,
              optimizer=distilled.optimizer, train_step=distilled.train_step)
