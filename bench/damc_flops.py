"""FLOPs of one DAMC reference iteration (``experiments/configs/mnist_lebm_reference.py``), on paper.

``python -m bench.damc_flops [--batch 128]`` prints one JSON line. XLA's cost analysis counts a
loop body once, not once per trip, so the iteration is counted from its parts: each network's
forward FLOPs at the batch (XLA's count of one compiled forward), a backward pass taken as twice
a forward, and the parts' counts per iteration:

* posterior chains: ``posterior_steps`` gradients of ``log p(x | z)`` (generator forward and
  backward) from ``z_0 ~ Q_target(z | x)``: one encoder forward and ``diffusion_steps`` denoiser
  forwards;
* ``amortizer_updates`` updates of ``Q``, each the conditional and the prior-embedding loss
  (forward and backward: the encoder once, the denoiser twice);
* one generator update (forward and backward) and the prior's (a 200-200 MLP: negligible).

It also prints the iterations per hour this count allows at a stated sustained rate on an H200
and a TPU v5e (peak dense bf16 / fp32 as published, times an assumed 35% utilisation).
"""

import argparse
import json

import jax
import jax.numpy as jnp

from experiments.configs import mnist_lebm_reference
from experiments.tasks import latent_images

# Published peak dense rates (TFLOP/s) and the assumed sustained share of them.
PEAK = {'H200': {'bf16': 989.0, 'fp32': 67.0}, 'TPU v5e': {'bf16': 197.0, 'fp32': 197.0 / 4}}
UTILISATION = 0.35


def forward_flops(fn, *args) -> float:
  return float(jax.jit(fn).lower(*args).compile().cost_analysis()['flops'])


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--batch', type=int, default=128)
  batch = parser.parse_args().batch
  config = mnist_lebm_reference.get_config()
  model = latent_images.make_model(config, (28, 28, 1))
  params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0)))
  zeros = lambda tree: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), tree)  # noqa: E731
  params = zeros(params)
  x = jnp.zeros((batch, 28, 28, 1))
  z = jnp.zeros((batch, config.model.latent_dim))
  q = model.damc.amortizer
  embedding = jnp.zeros((batch, config.model.embed_dim))
  flops = {
      'generator': forward_flops(lambda p, z: model.generator.apply(p, z), params['generator'], z),
      'encoder': forward_flops(lambda p, x: q.apply(p, x, method='embed'), params['amortizer'], x),
      'denoiser': forward_flops(lambda p, z, e: q.apply(p, z, jnp.zeros(batch), e, method='denoise'),
                                params['amortizer'], z, embedding),
  }
  m, r = config.model, config.reference
  counts = {  # forward-equivalents per iteration (a backward pass = 2 forwards)
      'generator': 3 * m.posterior_steps + 3,
      'encoder': 1 + r.amortizer_updates * 3,
      'denoiser': m.diffusion_steps + r.amortizer_updates * 2 * 3,
  }
  total = sum(flops[k] * counts[k] for k in flops)
  rates = {device: {precision: 3600 * UTILISATION * peak * 1e12 / total for precision, peak in peaks.items()}
           for device, peaks in PEAK.items()}
  print(json.dumps({'batch': batch, 'forward_gflop': {k: v / 1e9 for k, v in flops.items()},
                    'forward_equivalents_per_iteration': counts, 'tflop_per_iteration': total / 1e12,
                    'assumed_utilisation': UTILISATION, 'iterations_per_hour': rates}))


if __name__ == '__main__':
  main()
