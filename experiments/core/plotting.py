"""The one plotting helper: panels, mean ± std over seeds, reference lines, saving (Agg, no display)."""

import math

import numpy as np


def _agg():
  import matplotlib
  matplotlib.use('Agg')  # files only: no display on servers and accelerators


def panels(count: int, *, columns: int = 3, width: float = 4.6, height: float = 3.5):
  """A figure of ``count`` panels in rows of ``columns``; returns ``(figure, [axes])``."""
  _agg()
  from matplotlib import pyplot as plt
  columns = min(columns, count)
  rows = math.ceil(count / columns)
  figure, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False,
                              layout='constrained')
  for ax in axes.flat[count:]:
    ax.set_visible(False)
  return figure, list(axes.flat[:count])


def seed_band(ax, x, curves, label: str):
  """Mean of ``curves`` (one per seed, cut to the shortest) with a ±1 std band (ddof = 1)."""
  length = min(len(c) for c in curves)
  values = np.asarray([c[:length] for c in curves], float)
  mean = values.mean(0)
  line, = ax.plot(x[:length], mean, label=label)
  if len(values) > 1:
    std = values.std(0, ddof=1)
    ax.fill_between(x[:length], mean - std, mean + std, color=line.get_color(), alpha=0.2)
  return line


def seed_points(ax, x, groups, label: str, marker: str = 'o'):
  """One point per ``x``: the mean of its group of seed values, error bars ±1 std (ddof = 1).
  Non-finite values (a run that never reached a tolerance) are left out of their group."""
  means, stds, xs = [], [], []
  for value, group in zip(x, groups):
    finite = [g for g in group if g is not None and np.isfinite(g)]
    if finite:
      xs.append(value)
      means.append(np.mean(finite))
      stds.append(np.std(finite, ddof=1) if len(finite) > 1 else 0.0)
  return ax.errorbar(xs, means, yerr=stds, marker=marker, capsize=3, label=label)


def reference(ax, value: float, label: str, style: str = '--', color: str = 'k'):
  """A horizontal line at a closed-form or baseline value."""
  ax.axhline(value, ls=style, color=color, lw=1, label=label)


def label(ax, x: str, y: str, *, title: str | None = None, log_x: bool = False, log_y: bool = False):
  ax.set_xlabel(x)
  ax.set_ylabel(y)
  if title:
    ax.set_title(title, fontsize=10)
  if log_x:
    ax.set_xscale('log')
  if log_y:
    ax.set_yscale('log')


def save(figure, path: str, legend_axes=None) -> str:
  """Adds a small legend to ``legend_axes`` (default: every panel with labelled lines), writes a
  PNG and closes the figure."""
  from matplotlib import pyplot as plt
  for ax in legend_axes if legend_axes is not None else figure.axes:
    if ax.get_legend_handles_labels()[0]:
      ax.legend(fontsize=7)
  figure.savefig(path, dpi=100)
  plt.close(figure)
  return path


def image_grid(batch, path: str, columns: int = 8) -> None:
  """Writes images ``[n, H, W, C]`` in ``[-1, 1]`` as one PNG grid."""
  _agg()
  from matplotlib import pyplot as plt
  batch = np.clip((np.asarray(batch) + 1) / 2, 0, 1)
  n, h, w, c = batch.shape
  rows = -(-n // columns)
  grid = np.ones((rows * (h + 1), columns * (w + 1), c))
  for i, image in enumerate(batch):
    r, col = divmod(i, columns)
    grid[r * (h + 1):r * (h + 1) + h, col * (w + 1):col * (w + 1) + w] = image
  plt.imsave(path, grid[..., 0] if c == 1 else grid, cmap='gray' if c == 1 else None)
