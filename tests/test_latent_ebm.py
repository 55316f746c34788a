"""The latent-space EBM: learns, resumes on the same data order, runs the image configs on mock data."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments.configs import celeba_lebm, cifar10_lebm, mnist_lebm, svhn_lebm
from experiments.core.checks import ConfigError
from experiments.run.training import check_config, fit, train_and_evaluate
from nnce_jax.data import images
from tests.helpers import leaves


def small_lebm(data_dir, num_steps, **overrides):
  config = mnist_lebm.get_config()
  config.data.update(data_dir=data_dir, num_test=200)
  config.model.update(hidden=(32, 32), generator_hidden=(64,), latent_dim=4, posterior_steps=5)
  config.train.update(num_steps=num_steps, batch_size=40, steps_per_dispatch=5, sync_every=5,
                      log_every=num_steps, eval_every=num_steps, checkpoint_every=10)
  for field, value in overrides.items():
    section, name = field.split('.')
    config[section][name] = value
  return config


@pytest.mark.slow
def test_resumed_run_reads_the_same_batches_and_ends_identical(data_dir, tmp_path):
  unbroken, _ = fit(small_lebm(data_dir, 20), str(tmp_path / 'unbroken'))
  fit(small_lebm(data_dir, 10), str(tmp_path / 'resumed'))
  resumed, _ = fit(small_lebm(data_dir, 20), str(tmp_path / 'resumed'))  # from the step-10 checkpoint
  for a, b in zip(leaves(unbroken), leaves(resumed)):
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_learns_digits_and_scores_an_anomaly(data_dir, tmp_path):
  config = small_lebm(data_dir, 300, **{'data.dataset': 'sklearn_digits', 'data.num_test': 359,
                                        'optimizer.learning_rate': 3e-3, 'model.posterior_steps': 20,
                                        'model.latent_dim': 8})
  summary = train_and_evaluate(config, str(tmp_path))
  source = images.image_source('sklearn_digits', 'test', data_dir)
  x = np.stack([images.to_unit_interval(source[i]['image']) for i in range(len(source))])
  # Reconstructions beat the mean image (0.28 per pixel) by far: 0.11 measured at 300 steps.
  assert summary['final']['test_mean_squared_error'] < 0.6 * np.mean(x.var(0))
  assert 0.0 < summary['final']['auprc'] <= 1.0 and summary['truth']['auprc'] == 0.910
  labels = np.array([source[i]['label'] for i in range(len(source))])
  assert summary['final']['positive_rate'] == pytest.approx(np.mean(labels[:config.data.num_test] == 1))
  for term in ('auprc_prior', 'auprc_reconstruction'):
    assert 0.0 < summary['final'][term] <= 1.0
  for png in ('samples.png', 'reconstructions.png'):
    assert os.path.getsize(tmp_path / png) > 0


@pytest.mark.slow
@pytest.mark.parametrize('module, dataset', [(cifar10_lebm, 'cifar10'), (svhn_lebm, 'svhn_cropped'),
                                             (celeba_lebm, 'celeb_a')])
def test_image_configs_run_on_mock_data(tmp_path, module, dataset):
  config = module.get_config()
  config.data.update(data_dir=str(tmp_path / 'data'), num_test=8)
  config.model.update(generator_features=8, hidden=(16, 16), latent_dim=8, posterior_steps=2)
  config.train.update(num_steps=4, batch_size=8, steps_per_dispatch=2, sync_every=2, log_every=4,
                      eval_every=4, checkpoint_every=4)
  os.makedirs(tmp_path / 'data' / dataset)  # image_source checks the folder; mock_data supplies the rest
  with tfds.testing.mock_data(num_examples=16, policy=tfds.testing.MockPolicy.USE_CODE):
    summary = train_and_evaluate(config, str(tmp_path / 'run'))
  assert summary['steps'] == 4 and np.isfinite(summary['final']['test_mean_squared_error'])
  assert summary['fid'].startswith('skipped: set config.fid.features')


@pytest.mark.slow
def test_fid_with_an_exported_feature_network(tmp_path):
  """A jax.export'ed random projection stands in for InceptionV3; FID of the samples against
  the test images is finite and positive, and FD of a sample against itself is 0."""
  import jax
  import jax.numpy as jnp

  from experiments.tasks.latent_images import load_features
  from nnce_jax.fid import feature_distance
  projection = jax.random.normal(jax.random.PRNGKey(0), (32 * 32 * 3, 6))
  network = jax.jit(lambda images: jnp.tanh(images.reshape(images.shape[0], -1) @ projection))
  exported = jax.export.export(network)(jax.ShapeDtypeStruct((4, 32, 32, 3), jnp.float32))
  path = tmp_path / 'features.bin'
  path.write_bytes(exported.serialize())
  features = load_features(str(path))
  images = np.asarray(jax.random.uniform(jax.random.PRNGKey(1), (10, 32, 32, 3), minval=-1))
  assert features(images).shape == (8, 6)  # chunks of the exported batch of 4
  assert abs(feature_distance(features(images), features(images))) < 1e-9

  config = cifar10_lebm.get_config()
  config.data.update(data_dir=str(tmp_path / 'data'), num_test=8)
  config.model.update(generator_features=8, hidden=(16, 16), latent_dim=8, posterior_steps=2)
  config.train.update(num_steps=2, batch_size=8, steps_per_dispatch=2, sync_every=2, log_every=2,
                      eval_every=2, checkpoint_every=2)
  config.fid.update(features=str(path), num_samples=8)
  os.makedirs(tmp_path / 'data' / 'cifar10')
  with tfds.testing.mock_data(num_examples=16, policy=tfds.testing.MockPolicy.USE_CODE):
    summary = train_and_evaluate(config, str(tmp_path / 'run'))
  assert np.isfinite(summary['fid']) and summary['fid'] > 0


def test_bad_latent_ebm_configs_name_the_field():
  config = mnist_lebm.get_config()
  config.model.generator = 'gan'
  with pytest.raises(ConfigError, match="config.model.generator='gan' is invalid; allowed values: conv, mlp"):
    check_config(config, 4)
  config = mnist_lebm.get_config()
  config.data.anomaly_digit = 10
  with pytest.raises(ConfigError, match='config.data.anomaly_digit=10 is invalid'):
    check_config(config, 4)


@pytest.mark.slow
def test_anomaly_quick_mode_writes_the_table(data_dir, tmp_path):
  import subprocess
  import sys

  from tests.test_configs import REPO
  output = tmp_path / 'anomaly.md'
  result = subprocess.run(
      [sys.executable, '-m', 'experiments.report.anomaly', '--quick', f'--workdir={tmp_path}',
       f'--output={output}', f'--override=data.data_dir={data_dir}', '--override=model.hidden=(32,32)',
       '--override=model.generator_hidden=(64,)'],
      cwd=REPO, capture_output=True, text=True, timeout=600,
      env={**os.environ, 'XLA_FLAGS': '', 'JAX_PLATFORMS': 'cpu'})
  assert result.returncode == 0, result.stderr[-3000:]
  table = output.read_text()
  for column in ('NCE (ours)', 'N²CE K = 1 (ours)', 'N²CE K = 3 (ours)', 'N²CE K = 3 (paper)'):
    assert column in table
  assert '| 1 |' in table and '0.959' in table  # digit 1, the paper's N²CE K = 3 beside ours
