"""A run's metrics: ``metrics.jsonl`` and TensorBoard event files (via tensorboardX, no TF)."""

import json
import os


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
