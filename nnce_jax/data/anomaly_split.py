"""The leave-one-class-out anomaly split of the DAMC / MEG reference protocol.

All images of a dataset are pooled; a fraction ``train_fraction`` (0.8) of the images of the
normal classes, chosen at random per class, is the training set, and the test set is the rest
of the normals plus **every** image of the held-out class. So the anomaly prevalence in test is
``n_anomaly / (n_anomaly + 0.2 n_normal)``, about 0.36 on MNIST, and a random score's AUPRC is
that prevalence (not 0.1).
"""

import numpy as np


def anomaly_split(labels, anomaly: int, *, train_fraction: float = 0.8, seed: int = 0):
  """``(train, test)`` index arrays into ``labels`` (``[n]`` ints) with class ``anomaly`` held out.

  Training holds normal images only; each normal class contributes ``round(train_fraction *
  count)`` of its images, the same ones for the same ``seed``."""
  labels = np.asarray(labels)
  if not 0 < train_fraction < 1:
    raise ValueError(f'train_fraction={train_fraction} must lie in (0, 1)')
  if not np.any(labels == anomaly):
    raise ValueError(f'class {anomaly} has no images; classes present: {sorted(set(labels.tolist()))}')
  rng = np.random.default_rng(seed)
  train, test = [], [np.flatnonzero(labels == anomaly)]
  for label in np.unique(labels):
    if label == anomaly:
      continue
    members = rng.permutation(np.flatnonzero(labels == label))
    cut = int(round(train_fraction * len(members)))
    train.append(members[:cut])
    test.append(members[cut:])
  return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def prevalence(labels, test, anomaly: int) -> float:
  """The share of anomalies in the test set: a random score's expected AUPRC."""
  return float(np.mean(np.asarray(labels)[test] == anomaly))
