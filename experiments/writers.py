"""Metric writers: ``metrics.jsonl`` and TensorBoard event files (via tensorboardX, no TF);
the markdown helpers every results table uses."""

import json
import os

import numpy as np


def mean_std(values) -> str:
  """``mean ± std`` of the non-None values (None: a run that never got within tolerance);
  ``never`` if all are None, and the count when only some are."""
  reached = [v for v in values if v is not None]
  if not reached:
    return 'never'
  text = f'{np.mean(reached):.4g} ± {np.std(reached):.2g}' if len(reached) > 1 else f'{reached[0]:.4g}'
  return text if len(reached) == len(values) else f'{text} ({len(reached)} of {len(values)}; the rest never)'


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
  return '\n'.join('| ' + ' | '.join(r) + ' |' for r in [header, ['---'] * len(header)] + rows)


def read_metrics(workdir: str) -> list[dict]:
  path = os.path.join(workdir, 'metrics.jsonl')
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


class MetricWriter:
  """Appends ``{'step': s, **scalars}`` lines; a resumed run first drops records past its step."""

  def __init__(self, workdir: str, resume_step: int = 0):
    from tensorboardX import SummaryWriter
    self._path = os.path.join(workdir, 'metrics.jsonl')
    kept = [r for r in read_metrics(workdir) if r['step'] <= resume_step]
    with open(self._path, 'w') as f:
      f.writelines(json.dumps(r) + '\n' for r in kept)
    self._tensorboard = SummaryWriter(os.path.join(workdir, 'tensorboard'))

  def write(self, step: int, scalars: dict) -> None:
    with open(self._path, 'a') as f:
      f.write(json.dumps({'step': step, **scalars}) + '\n')
    for name, value in scalars.items():
      self._tensorboard.add_scalar(name, value, step)

  def close(self) -> None:
    self._tensorboard.close()
