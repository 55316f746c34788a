"""The judge of image samplers: a classifier that learns a separable problem, and the class
histogram's KL to uniform against its closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnce_jax import classifier


@pytest.mark.slow
def test_learns_separable_classes_and_gives_features():
  model = classifier.FeatureClassifier(hidden=(32, 8), num_classes=3)
  centres = 3.0 * jnp.eye(5)[:3]
  labels = jnp.arange(600) % 3
  x = centres[labels] + 0.5 * jax.random.normal(jax.random.PRNGKey(0), (600, 5))
  params = classifier.train_classifier(model, jax.random.PRNGKey(1), x, labels, num_steps=300, batch_size=64)
  assert classifier.accuracy(model, params, x, labels) > 0.95
  assert model.apply(params, x[:7], features=True).shape == (7, 8)


def test_class_histogram_kl_matches_its_closed_form():
  model = classifier.FeatureClassifier(hidden=(4,), num_classes=4)
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))
  # Logits = x @ W with the hidden layer the identity-like ReLU of x: set the weights by hand.
  params = jax.tree.map(jnp.zeros_like, params)
  params['params']['Dense_0']['kernel'] = jnp.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]])
  params['params']['Dense_1']['kernel'] = jnp.eye(4)
  params['params']['Dense_1']['bias'] = jnp.array([0.0, 0.0, 0.5, 0.25])
  one_class = jnp.zeros((10, 2))  # every logit vector is the bias: class 2 always
  assert classifier.class_histogram_kl(model, params, one_class) == pytest.approx(np.log(4), rel=1e-6)
  balanced = jnp.array([[5.0, 0], [0, 5.0], [0, 0], [0, 0]])  # classes 0, 1, 2, 2
  expected = 0.25 * np.log(0.25 * 4) * 2 + 0.5 * np.log(0.5 * 4)
  assert classifier.class_histogram_kl(model, params, balanced) == pytest.approx(expected, rel=1e-6)
