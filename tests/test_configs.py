"""Every config runs a few steps; bad configs fail before anything compiles or is written."""

import os
import subprocess
import sys

import numpy as np
import pytest

from experiments.core.checks import ConfigError
from experiments.run.training import check_config, train_and_evaluate
from nnce_jax.data import toy2d
from tests.helpers import assert_refused, small_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# The likelihood pipeline (MCMC and the log Z estimators, most of a run's time here) runs in the
# first case of each task; the others switch it off with likelihood.num_samples = 0.
SMOKE = [
    ('density_chasm', {}),
    ('density_chasm', {'objective.name': 'nce', 'objective.noise_ratio': 3}),
    ('density_chasm', {'objective.name': 'nwj', 'objective.num_stages': 3}),
    ('density_chasm', {'objective.name': 'ranking_nce', 'objective.num_candidates': 4}),
    ('density_chasm', {'objective.l2_penalty': 0.1, 'parallel.backend': 'pmap'}),
    ('gaussian', {'data.dim': 2}),
    ('gaussian', {'data.dim': 5, 'objective.name': 'nce'}),
    ('toy_densities', {'model.hidden': (16, 16)}),
    ('mutual_information', {'objective.num_stages': 2, 'data.num_train': 1000}),
    ('density_chasm', {'objective.magnitude_schedule': 'cosine', 'objective.magnitude': 1e4}),
]
# The default tier runs the default config; the other tasks, objectives and backends, unit-tested on
# their own, go through the whole config path in the slow tier.
FAST_SMOKE = {0}


@pytest.mark.parametrize('task, overrides', [
    pytest.param(*case, marks=() if i in FAST_SMOKE else pytest.mark.slow) for i, case in enumerate(SMOKE)])
def test_each_config_runs_a_few_steps(tmp_path, task, overrides):
  config = small_config(task, num_steps=20, eval_every=20, log_every=20, checkpoint_every=20)
  first_of_task = next(o for t, o in SMOKE if t == task) == overrides
  config.likelihood.num_samples = config.likelihood.num_samples if first_of_task else 0
  for field, value in overrides.items():
    section, name = field.split('.')
    config[section][name] = value
  summary = train_and_evaluate(config, str(tmp_path))
  assert summary['steps'] == 20
  assert all(np.isfinite(v) for v in summary['final'].values())
  assert os.path.exists(tmp_path / 'summary.json') and os.path.exists(tmp_path / 'metrics.jsonl')
  assert any(name.startswith('events.out.tfevents') for name in os.listdir(tmp_path / 'tensorboard'))
  if task == 'gaussian' and overrides['data.dim'] == 2:
    assert -1 <= summary['final']['grad_cosine_mle'] <= 1
  if task == 'toy_densities':
    assert os.path.exists(tmp_path / 'density.png')
  if config.likelihood.num_samples:
    likelihood = summary['likelihood']
    assert 0.2 < likelihood['sampler']['acceptance_rate'] < 0.9
    assert all(np.isfinite(e['log_z']) for e in likelihood['estimators'].values())


@pytest.mark.slow
def test_normalizer_benchmark_writes_its_table_and_plot(tmp_path):
  from experiments.configs import log_z_estimators as log_z_config
  from experiments.tasks.log_z_estimators import evaluate
  config = log_z_config.get_config()
  config.data.num_seeds = 3
  config.data.update(dim=3, kl_values=(1.0, 5.0), sample_sizes=(100, 1000))
  check_config(config, num_devices=4)
  table = evaluate(config, str(tmp_path))['table']
  assert table.count('\n| ') == 2 + 4  # header, rule, 2 KLs x 2 sizes
  for name in ('normalizers.md', 'normalizers.json', 'normalizers.png'):
    assert os.path.exists(tmp_path / name)
  import json
  results = json.load(open(tmp_path / 'normalizers.json'))['results']
  assert all(r['pooled_spread'] < 1e-4 for r in results)  # the equivalence, on every seed
  small, large = (r['abs_error']['optimal_bridge'][0] for r in results if r['kl'] == 1.0)
  assert large < small  # more samples, smaller error


@pytest.mark.parametrize('name', toy2d.DATASETS)
def test_toy_datasets_are_finite_and_bounded(name):
  import jax
  x = np.asarray(toy2d.sample(name, jax.random.PRNGKey(0), 5000))
  assert x.shape == (5000, 2) and np.all(np.isfinite(x))
  assert np.all(np.abs(x) < 6.0) and x.std() > 0.5


BAD = [
    ('objective.name', 'infonce',
     'config.objective.name=.*allowed values: nce, noisier_nce, nwj, ranking_nce'),
    ('objective.magnitude', 0.0, r'config.objective.magnitude=0.0 is invalid; it must be a number in \(0'),
    ('objective.magnitude', -5.0, 'config.objective.magnitude=-5.0'),
    ('objective.magnitude', 1e30,
     r'config.objective.magnitude=1e\+30 is invalid; it must be a number in \(0, 1e\+12\]'),
    ('optimizer.schedule', 'step', 'config.optimizer.schedule=.*allowed values: constant, cosine'),
    ('objective.num_stages', 0, r'config.objective.num_stages=0 is invalid; it must be an integer in \[1'),
    ('objective.noise_ratio', 0, 'config.objective.noise_ratio=0'),
    ('train.batch_size', 66,
     'config.train.batch_size=66 is invalid; it must be divisible by the device count, 4'),
    ('train.eval_every', 15,
     'config.train.eval_every=15 is invalid; it must be a multiple of train.steps_per_dispatch=10'),
    ('train.on_nonfinite', 'ignore', 'config.train.on_nonfinite=.*allowed values: stop, skip'),
    ('parallel.backend', 'xmap', 'config.parallel.backend=.*allowed values: shard_map, pmap'),
    ('optimizer.learning_rate', float('nan'), 'config.optimizer.learning_rate=nan'),
    ('model.name', 'resnet', 'config.model.name=.*allowed values: gaussian, mlp, resmlp'),
    ('objective.log_magnitude', -1.0,
     r'config.objective.log_magnitude=-1.0 is invalid; it must be a number in \[0'),
    ('data.sigma', 0.0, 'config.data.sigma=0.0'),
    ('likelihood.num_chains', 5000,
     r'config.likelihood.num_chains=5000 is invalid; it must be an integer in \[1, 1000\]'),
]


@pytest.mark.parametrize('field, value, message', BAD)
def test_bad_config_names_the_field_and_allowed_values(field, value, message):
  assert_refused(small_config(), field, value, message)


def test_normalizer_benchmark_rejects_unreachable_kl():
  config = small_config('log_z_estimators')
  config.data.kl_values = (0.01, 5.0)
  with pytest.raises(ConfigError, match='config.data.kl_values holds 0.01, below'):
    check_config(config, num_devices=4)


def test_unknown_task_lists_the_task_modules():
  config = small_config()
  config.task = 'density_chasms'
  with pytest.raises(ConfigError, match="config.task='density_chasms' is invalid; allowed values: "
                     'amortiser_check, ddpm_images, ddpm_toy2d, density_chasm, dxmi_images, dxmi_toy2d, '
                     'gaussian, gradient_alignment, image_density, latent_images, log_z_estimators, '
                     'mutual_information, sid_images, sid_toy2d, '
                     'teacher_sampling, toy_densities'):
    check_config(config, num_devices=4)


# Each config holds the sections its task reads (experiments/configs/common.py), no more.
SECTIONS = {
    'density_chasm': {'data', 'train', 'parallel', 'model', 'objective', 'optimizer', 'likelihood'},
    'image_density': {'data', 'train', 'parallel', 'model', 'objective', 'optimizer', 'noise', 'ais'},
    'toy_densities': {'data', 'train', 'parallel', 'model', 'objective', 'optimizer', 'likelihood'},
    'dxmi_toy2d': {'data', 'train', 'parallel', 'teacher', 'sampler', 'energy', 'value', 'dxmi'},
    'sid_toy2d': {'data', 'train', 'parallel', 'teacher', 'sid'},
    'ddpm_images': {'data', 'train', 'parallel', 'teacher', 'judge', 'optimizer'},
    'teacher_sampling': {'data', 'teacher', 'judge'},
    'log_z_estimators': {'data'},
    'gradient_alignment': {'data'},
}


@pytest.mark.parametrize('name, sections', SECTIONS.items())
def test_a_config_holds_only_the_sections_its_task_reads(name, sections):
  import importlib
  config = importlib.import_module(f'experiments.configs.{name}').get_config()
  assert {k for k, v in config.items() if hasattr(v, 'keys')} == sections
  check_config(config, num_devices=1)  # what is left is enough for the checks


def test_a_field_the_task_does_not_read_is_refused_in_one_line(tmp_path):
  workdir = tmp_path / 'never'
  result = subprocess.run(
      [sys.executable, '-m', 'experiments.main', '--config=experiments/configs/dxmi_toy2d.py',
       '--config.optimizer.learning_rate=0.1', f'--workdir={workdir}'],
      cwd=REPO, capture_output=True, text=True, timeout=120,
      env={**os.environ, 'XLA_FLAGS': '', 'JAX_PLATFORMS': 'cpu'})
  assert result.returncode != 0 and not workdir.exists()
  assert result.stderr.strip() == ("Invalid config override --config.optimizer.learning_rate: the config has "
                                   "no field 'optimizer' (the task does not read it)")


def test_main_rejects_a_bad_config_before_writing(tmp_path):
  workdir = tmp_path / 'never'
  result = subprocess.run(
      [sys.executable, '-m', 'experiments.main', '--config.objective.magnitude=-1', f'--workdir={workdir}'],
      cwd=REPO, capture_output=True, text=True, timeout=120,
      env={**os.environ, 'XLA_FLAGS': '', 'JAX_PLATFORMS': 'cpu'})
  assert result.returncode != 0
  assert 'Invalid config: config.objective.magnitude=-1' in result.stderr
  assert not workdir.exists()


@pytest.mark.slow
def test_main_records_a_divergence_for_the_sweeps(tmp_path):
  workdir = tmp_path / 'run'
  result = subprocess.run(
      [sys.executable, '-m', 'experiments.main', '--config=experiments/configs/density_chasm.py',
       '--config.optimizer.learning_rate=1e30',
       '--config.train.num_steps=100', f'--workdir={workdir}'],
      cwd=REPO, capture_output=True, text=True, timeout=300,
      env={**os.environ, 'XLA_FLAGS': '', 'JAX_PLATFORMS': 'cpu'})
  assert result.returncode != 0 and 'Diverged: non-finite' in result.stderr, result.stderr[-2000:]
  assert 'non-finite' in (workdir / 'diverged.txt').read_text()


@pytest.mark.slow
def test_density_chasm_reaches_the_closed_form_kl(tmp_path):
  config = small_config(num_steps=3000, log_every=1000, eval_every=500, checkpoint_every=0)
  config.train.update(batch_size=1000, steps_per_dispatch=50, sync_every=50)
  summary = train_and_evaluate(config, str(tmp_path))
  assert abs(summary['final']['kl'] - summary['truth']['kl']) < 0.15, summary['final']
  assert summary['truth']['kl'] == pytest.approx(6.4078, abs=1e-3)
  assert summary['steps_to_tolerance'] is not None
  # log Z of the learned Gaussian is -c in closed form; the pooled estimate from MALA samples
  # and q0 samples must find it.
  likelihood = summary['likelihood']
  bridge = likelihood['estimators']['optimal_bridge']
  assert abs(bridge['log_z'] - likelihood['truth_log_z']) < 3 * bridge['std_error'] + 0.02, likelihood
