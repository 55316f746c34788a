"""SiD on 28x28 images (mnist5k, Fashion-MNIST): a one-step generator distilled from the image
teacher. Train the teacher first (``experiments/configs/ddpm_images.py``, ``runs/ddpm_images``),
then ``python -m experiments.main --config=experiments/configs/sid_images.py``; ``sid.real_term``
as in ``sid_toy2d.py``. Judged every 100 iterations by the teacher run's classifier.
"""

from experiments.configs import ddpm_images, sid_toy2d


def get_config():
  config = ddpm_images.student_config(sid_toy2d.get_config(), 'sid_images')
  config.sid.discriminator_hidden = (512, 256)
  config.train.batch_size = 128
  config.train.num_steps = 2000
  config.train.steps_per_dispatch = 50
  config.train.sync_every = 50
  config.train.eval_every = 100
  return config


get_sweep = sid_toy2d.get_sweep  # the four variants
