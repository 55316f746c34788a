"""CONTRIBUTING.md's worked example: a task is one module plus one config file, and it runs."""

import ast
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
       f'--workdir={workdir}', '--config.train.num_steps=600',
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


def _imports(path: str) -> set[str]:
  """The absolute modules a source file imports (``from a import b`` as ``a.b`` and ``a``)."""
  found = set()
  for node in ast.walk(ast.parse(open(path).read())):
    if isinstance(node, ast.Import):
      found |= {alias.name for alias in node.names}
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      found |= {node.module} | {f'{node.module}.{alias.name}' for alias in node.names}
  return found


def test_tasks_are_leaves_that_share_only_common():
  """A task imports no other task, ``common`` imports nothing of ``experiments.tasks`` (so the
  package's import graph is 2 layers deep), and nothing outside reaches into a task's internals:
  it names a task by ``config.task`` (the registry) or shares what ``common`` holds."""
  tasks_dir = os.path.join(REPO, 'experiments', 'tasks')
  names = {n[:-3] for n in os.listdir(tasks_dir) if n.endswith('.py') and n != '__init__.py'}
  assert names and os.path.isdir(os.path.join(tasks_dir, 'common'))
  task_modules = {f'experiments.tasks.{n}' for n in names}
  for root, _, files in os.walk(os.path.join(REPO, 'experiments')):
    for name in files:
      if not name.endswith('.py') or '__pycache__' in root:
        continue
      path = os.path.join(root, name)
      within = os.path.relpath(path, REPO)
      reached = {m for m in _imports(path) if m.startswith('experiments.tasks.')}
      if within.startswith('experiments/tasks/common/'):
        assert not reached, (within, reached)
      else:
        assert not reached & task_modules, (within, reached & task_modules)
        assert all(m.startswith('experiments.tasks.common') for m in reached), (within, reached)
