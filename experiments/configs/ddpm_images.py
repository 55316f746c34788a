"""The teacher DDPM of the 28x28 sampler experiments (mnist5k, Fashion-MNIST): a v-prediction MLP
on the flattened image, 1,000 diffusion steps (an epsilon MLP's guess of the clean image blows up
at the last steps, so its 100-step sampler measured worse than its 10-step one: docs/teachers.md).

``python -m experiments.main --config=experiments/configs/ddpm_images.py --workdir=runs/ddpm_images``
(mnist5k is built offline on first use; Fashion-MNIST needs
``sudo apt-get update && sudo apt-get install -y dataset-fashion-mnist``). Evaluation: the few-step
VAR samplers cut from it, judged by a small classifier trained on the same training split
(Fréchet distance and KID to the test split in its features, class-histogram KL to uniform).
The MLP is the CPU-sized network; a UNet belongs on an accelerator.
"""

import ml_collections

from experiments.configs import common, ddpm_toy2d


def judge_config() -> ml_collections.ConfigDict:
  """The feature classifier: the same fields must hold in the teacher's and DxMI's configs."""
  judge = ml_collections.ConfigDict()
  judge.hidden = (512, 128)   # MLP widths; the last is the feature dimension
  judge.train_steps = 3000    # >= 1 Adam steps (batch 256, lr 1e-3, fixed seed)
  judge.num_train = 20000     # >= 10 training images it learns from (a fixed subset when more)
  judge.num_samples = 5000    # >= 2 sampler outputs per evaluation
  return judge


def student_config(config, task: str) -> ml_collections.ConfigDict:
  """``config`` (a 2-D student's: DxMI, SiD) moved onto this teacher: its data, teacher and judge
  fields, which must match the teacher run's (its 100-step FD is judged by the same classifier)."""
  teacher = get_config()
  config.task = task
  config.data = teacher.data             # dataset: mnist5k | fashion_mnist
  config.teacher = teacher.teacher
  config.teacher.workdir = 'runs/ddpm_images'  # a ddpm_images run directory
  config.judge = teacher.judge
  return config


def get_config():
  config = common.add_optimizer(common.add_engine(common.base_config('ddpm_images')))
  config.data.dataset = 'mnist5k'      # mnist5k | fashion_mnist
  config.data.data_dir = '~/tensorflow_datasets'
  config.data.num_test = 1000          # test images the samples are compared with (all of mnist5k's)
  config.teacher = ddpm_toy2d.teacher_config(hidden=(1024, 1024, 1024))
  config.teacher.prediction = 'v'      # epsilon | v
  config.judge = judge_config()
  config.optimizer.learning_rate = 3e-4
  config.optimizer.schedule = 'cosine'
  config.optimizer.grad_clip_norm = 1.0
  config.train.num_steps = 10000        # 320 epochs of mnist5k's 4,000 (about 15 min on 2 cores)
  config.train.batch_size = 128
  config.train.steps_per_dispatch = 100
  config.train.sync_every = 100
  config.train.log_every = 1000
  config.train.eval_every = 2500
  config.train.checkpoint_every = 2500
  config.train.ema_decay = 0.999
  return config
