"""The latent-space EBM: learns, resumes on the same data order, runs the image configs on mock data."""

import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments.configs import celeba_lebm, cifar10_lebm, mnist_lebm, svhn_lebm
from experiments.core.checks import set_fields
from experiments.run.training import fit, train_and_evaluate
from nnce_jax.data import images
from tests.helpers import assert_refused, leaves


def small_lebm(data_dir, num_steps, **overrides):
  config = mnist_lebm.get_config()
  config.data.update(data_dir=data_dir, num_test=200)
  config.model.update(hidden=(32, 32), generator_hidden=(64,), latent_dim=4, posterior_steps=5, prior_steps=5,
                      diffusion_steps=4, amortizer_widths=(16, 16), embed_dim=16)
  config.train.update(num_steps=num_steps, batch_size=40, steps_per_dispatch=5, sync_every=5,
                      log_every=num_steps, eval_every=num_steps, checkpoint_every=10)
  return set_fields(config, overrides)


@pytest.mark.slow
@pytest.mark.parametrize('step', ['joint', 'reference'])
def test_resumed_damc_run_reads_the_same_batches_and_ends_identical(data_dir, tmp_path, step):
  """DAMC with maximum likelihood (both diffusion samplers and both chains), on 4 devices; the
  reference's iteration with its target amortiser and per-network optimisers."""
  fields = {'model.prior_learning': 'mle', 'train.batch_size': 8, 'data.dataset': 'sklearn_digits',
            'data.num_test': 40, 'model.step': step, 'model.negatives_from': 'posterior_start',
            'reference.amortizer_updates': 2, 'reference.target_every': 3}
  unbroken, _ = fit(small_lebm(data_dir, 20, **fields), str(tmp_path / 'unbroken'))
  fit(small_lebm(data_dir, 10, **fields), str(tmp_path / 'resumed'))
  resumed, _ = fit(small_lebm(data_dir, 20, **fields), str(tmp_path / 'resumed'))  # from step 10
  target = {'amortizer_target'} if step == 'reference' else set()
  assert set(unbroken.params) == {'generator', 'prior', 'amortizer'} | target
  for a, b in zip(leaves(unbroken), leaves(resumed)):
    np.testing.assert_array_equal(a, b)


def test_anomaly_runs_use_the_reference_split(data_dir):
  """mnist5k pooled: 80% of the nine normal digits train (a tenth of it validates), the test set
  is the rest plus all 500 images of the held-out digit: prevalence 500 / 1400."""
  from experiments.tasks.latent_images import data_split
  config = small_lebm(data_dir, 1, **{'data.anomaly_digit': 4, 'data.num_test': 5000})
  source, train, validation, test = data_split(config)
  labels = images.labels_of(source)
  assert len(source) == 5000 and len(train) + len(validation) == 3600 and len(validation) == 360
  assert not (set(train) & set(test) or set(validation) & set(test) or set(train) & set(validation))
  assert np.all(labels[train] != 4) and np.all(labels[validation] != 4)
  assert np.sum(labels[test] == 4) == 500 and len(test) == 1400
  batches = images.image_batches(source, batch_size=100, seed=0, indices=train)
  assert all(np.all(batches[i]['label'] != 4) for i in range(40))  # an epoch and more: normals only
  again = data_split(small_lebm(data_dir, 1, **{'data.anomaly_digit': 4, 'data.num_test': 5000, 'seed': 3}))
  assert all(np.array_equal(a, b) for a, b in zip((train, validation, test), again[1:]))  # seed-free
  _, _, _, subset = data_split(small_lebm(data_dir, 1, **{'data.anomaly_digit': 4, 'data.num_test': 700}))
  assert len(subset) == 700 and set(subset) <= set(test)


@pytest.mark.slow  # 30 s on 2 cores: builds and evaluates the model twice
def test_the_chasm_is_read_on_the_training_posterior(data_dir):
  """The prior is fitted to posteriors under the training likelihood: its chasm diagnostic stays
  put when the scoring likelihood is sharper (digit 1 is scored at sigma 0.1), the scores move."""
  from experiments import tasks
  metrics = {}
  for std in (0.1, 1.0):
    config = small_lebm(data_dir, 1, **{'data.anomaly_digit': 1, 'score.observation_std': std})
    task = tasks.get(config.task).build(config)
    metrics[std] = task.eval_fn(task.init_params)
  assert metrics[0.1]['chasm_log_ratio'] == metrics[1.0]['chasm_log_ratio']
  assert metrics[0.1]['auprc'] != metrics[1.0]['auprc']


@pytest.mark.slow  # 25 s on 2 cores, mostly compiling the DAMC model three ways
def test_anomaly_score_is_the_sum_of_its_terms():
  """joint = ||x - g(z)||^2 + (-s(z) + ||z||^2 / 2) at the returned z; no refinement: Q's own sample."""
  import jax
  import jax.numpy as jnp

  from nnce_jax import latent_ebm
  model = latent_ebm.make_latent_ebm((8, 8, 1), generator='mlp', generator_hidden=(16,), latent_dim=3,
                                     prior_hidden=(8,), sampler='damc', embed_dim=8, amortizer_widths=(8,),
                                     diffusion_steps=3)
  params = model.init(jax.random.PRNGKey(0))
  x = jax.random.uniform(jax.random.PRNGKey(1), (5, 8, 8, 1), minval=-1)
  scores = model.anomaly_scores(jax.random.PRNGKey(2), params, x, num_steps=2, observation_std=0.5)
  z = scores['z']
  reconstruction = jnp.sum(jnp.square(x - model.generator.apply(params['generator'], z)), axis=(1, 2, 3))
  prior = -model.log_ratio(params, z) + 0.5 * jnp.sum(jnp.square(z), -1)
  np.testing.assert_allclose(scores['reconstruction'], reconstruction, rtol=1e-6)
  np.testing.assert_allclose(scores['prior'], prior, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(scores['joint'], reconstruction + prior, rtol=1e-5)
  unrefined = model.anomaly_scores(jax.random.PRNGKey(2), params, x, num_steps=0)['z']
  init_key = jax.random.split(jax.random.PRNGKey(2))[0]
  np.testing.assert_array_equal(unrefined, model.initial_posterior(init_key, params, x))
  # Refinement climbs log p(x, z) at the scoring sigma.
  log_joint = lambda v: model.log_joint(params, x, v, 0.5)  # noqa: E731
  assert bool(jnp.all(log_joint(z) >= log_joint(unrefined) - 1e-4))


@pytest.mark.slow
def test_learns_digits_and_scores_an_anomaly(data_dir, tmp_path):
  config = small_lebm(data_dir, 300, **{'data.dataset': 'sklearn_digits', 'optimizer.learning_rate': 3e-3,
                                        'model.posterior_steps': 20, 'model.latent_dim': 8,
                                        'model.observation_std': 0.3, 'score.observation_std': 0.3,
                                        'score.steps': 20})
  summary = train_and_evaluate(config, str(tmp_path))
  source = images.image_source('sklearn_digits', 'test', data_dir)
  x = np.stack([images.to_unit_interval(source[i]['image']) for i in range(len(source))])
  # Reconstructions beat the mean image (0.28 per pixel) by far.
  assert summary['final']['test_mean_squared_error'] < 0.6 * np.mean(x.var(0))
  assert summary['truth'] == summary['references'] == {}  # the paper's numbers are MNIST's
  labels = np.concatenate([images.labels_of(images.image_source('sklearn_digits', s, data_dir))
                           for s in ('train', 'test')])
  ones, normals = np.sum(labels == 1), np.sum(labels != 1)
  assert summary['final']['positive_rate'] == pytest.approx(ones / (ones + normals - round(0.8 * normals)),
                                                            abs=0.01)
  for term in ('auprc', 'auroc', 'auprc_prior', 'auprc_reconstruction', 'chasm_accuracy'):
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


@pytest.mark.parametrize('field, value, message', [
    ('model.generator', 'gan', "config.model.generator='gan' is invalid; allowed values: conv, mlp, "
                               'reference'),
    ('data.anomaly_digit', 10, 'config.data.anomaly_digit=10 is invalid'),
    ('model.sampler', 'langevin', "config.model.sampler='langevin' is invalid; allowed values: short_run, "
                                  'damc'),
    ('model.prior_learning', 'cd', "config.model.prior_learning='cd' is invalid; allowed values: ratio, mle"),
    ('model.diffusion_steps', 1, 'config.model.diffusion_steps=1 is invalid'),
    ('model.prior_fraction', 1.0, 'config.model.prior_fraction=1.0 is invalid'),
    ('model.prior_step_size', 0.0, 'config.model.prior_step_size=0.0 is invalid'),
    ('score.steps', -1, 'config.score.steps=-1 is invalid'),
    ('data.validation_fraction', 0.0, 'config.data.validation_fraction=0.0 is invalid'),
    ('model.step', 'alternating', "config.model.step='alternating' is invalid; allowed values: joint, "),
    ('model.encoder', 'resnet', "config.model.encoder='resnet' is invalid; allowed values: mlp, conv, "),
    ('reference.target_rate', 1.0, 'config.reference.target_rate=1.0 is invalid'),
])
def test_bad_latent_ebm_configs_name_the_field(field, value, message):
  config = mnist_lebm.get_config()
  assert_refused(config, field, value, message.replace('(', r'\(').replace(')', r'\)'))


@pytest.mark.slow
def test_anomaly_quick_mode_writes_the_table(data_dir, tmp_path):
  import subprocess
  import sys

  from experiments.report.anomaly import QUICK_BANNER
  from tests.test_configs import REPO
  output = tmp_path / 'anomaly.md'
  kept = '\n## fashion_mnist\n\nanother run\'s section\n'
  output.write_text(f'# old quick page\n\n{QUICK_BANNER}\n{kept}')  # a dataset not rerun keeps its section
  result = subprocess.run(
      [sys.executable, '-m', 'experiments.report.anomaly', '--quick', '--datasets=mnist5k', '--short_run=',
       f'--workdir={tmp_path}', f'--output={output}', f'--override=data.data_dir={data_dir}',
       '--override=model.hidden=(32,32)', '--override=model.generator_hidden=(64,)'],
      cwd=REPO, capture_output=True, text=True, timeout=600,
      env={**os.environ, 'XLA_FLAGS': '', 'JAX_PLATFORMS': 'cpu'})
  assert result.returncode == 0, result.stderr[-3000:]
  table = output.read_text()
  for column in ('| MLE |', '| NCE |', 'N²CE K = 1', 'N²CE K = 3 (paper)', 'N²CE K = 3 − NCE',
                 'prevalence = random AUPRC', 'chasm accuracy', '--short_run=', "the reference's protocol",
                 'selected on validation normals (ours)'):
    assert column in table
  assert 'short-run' not in table.split('## mnist5k')[1]  # not asked for, not run
  assert table.endswith(kept) and '# old quick page' not in table
  assert '| 1 |' in table and '0.959' in table  # digit 1, the paper's N²CE K = 3 beside ours


def test_anomaly_page_keeps_the_sections_of_datasets_not_written(tmp_path):
  """A dataset's section replaces its old one when its runs finish; the other datasets keep
  theirs, in the datasets' order; a quick page and a full one never share sections."""
  from experiments.report import anomaly
  output = str(tmp_path / 'anomaly.md')
  old = {'mnist5k': '\n## mnist5k\n\nold digits\n', 'fashion_mnist': '\n## fashion_mnist\n\nold clothes\n'}
  with open(output, 'w') as f:
    f.write(anomaly.header(False) + old['mnist5k'] + old['fashion_mnist'])
  anomaly.write_page(output, False, {'fashion_mnist': '\n## fashion_mnist\n\nnew clothes\n'})
  page = open(output).read()
  assert page.endswith(old['mnist5k'] + '\n## fashion_mnist\n\nnew clothes\n')
  assert page.startswith(anomaly.header(False)) and 'old clothes' not in page
  anomaly.write_page(output, True, {'mnist5k': '\n## mnist5k\n\nquick digits\n'})
  page = open(output).read()
  assert anomaly.QUICK_BANNER in page and 'clothes' not in page and 'old digits' not in page


def test_long_run_page_reads_runs_as_far_as_they_got(tmp_path):
  """The 20,000-iteration page from logged evaluations: an unfinished run is named, the single-run
  difference is read at the last common evaluation, and the curves are drawn."""
  import json

  from experiments.report import anomaly_long
  keys = ('auprc', 'auprc_prior', 'auprc_reconstruction', 'test_mean_squared_error', 'chasm_log_ratio',
          'chasm_accuracy', 'validation_reconstruction', 'auprc_trapezoid')
  for run, steps, level in (('damc', (1000, 2000, 3000), 0.6), ('short_run', (1000, 2000), 0.5)):
    path = anomaly_long.run_dir(str(tmp_path), 1, run)
    os.makedirs(path)
    with open(os.path.join(path, 'metrics.jsonl'), 'w') as f:
      for i, step in enumerate(steps):
        f.write(json.dumps({'step': step, 'train_steps_per_sec': 2.0}) + '\n')
        row = {f'eval_{k}': level + 0.01 * i for k in keys}
        f.write(json.dumps({'step': step, **row, 'eval_positive_rate': 0.357}) + '\n')
  evals = {run: anomaly_long.evaluations(anomaly_long.run_dir(str(tmp_path), 1, run))
           for run in ('damc', 'short_run')}
  assert anomaly_long.run_seconds(str(tmp_path), 1) == pytest.approx(3000 / 2 + 2000 / 2)
  text = anomaly_long.stage_section(1, evals, 'stage1.png', 20000, seconds=5400)
  assert 'Not finished** (N²CE K = 3, DAMC at 3,000; N²CE K = 3, short-run at 2,000 of 20,000' in text
  assert '--stages=1`: its runs trained for 1.50 h' in text
  page = f'# title\n\nintro\n{text}\n## Stage 2: digit 1\n\nstage two text\n'
  assert anomaly_long.kept_sections(page, [2]) == {1: text}  # rendering stage 2 keeps stage 1 as it was
  assert anomaly_long.kept_sections(page, [1]) == {2: '\n## Stage 2: digit 1\n\nstage two text\n'}
  assert 'at iteration 2000' in text and 'AUPRC +0.100' in text and 'positive at 2 of 2' in text
  assert os.path.getsize(anomaly_long.curves(1, evals, str(tmp_path / 'stage1.png'))) > 0
  assert anomaly_long.evaluations(str(tmp_path / 'absent')) == []


def test_anomaly_claims_are_verdicts_on_paired_auprc():
  from experiments.report import anomaly

  def runs(auprc):  # {class: [one seed's metrics per value]}
    return {label: [{'auprc': a + 0.01 * label, 'auroc': a, 'auprc_test_selected': a + 0.05} for a in auprc]
            for label in (1, 4)}
  metrics = {'mle': runs([0.60, 0.62, 0.61]), 'nce': runs([0.70, 0.71, 0.69]),
             'noisier_nce_k1': runs([0.70, 0.72, 0.69]), 'noisier_nce_k3': runs([0.90, 0.93, 0.91])}
  rows, verdicts = anomaly.comparisons('mnist5k', [1, 4], metrics, None)
  found = {v.claim.split(' (mnist5k')[0]: v for v in verdicts}
  assert str(found['N²CE (K = 3) detects anomalies better than NCE']) == 'reproduced'
  assert str(found['N²CE (K = 1) detects anomalies better than NCE']) == 'inconclusive: the interval holds 0'
  assert found['N²CE (K = 3) detects anomalies better than the MLE prior'].kind == 'hypothesis'
  # Both AUPRC protocols and AUROC per comparison; no short-run comparison when none ran.
  assert [row[1] for row in rows[:3]] == list(anomaly.METRICS.values()) and len(rows) == 3 * len(verdicts)
  del metrics['nce'][4][0]['auprc_test_selected']  # a run logged before the trapezoidal AUPRC was
  rows, _ = anomaly.comparisons('mnist5k', [1, 4], metrics, None)
  assert len([row for row in rows if 'test-selected' in row[1]]) == 1  # only the comparison without NCE
