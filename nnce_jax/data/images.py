"""Image input: TFDS ``array_record`` sources fed through grain, without TensorFlow.

``image_source(name, split, data_dir)`` opens a prepared dataset with ``tfds.data_source``
(random access, no TensorFlow) and fails, naming the dataset and where it looked, with the
command that prepares it. ``image_batches(...)`` builds a grain ``MapDataset`` of batches:

* each process reads only its own shard (``shard_index::shard_count`` of the examples);
* the order is a deterministic global shuffle keyed by ``seed`` and the epoch, and the
  dataset is random-access, so batch ``i`` is ``dataset[i]`` whatever ran before: a
  resumed run reads exactly the batches an unbroken run would;
* ``keep_labels`` filters classes, or ``indices`` picks examples (the anomaly split of
  ``anomaly_split``), before sharding;
* ``image_size > 0`` centre-crops to a square and resizes (CelebA's 218 x 178 to 64 x 64);
* images become float32 in ``[-1, 1]``, uniformly dequantised (``(pixel + u) / 256``, ``u ~
  U[0, 1)`` keyed by seed and index) when ``dequantize`` is set.

Batches are ``{'image': [B, H, W, C] float32, 'label': [B] int32}`` (label -1 where the
dataset has none).
"""

import os
from collections.abc import Sequence

import grain
import numpy as np

PREPARE_HINT = {
    'mnist5k': 'python -m experiments.prepare_data --dataset=mnist5k --data_dir={data_dir} (offline, ~1 s)',
    'sklearn_digits': 'python -m experiments.prepare_data --dataset=sklearn_digits --data_dir={data_dir} '
                      '(offline, ~1 s)',
    'fashion_mnist': 'sudo apt-get update && sudo apt-get install -y dataset-fashion-mnist, then '
                     'python -m experiments.prepare_data --dataset=fashion_mnist --data_dir={data_dir}',
}
TFDS_HINT = ('on a machine with internet: `tfds build {name} --data_dir=DIR --file_format=array_record` '
             '(needs TensorFlow there only), then copy DIR/{name} to {data_dir}')


class MissingDataError(FileNotFoundError):
  """A dataset is not prepared where the config says."""


def image_source(name: str, split: str, data_dir: str):
  """``tfds.data_source`` of a prepared ``array_record`` dataset, or a clear error."""
  import tensorflow_datasets as tfds
  if not os.path.isdir(os.path.join(data_dir, name)):
    how = PREPARE_HINT.get(name, TFDS_HINT).format(name=name, data_dir=data_dir)
    raise MissingDataError(f'dataset {name!r} is not prepared in {os.path.abspath(data_dir)} '
                           f'(looked for {os.path.join(os.path.abspath(data_dir), name)}); prepare it: {how}')
  return tfds.data_source(name, split=split, data_dir=data_dir)


class PooledSource:
  """The examples of several random-access sources end to end (a dataset's splits pooled, as
  the anomaly protocol re-splits them): ``len`` and ``[i]``."""

  def __init__(self, sources):
    self._sources = list(sources)
    self._starts = np.cumsum([0] + [len(s) for s in self._sources])

  def __len__(self) -> int:
    return int(self._starts[-1])

  def __getitem__(self, index: int):
    if not 0 <= index < len(self):
      raise IndexError(f'example {index} of {len(self)}')
    which = int(np.searchsorted(self._starts, index, side='right')) - 1
    return self._sources[which][int(index - self._starts[which])]


def labels_of(source) -> np.ndarray:
  """Every example's label, ``[n]`` (reads each example once)."""
  return np.array([source[i]['label'] for i in range(len(source))])


def _indices_with_labels(source, keep_labels: Sequence[int] | None) -> np.ndarray:
  """Positions of the examples whose label is in ``keep_labels`` (all when None). Reads every
  example once: fine for the small labelled sets anomaly detection uses."""
  if keep_labels is None:
    return np.arange(len(source))
  return np.flatnonzero(np.isin(labels_of(source), keep_labels))


def square_resize(image: np.ndarray, size: int) -> np.ndarray:
  """Centre-crops ``[H, W, C]`` uint8 to a square and resizes it to ``size`` (PIL, area-like)."""
  from PIL import Image
  h, w = image.shape[:2]
  side = min(h, w)
  top, left = (h - side) // 2, (w - side) // 2
  crop = image[top:top + side, left:left + side]
  if side == size:
    return crop
  resized = Image.fromarray(crop[..., 0] if crop.shape[-1] == 1 else crop).resize((size, size), Image.BOX)
  return np.asarray(resized).reshape(size, size, -1)


def valid_pixels(image: np.ndarray, index: int) -> np.ndarray:
  """``image`` if its pixels are finite and in ``[0, 255]`` (TFDS images are uint8); else a
  ValueError naming the example, so bad data never reaches the model as silent NaNs."""
  if image.dtype == np.uint8:
    return image
  if not np.issubdtype(image.dtype, np.number) or not np.all(np.isfinite(image)):
    raise ValueError(f'example {index}: the image holds non-finite or non-numeric pixels '
                     f'(dtype {image.dtype}); images must be uint8, or numbers in [0, 255]')
  low, high = float(image.min()), float(image.max())
  if low < 0 or high > 255:
    raise ValueError(f'example {index}: pixels span [{low:g}, {high:g}], outside [0, 255]')
  return image.astype(np.uint8) if np.all(image == np.round(image)) else image


def to_unit_interval(image: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
  """uint8 pixels to float32 in ``[-1, 1]``; with ``noise`` in ``[0, 1)``, dequantised."""
  pixels = image.astype(np.float32) + (0.5 if noise is None else noise)
  return pixels / 128.0 - 1.0


def image_batches(source, *, batch_size: int, seed: int, shard_index: int = 0, shard_count: int = 1,
                  keep_labels: Sequence[int] | None = None, indices: Sequence[int] | None = None,
                  dequantize: bool = True,
                  image_size: int = 0, shuffle: bool = True,
                  drop_remainder: bool = True) -> grain.MapDataset:
  """Random-access batches of this process's shard; infinite (epochs repeat, reshuffled)
  when ``shuffle``, one pass in order otherwise (evaluation). ``indices`` (positions in
  ``source``) or ``keep_labels`` picks the examples; all when both are None."""
  if indices is not None and keep_labels is not None:
    raise ValueError('pass indices or keep_labels, not both')
  chosen = _indices_with_labels(source, keep_labels) if indices is None else np.asarray(indices)
  indices = chosen[shard_index::shard_count]
  if len(indices) < batch_size and drop_remainder:
    raise ValueError(f'{len(indices)} examples in this shard, fewer than one batch of {batch_size}')
  dataset = grain.MapDataset.source(indices)
  if shuffle:
    dataset = dataset.shuffle(seed=seed).repeat()

  def load(position, index):
    example = source[int(index)]
    image = valid_pixels(np.asarray(example['image']), int(index))
    image = square_resize(image, image_size) if image_size else image
    noise = None
    if dequantize:
      noise = np.random.default_rng([seed, int(position)]).random(image.shape, np.float32)
    return {'image': to_unit_interval(image, noise), 'label': np.int32(example.get('label', -1))}

  dataset = dataset.map_with_index(load)
  return dataset.batch(batch_size, drop_remainder=drop_remainder)
