"""SiD on 28x28 images (mnist5k, Fashion-MNIST): a one-step generator distilled from a trained
image teacher (``ddpm_images``), alone or with a term on real data (SiD²A's adversarial loss,
NCE or N²CE).

Each evaluation judges ``judge.num_samples`` generator samples by the teacher run's classifier
(Fréchet distance and KID to the test split in its features, class-histogram KL to uniform). The
references hold the teacher's cut samplers at 1, 4, 10 and 100 steps from the same evaluation key
(the reference rows), the generator before distillation and the data floor.
"""

import numpy as np

from experiments.core.task import Task
from experiments.tasks.common import image_data, samplers


def check(config) -> None:
  image_data.check(config)
  samplers.check_distillation(config)


def build(config) -> Task:
  dim, num = image_data.DIM, config.judge.num_samples
  network, schedule = samplers.teacher(config)
  teacher_params = samplers.restore_teacher(config, network, dim, image_data.TEACHER_CONFIG)
  image_data.teacher_bar(config, samplers.THRESHOLD_STEPS)  # refuses a judge other than the teacher run's
  judge = image_data.Judge(config)
  distilled = samplers.distillation(config, network, schedule, teacher_params, dim,
                                    lambda key, inputs: inputs['image'])
  eval_key = samplers.evaluation_key(config)
  generated = lambda params, n=num: np.asarray(distilled.generate(params, eval_key, n))  # noqa: E731
  cut = samplers.cut_samplers(network, schedule, samplers.REFERENCE_STEPS, eval_key,
                              (num, dim))(teacher_params)
  floor = judge.metrics(image_data.split_arrays(config, 'train', config.data.num_test)[0])
  references = {**{f'teacher_{t}_steps_{k}': v for t, samples in cut.items()
                   for k, v in judge.metrics(np.asarray(samples)).items()},
                **{f'before_{k}': v for k, v in judge.metrics(generated(distilled.params)).items()},
                **{f'data_floor_{k}': v for k, v in floor.items()},
                'judge_test_accuracy': judge.test_accuracy}

  def report(params, workdir):
    teacher_grid = np.asarray(cut[100][:64])
    return {'samples_png': image_data.save_grid(generated(params, 64), workdir, 'sid_samples.png'),
            'teacher_png': image_data.save_grid(teacher_grid, workdir, 'teacher_100_steps.png')}

  return Task(init_params=distilled.params, eval_fn=lambda params: judge.metrics(generated(params)),
              references=references,
              table_metrics=('frechet_distance', 'kid', 'class_kl'), report=report,
              batches_for=image_data.train_batches(config), optimizer=distilled.optimizer,
              train_step=distilled.train_step)
