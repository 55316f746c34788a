"""What the sampler tasks share (``ddpm_toy2d``, ``dxmi_toy2d``): the teacher's network and
schedule from a config, and how samples are judged against held-out data."""

import jax
import numpy as np

from experiments.core import plotting
from experiments.core.checks import number, widths
from nnce_jax import ddpm, sample_distances
from nnce_jax.data import toy2d

MMD_POINTS = 5000  # the kernel matrix is quadratic in the sample size
LIMIT = 4.5  # the toy densities lie in [-LIMIT, LIMIT]^2


def check_teacher(config) -> None:
  number(config, 'teacher.diffusion_steps', low=2, integer=True)
  number(config, 'teacher.beta_start', low=0, low_open=True, high=1, high_open=True)
  number(config, 'teacher.beta_end', low=config.teacher.beta_start, high=1, high_open=True)
  widths(config, 'teacher.hidden')


def teacher(config) -> tuple[ddpm.EpsilonMLP, ddpm.Schedule]:
  t = config.teacher
  return ddpm.EpsilonMLP(tuple(t.hidden)), ddpm.linear_schedule(t.diffusion_steps, t.beta_start, t.beta_end)


def modes_covered(name: str, samples: np.ndarray, min_fraction: float = 0.02) -> int | None:
  """Modes of ``name`` holding at least ``min_fraction`` of ``samples``: the 8 Gaussians
  (within 3 standard deviations of a centre) or the 8 squares of the checkerboard; None for
  other datasets."""
  samples = np.asarray(samples)
  if name == '8gaussians':
    angles = 2 * np.pi * np.arange(8) / 8
    centres = 4.0 * np.stack([np.cos(angles), np.sin(angles)], -1) / 1.414
    distance = np.linalg.norm(samples[:, None] - centres[None], axis=-1)
    return int(np.sum(np.mean(distance < 3 * 0.5 / 1.414, 0) >= min_fraction))
  if name == 'checkerboard':  # squares of side 2 on [-4, 4]^2 whose column + row index is even
    column, row = np.floor(samples[:, 0] / 2), np.floor(samples[:, 1] / 2)
    inside = (np.abs(samples) < 4).all(-1) & ((column + row) % 2 == 0)
    cells = [(c, r) for c in range(-2, 2) for r in range(-2, 2) if (c + r) % 2 == 0]
    return int(sum(np.mean(inside & (column == c) & (row == r)) >= min_fraction for c, r in cells))
  return None


def sample_metrics(key, name: str, samples: jax.Array, held_out: jax.Array) -> dict:
  """Sliced W2 (100 projections) over equal-size samples, MMD on the first
  :data:`MMD_POINTS`, and :func:`modes_covered`."""
  n = min(samples.shape[0], held_out.shape[0])
  metrics = {'sliced_w2': float(sample_distances.sliced_wasserstein(key, samples[:n], held_out[:n], 100)),
             'mmd': float(sample_distances.mmd(samples[:MMD_POINTS], held_out[:MMD_POINTS]))}
  modes = modes_covered(name, samples)
  if modes is not None:
    metrics['modes_covered'] = modes
  return metrics


def held_out(config) -> jax.Array:
  """``data.num_test`` points of the toy density, independent of the training draws."""
  return toy2d.sample(config.data.dataset, jax.random.fold_in(jax.random.PRNGKey(config.seed), 99),
                      config.data.num_test)


def uniform_box(key, n: int) -> jax.Array:
  return jax.random.uniform(key, (n, 2), minval=-LIMIT, maxval=LIMIT)


def sample_panels(shown: dict, extra: int = 0):
  """A row of scatter plots, one per ``{title: points [n, 2]}`` (5,000 points at most), and
  ``extra`` more panels for the caller, all on the toy box: ``(figure, axes)``."""
  figure, axes = plotting.panels(len(shown) + extra, columns=len(shown) + extra, width=3.2, height=3.2)
  for ax, (title, points) in zip(axes, shown.items()):
    ax.scatter(*np.asarray(points[:5000]).T, s=1, alpha=0.4)
    ax.set_title(title)
  for ax in axes:
    ax.set_xlim(-LIMIT, LIMIT)
    ax.set_ylim(-LIMIT, LIMIT)
    ax.set_aspect('equal')
  return figure, axes
