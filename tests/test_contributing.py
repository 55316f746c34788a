"""CONTRIBUTING.md's worked example: a task is one module plus one config file, and it runs."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.test_configs import REPO


@pytest.mark.slow
def test_a_task_added_as_one_module_and_one_config_trains(tmp_path):
  guide = open(os.path.join(REPO, 'CONTRIBUTING.md')).read()
  files = dict(re.findall(r'```python\n# (experiments/\S+\.py)\n(.*?)```', guide, re.S))
  assert set(files) == {'experiments/tasks/mean_shift.py', 'experiments/configs/mean_shift.py'}
  shutil.copytree(os.path.join(REPO, 'experiments'), tmp_path / 'experiments',
                  ignore=shutil.ignore_patterns('__pycache__'))
  for path, text in files.items():
    assert not (tmp_path / path).exists()  # new files, nothing else edited
    (tmp_path / path).write_text(text)
  workdir = tmp_path / 'run'
  result = subprocess.run(
      [sys.executable, '-m', 'experiments.main', '--config=experiments/configs/mean_shift.py',
       f'--workdir={workdir}', '--config.compare=', '--config.train.num_steps=600',
       '--config.train.batch_size=500', '--config.train.eval_every=200', '--config.train.log_every=200',
       '--config.train.checkpoint_every=600'],
      cwd=tmp_path, capture_output=True, text=True, timeout=300,
      env={**os.environ, 'XLA_FLAGS': '', 'JAX_PLATFORMS': 'cpu'})
  assert result.returncode == 0, result.stderr[-3000:]
  summary = json.loads((workdir / 'summary.json').read_text())
  assert summary['task'] == 'mean_shift' and summary['truth']['kl'] == 2.0
  assert abs(summary['final']['kl'] - 2.0) < 0.15, summary['final']


def test_no_experiments_module_shares_a_name_with_a_library_module():
  def modules(package):
    root = os.path.join(REPO, package)
    return {name[:-3] for _, _, files in os.walk(root) for name in files
            if name.endswith('.py') and not name.startswith('__')}
  assert not modules('experiments') & modules('nnce_jax')
