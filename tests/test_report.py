"""The report's quick mode runs every benchmark end to end and writes a report."""

import os
import subprocess
import sys

import pytest

from tests.test_configs import REPO


@pytest.mark.slow
def test_quick_report_runs_every_benchmark(tmp_path):
  output = tmp_path / 'results.md'
  result = subprocess.run(
      [sys.executable, '-m', 'experiments.report', '--quick', f'--workdir={tmp_path}', f'--output={output}'],
      cwd=REPO, capture_output=True, text=True, timeout=600,
      env={**os.environ, 'XLA_FLAGS': '', 'JAX_PLATFORMS': 'cpu'})
  assert result.returncode == 0, result.stderr[-3000:]
  report = output.read_text()
  for section in ('(a)', '(b)', '(c)', '(d)', '(e)', '(f)'):
    assert f'## {section}' in report
  assert 'Fitted slope of log bias norm' in report
  claims = report[report.index('## Claims'):report.index('## (a)')]
  for claim in ('(a) The N²CE gradient tends', '(a) The gradient bias', '(b) n = 1000: U-shaped',
                '(6.41 nats, c) N²CE stays', '(6.41 nats, c) A decaying M', '(d) The best estimator',
                '(d) Single-ratio NCE', '(e) N²CE fits', '(6.41 nats, f) More ranking'):
    assert claim in claims
  # A rerun reuses every finished run.
  again = subprocess.run(
      [sys.executable, '-m', 'experiments.sweep', '--config=experiments/configs/density_chasm.py',
       '--grid=objective.name=nce,nwj', '--seeds=1', f'--workdir={tmp_path}/chasm6.41_baselines',
       '--config.data.sigma=0.001', '--config.train.num_steps=200', '--config.train.eval_every=100',
       '--config.train.log_every=200', '--config.train.checkpoint_every=200', '--config.data.num_test=500',
       '--config.likelihood.num_samples=0'],
      cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, 'XLA_FLAGS': ''})
  assert again.returncode == 0, again.stderr[-3000:]
  assert '2 runs, 2 done' in again.stdout


def test_sweep_grid_is_validated_before_any_run(tmp_path):


  from experiments.config_checks import ConfigError, parse_value
  from experiments.sweep_runner import parse_grid, run_sweep
  from tests.helpers import small_config
  config = small_config()
  assert parse_grid(config, ['objective.magnitude=1,10', 'objective.name=nce']) == [
      ('objective.magnitude', [1.0, 10.0]), ('objective.name', ['nce'])]
  assert parse_grid(config, ['train.batch_size=1e3']) == [('train.batch_size', [1000])]
  assert parse_value(config, 'model.hidden', '(8,8)') == (8, 8)
  with pytest.raises(ConfigError, match='config.objective.magnitud does not exist'):
    parse_grid(config, ['objective.magnitud=1'])
  with pytest.raises(ConfigError, match="config.train.batch_size='1.5' is invalid; it holds int values"):
    parse_grid(config, ['train.batch_size=1.5'])
  with pytest.raises(ConfigError, match='config.objective.magnitude=.x. is invalid; it holds float'):
    parse_grid(config, ['objective.magnitude=1,x'])
  # A bad cell anywhere in the grid fails before the first run starts.
  with pytest.raises(ConfigError, match='config.objective.magnitude=-1.0 is invalid'):
    run_sweep(config, 'unused.py', ['objective.magnitude=10,-1'], seeds=1, workdir=str(tmp_path / 's'))
  assert not (tmp_path / 's').exists()
