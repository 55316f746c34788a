"""A small classifier whose penultimate layer is the feature space of sample-quality metrics
(Fréchet distance, KID) on datasets where InceptionV3 is out of reach or out of place.

Trained once on a dataset's training split and kept fixed, it judges every sampler alike; its
test accuracy says how much its features can be trusted.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn


class FeatureClassifier(nn.Module):
  """``x [B, d] -> logits [B, classes]``; ``features=True`` returns the last hidden layer
  ``[B, hidden[-1]]`` instead."""
  hidden: Sequence[int] = (512, 128)
  num_classes: int = 10

  @nn.compact
  def __call__(self, x: jax.Array, features: bool = False) -> jax.Array:
    h = x.reshape(x.shape[0], -1)
    for width in self.hidden:
      h = nn.relu(nn.Dense(width)(h))
    return h if features else nn.Dense(self.num_classes)(h)


def train_classifier(model: FeatureClassifier, key: jax.Array, x: jax.Array, labels: jax.Array, *,
                     num_steps: int = 2000, batch_size: int = 256, learning_rate: float = 1e-3):
  """Parameters after ``num_steps`` Adam steps of cross-entropy on minibatches of ``x [n, d]``,
  ``labels [n]`` (int), drawn with replacement from ``key``; one compiled loop."""
  init_key, loop_key = jax.random.split(key)
  params = model.init(init_key, x[:1])
  tx = optax.adam(learning_rate)

  def loss_fn(params, batch_x, batch_y):
    return optax.softmax_cross_entropy_with_integer_labels(model.apply(params, batch_x), batch_y).mean()

  @jax.jit
  def run(params, x, labels):  # the data as arguments: a closure would embed them as constants
    def body(i, carry):
      params, opt_state = carry
      index = jax.random.randint(jax.random.fold_in(loop_key, i), (batch_size,), 0, x.shape[0])
      grads = jax.grad(loss_fn)(params, x[index], labels[index])
      updates, opt_state = tx.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), opt_state
    return jax.lax.fori_loop(0, num_steps, body, (params, tx.init(params)))[0]

  return run(params, x, labels)


def accuracy(model: FeatureClassifier, params, x: jax.Array, labels: jax.Array) -> float:
  return float(jnp.mean(jnp.argmax(model.apply(params, x), -1) == labels))


def class_histogram_kl(model: FeatureClassifier, params, x: jax.Array) -> float:
  """KL(histogram of predicted classes || uniform): 0 when every class is drawn equally often,
  ``log(classes)`` when one class takes everything (mode collapse)."""
  counts = jnp.bincount(jnp.argmax(model.apply(params, x), -1), length=model.num_classes)
  p = counts / counts.sum()
  return float(jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0) * model.num_classes), 0.0)))
