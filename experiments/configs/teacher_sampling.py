"""An image teacher's cut samplers against their step count, as the reference builds them and
with the denoised guess clipped to [-1, 1]; no training.

``python -m experiments.main --config=experiments/configs/teacher_sampling.py
--config.teacher.workdir=runs/ddpm_images`` writes ``teacher_sampling.{md,json}`` and sample
grids in the workdir. The data, teacher and judge fields must match the teacher run's.
"""

from experiments.configs import common, ddpm_images


def get_config():
  teacher = ddpm_images.get_config()  # evaluation only: the teacher run's data, network and judge
  config = common.base_config('teacher_sampling')
  config.data, config.teacher, config.judge = teacher.data, teacher.teacher, teacher.judge
  config.teacher.workdir = 'runs/ddpm_images'  # a ddpm_images run directory
  config.teacher.eval_steps = (4, 10, 25, 100)  # samplers judged, >= 1 each
  return config
