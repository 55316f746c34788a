"""Input throughput against what the training step consumes; prints one JSON object per line.

    python bench/input_throughput.py [--batches 50] [--steps 5] [--conv_batch_size 10] [--data_dir DIR]

For each image config (mnist_lebm on the offline mnist5k; cifar10, svhn and celeba on
``tfds.testing.mock_data``, which exercises the same grain path with random pixels):

- ``input_examples_per_s``: examples/s of ``batches_for`` (grain: read, filter, dequantise,
  resize, stack), the host work of one dispatch, timed over ``--batches`` batches;
- ``train_examples_per_s``: examples/s the compiled training step consumes at the config's
  batch size on this machine (compilation excluded: a second, timed call);
- ``headroom``: their ratio; above 1 the input keeps up with the step (here, on a CPU; on
  an accelerator the step is faster and the input needs more headroom, e.g. grain workers).

The conv configs' steps take seconds on a CPU at their batch of 100 (and several GB), so
they are measured at ``--conv_batch_size`` (0: the config's); the JSON says which.
"""

import argparse
import json
import os
import sys
import tempfile
import time

parser = argparse.ArgumentParser()
parser.add_argument('--batches', type=int, default=50)
parser.add_argument('--steps', type=int, default=5, help='timed training steps')
parser.add_argument('--conv_batch_size', type=int, default=10, help='batch of the conv configs (0: theirs)')
parser.add_argument('--data_dir', default=None, help='where mnist5k is built (default: a temp dir)')
args = parser.parse_args()
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import tensorflow_datasets as tfds  # noqa: E402

from experiments.configs import celeba_lebm, cifar10_lebm, mnist_lebm, svhn_lebm  # noqa: E402
from experiments.run.training import make_optimizer  # noqa: E402
from experiments.tasks.latent_images import build  # noqa: E402
from nnce_jax import train as engine  # noqa: E402


def measure(config, name):
  task = build(config)
  spd = config.train.steps_per_dispatch
  start = time.perf_counter()
  for i in range(0, args.batches, spd):
    task.batches_for(i)
  input_rate = (args.batches // spd * spd) * config.train.batch_size / (time.perf_counter() - start)

  tx = make_optimizer(config)
  state = engine.create_train_state(task.init_params, tx, jax.random.PRNGKey(0))
  step = engine.make_train_step(task.loss_fn, tx, config.train.ema_decay)
  batch = jax.tree.map(lambda x: x[0], task.batches_for(0))
  # The step body is per-device (it pmeans over 'data'); bench it unsharded on one device.
  mesh = jax.sharding.Mesh(jax.devices()[:1], ('data',))
  body = jax.jit(jax.shard_map(step, mesh=mesh, in_specs=(jax.P(), jax.P('data')),
                               out_specs=(jax.P(), jax.P())))
  for _ in range(2):  # the first output is committed to the mesh: the second call compiles again
    state, _ = body(state, batch)
  jax.block_until_ready(state)
  start = time.perf_counter()
  for _ in range(args.steps):
    state, _ = body(state, batch)
  jax.block_until_ready(state)
  train_rate = args.steps * config.train.batch_size / (time.perf_counter() - start)
  print(json.dumps({'config': name, 'batch_size': config.train.batch_size,
                    'image_shape': list(batch['image'].shape[1:]),
                    'input_examples_per_s': round(input_rate, 1),
                    'train_examples_per_s': round(train_rate, 1),
                    'headroom': round(input_rate / train_rate, 2), 'device': jax.devices()[0].platform}),
        flush=True)


def main():
  data_dir = args.data_dir or tempfile.mkdtemp()
  config = mnist_lebm.get_config()
  config.data.data_dir = data_dir
  measure(config, 'mnist_lebm (mnist5k)')
  for module, dataset in ((cifar10_lebm, 'cifar10'), (svhn_lebm, 'svhn_cropped'), (celeba_lebm, 'celeb_a')):
    config = module.get_config()
    config.data.update(data_dir=data_dir, num_test=100)
    config.train.batch_size = args.conv_batch_size or config.train.batch_size
    os.makedirs(os.path.join(data_dir, dataset), exist_ok=True)
    with tfds.testing.mock_data(num_examples=1000, policy=tfds.testing.MockPolicy.USE_CODE):
      measure(config, f'{module.__name__.split(".")[-1]} (mock {dataset})')


if __name__ == '__main__':
  main()
