"""Prepares an image dataset for ``tfds.data_source`` (array_record, no TensorFlow at read time).

``python -m experiments.prepare_data --dataset=mnist5k --data_dir=~/tensorflow_datasets``

``mnist5k`` and ``sklearn_digits`` are built offline from installed packages in about a
second; ``fashion_mnist`` from Debian's ``dataset-fashion-mnist`` (``sudo apt-get install -y
dataset-fashion-mnist``) in about 15 s. Standard TFDS sets (mnist, cifar10, svhn_cropped,
celeb_a) need a download: this prints the commands for a machine with internet (see docs/data.md).
"""

import os
import sys

from absl import app, flags

from nnce_jax.data import builders
from nnce_jax.data.images import TFDS_HINT

_DATASET = flags.DEFINE_string('dataset', 'mnist5k', 'Dataset name (TFDS).')
_DATA_DIR = flags.DEFINE_string('data_dir', '~/tensorflow_datasets', 'TFDS data_dir.')


def main(argv):
  del argv
  data_dir = os.path.expanduser(_DATA_DIR.value)
  if _DATASET.value in builders.LOCAL_BUILDERS:
    try:
      builders.prepare(_DATASET.value, data_dir)
    except FileNotFoundError as error:  # the package that ships the data is absent
      sys.exit(str(error))
    print(f'{_DATASET.value} prepared in {data_dir}')
  else:
    print(f'{_DATASET.value} must be downloaded; ' + TFDS_HINT.format(name=_DATASET.value, data_dir=data_dir))


if __name__ == '__main__':
  app.run(main)
