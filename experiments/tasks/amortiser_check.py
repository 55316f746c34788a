"""Does DAMC's amortiser learn a posterior? The reference's toy check, with a known answer.

A fixed generator ``x = W tanh(A z) + sigma eps`` (``z`` in 2-D, ``x`` in ``data.observation_dim``)
with a ``N(0, I)`` prior has a posterior ``p(z | x)`` that is sharp and far from ``N(0, I)``.
Its samples come from a long Langevin run (``data.long_run_steps``, the ground truth). Only
the amortiser ``Q(z | x)`` trains: each step draws ``z_0 ~ Q(z | x)``, refines it by
``model.posterior_steps`` Langevin steps and fits ``Q`` to the result (DAMC). Evaluation
compares, per held-out ``x``, the sliced Wasserstein distance to the long run of

* ``amortised``: ``Q``'s samples refined by ``posterior_steps`` steps (what DAMC hands the
  model), and
* ``short_run``: ``posterior_steps`` steps from ``N(0, I)`` (what short-run Langevin does),

so the distance of the first should fall during training and end well below the second.
The report plots both sample sets against the long run for a few ``x``.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from experiments.core import plotting
from experiments.core.checks import number
from experiments.core.task import Task
from nnce_jax import damc, sample_distances
from nnce_jax.noise import isotropic_gaussian

LATENT_DIM = 2


def check(config) -> None:
  for field in ('observation_dim', 'num_eval_observations', 'samples_per_observation', 'long_run_steps'):
    number(config, f'data.{field}', low=1, integer=True)
  number(config, 'data.observation_std', low=0, low_open=True)
  number(config, 'model.posterior_steps', low=1, integer=True)
  number(config, 'model.posterior_step_size', low=0, low_open=True)
  number(config, 'model.diffusion_steps', low=2, integer=True)


class Toy:
  """The fixed generator and its unnormalised posterior."""

  def __init__(self, key, observation_dim: int, observation_std: float):
    a_key, w_key = jax.random.split(key)
    self.a = 1.5 * jax.random.normal(a_key, (LATENT_DIM, LATENT_DIM))
    self.w = jax.random.normal(w_key, (LATENT_DIM, observation_dim))
    self.std = observation_std

  def mean(self, z):
    return jnp.tanh(z @ self.a) @ self.w

  def sample(self, key, n):
    z_key, eps_key = jax.random.split(key)
    z = jax.random.normal(z_key, (n, LATENT_DIM))
    return self.mean(z) + self.std * jax.random.normal(eps_key, (n, self.w.shape[1]))

  def log_posterior(self, x):
    """``z [B, 2] -> [B]``: ``log p(x_b | z_b) + log N(z_b; 0, I)`` up to a constant."""
    prior = isotropic_gaussian(LATENT_DIM)
    return lambda z: (-0.5 * jnp.sum(jnp.square(x - self.mean(z)), -1) / self.std ** 2) + prior.log_prob(z)


def build(config) -> Task:
  d, m = config.data, config.model
  root = jax.random.PRNGKey(config.seed)
  toy = Toy(jax.random.fold_in(root, 7), d.observation_dim, d.observation_std)
  encoder = nn.Sequential([nn.Dense(64), nn.silu, nn.Dense(32)])  # x's embedding
  amortizer = damc.Amortizer(LATENT_DIM, encoder, embed_dim=32, widths=tuple(m.amortizer_widths))
  params = damc.init_amortizer(amortizer, jax.random.fold_in(root, 1), jnp.zeros((1, d.observation_dim)))
  sample_kw = {'num_steps': m.diffusion_steps}

  def loss_fn(params, rng, batch, step=0):
    x = batch['x']
    z0, z = damc.amortised_samples(amortizer, params, rng, x, toy.log_posterior(x),
                                   num_langevin=m.posterior_steps, step_size=m.posterior_step_size,
                                   **sample_kw)
    loss = damc.denoising_loss(amortizer, params, jax.random.fold_in(rng, 1), z, x)
    return loss, {'loss': loss, 'langevin_move': jnp.mean(jnp.linalg.norm(z - z0, axis=-1))}

  def sample_batch(key, inputs=None):
    return {'x': toy.sample(key, config.train.batch_size)}

  # Held-out observations, each repeated: many posterior samples per x.
  n, per = d.num_eval_observations, d.samples_per_observation
  x_eval = jnp.repeat(toy.sample(jax.random.fold_in(root, 2), n), per, axis=0)
  refine = lambda key, z, steps: damc.refine(key, toy.log_posterior(x_eval), z, num_steps=steps,  # noqa: E731
                                             step_size=m.posterior_step_size)
  start = jax.random.normal(jax.random.fold_in(root, 3), x_eval.shape[:1] + (LATENT_DIM,))
  long_run = jax.jit(refine, static_argnums=2)(jax.random.fold_in(root, 4), start, d.long_run_steps)
  short_run = jax.jit(refine, static_argnums=2)(jax.random.fold_in(root, 5), start, m.posterior_steps)
  eval_key = jax.random.fold_in(root, 6)

  def distance(z):
    """Mean over held-out x of the sliced Wasserstein distance to the long run."""
    pairs = zip(np.split(np.asarray(z), n), np.split(np.asarray(long_run), n))
    return float(np.mean([sample_distances.sliced_wasserstein(eval_key, a, b) for a, b in pairs]))

  @jax.jit
  def amortised(params):
    z0 = damc.sample(amortizer, params, eval_key, x_eval, **sample_kw)
    return z0, refine(jax.random.fold_in(eval_key, 1), z0, m.posterior_steps)

  short_run_distance = distance(short_run)

  def eval_fn(params):
    z0, z = amortised(params)
    return {'amortised_distance': distance(z), 'amortiser_distance': distance(z0),
            'short_run_distance': short_run_distance}

  def report(params, workdir):
    _, z = amortised(params)
    shown = min(n, 4)
    figure, axes = plotting.panels(shown, columns=4, width=3.6, height=3.4)
    for i, ax in enumerate(axes):
      rows = slice(i * per, (i + 1) * per)
      for samples, name in ((long_run, f'long run ({d.long_run_steps} steps)'),
                            (z, f'DAMC: Q + {m.posterior_steps} steps'),
                            (short_run, f'short run: N(0, I) + {m.posterior_steps} steps')):
        ax.scatter(*np.asarray(samples[rows]).T, s=3, alpha=0.5, label=name)
      plotting.label(ax, 'z1', 'z2', title=f'posterior of held-out x #{i}')
    axes[0].legend(fontsize=7, markerscale=3)
    path = os.path.join(workdir, 'amortiser_check.png')
    plotting.save(figure, path)
    return {'samples_png': path}

  return Task(init_params=params, loss_fn=loss_fn, eval_fn=eval_fn,
              table_metrics=('amortised_distance', 'short_run_distance'), report=report,
              sample_batch=sample_batch)

