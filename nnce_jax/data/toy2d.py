"""The standard 2-D toy densities (as in FFJORD / TRE), as pure jittable samplers.

``sample(name, key, n) -> [n, 2]``; all lie roughly in ``[-4, 4]^2``.
"""

import math

import jax
import jax.numpy as jnp

DATASETS = ('8gaussians', 'checkerboard', 'two_spirals', 'rings', 'pinwheel')


def _eight_gaussians(key, n):
  centre_key, noise_key = jax.random.split(key)
  angles = 2 * math.pi * jax.random.randint(centre_key, (n,), 0, 8) / 8
  centres = 4.0 * jnp.stack([jnp.cos(angles), jnp.sin(angles)], -1)
  return (centres + 0.5 * jax.random.normal(noise_key, (n, 2))) / 1.414


def _checkerboard(key, n):
  k1, k2, k3 = jax.random.split(key, 3)
  x1 = jax.random.uniform(k1, (n,)) * 4 - 2
  x2 = jax.random.uniform(k2, (n,)) - jax.random.randint(k3, (n,), 0, 2) * 2.0
  x2 = x2 + jnp.floor(x1) % 2
  return 2.0 * jnp.stack([x1, x2], -1)


def _two_spirals(key, n):
  k1, k2, k3 = jax.random.split(key, 3)
  t = jnp.sqrt(jax.random.uniform(k1, (n,))) * 540 * (2 * math.pi) / 360
  sign = 1.0 - 2.0 * jax.random.randint(k2, (n,), 0, 2)
  x = sign[:, None] * jnp.stack([-jnp.cos(t) * t, jnp.sin(t) * t], -1)
  return (x + 0.5 * jax.random.normal(k3, (n, 2))) / 3.0


def _rings(key, n):
  k1, k2, k3 = jax.random.split(key, 3)
  radius = 1.0 + jax.random.randint(k1, (n,), 0, 4).astype(jnp.float32)
  angles = jax.random.uniform(k2, (n,)) * 2 * math.pi
  x = radius[:, None] * jnp.stack([jnp.cos(angles), jnp.sin(angles)], -1)
  return x + 0.08 * jax.random.normal(k3, (n, 2))


def _pinwheel(key, n, num_classes=5, radial_std=0.3, tangential_std=0.1, rate=0.25):
  k1, k2 = jax.random.split(key)
  labels = jax.random.randint(k1, (n,), 0, num_classes)
  features = jax.random.normal(k2, (n, 2)) * jnp.array([radial_std, tangential_std])
  features = features + jnp.array([1.0, 0.0])
  angles = 2 * math.pi * labels / num_classes + rate * jnp.exp(features[:, 0])
  cos, sin = jnp.cos(angles), jnp.sin(angles)
  rotations = jnp.stack([jnp.stack([cos, -sin], -1), jnp.stack([sin, cos], -1)], -2)
  return 2.0 * jnp.einsum('ni,nji->nj', features, rotations)


_SAMPLERS = {'8gaussians': _eight_gaussians, 'checkerboard': _checkerboard,
             'two_spirals': _two_spirals, 'rings': _rings, 'pinwheel': _pinwheel}


def sample(name: str, key: jax.Array, n: int) -> jax.Array:
  """``n`` points of the toy density ``name`` (one of :data:`DATASETS`), ``[n, 2]``."""
  if name not in _SAMPLERS:
    raise ValueError(f'data.dataset={name!r} is not one of {", ".join(DATASETS)}')
  return _SAMPLERS[name](key, n)
