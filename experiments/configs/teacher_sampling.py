"""An image teacher's cut samplers against their step count, as the reference builds them and
with the denoised guess clipped to [-1, 1]; no training.

``python -m experiments.main --config=experiments/configs/teacher_sampling.py
--config.teacher.workdir=runs/ddpm_images`` writes ``teacher_sampling.{md,json}`` and sample
grids in the workdir. The data, teacher and judge fields must match the teacher run's.
"""

from experiments.configs import ddpm_images


def get_config():
  config = ddpm_images.get_config()
  config.task = 'teacher_sampling'
  config.teacher.workdir = 'runs/ddpm_images'  # a ddpm_images run directory
  config.teacher.eval_steps = (4, 10, 25, 100)  # samplers judged, >= 1 each
  return config
