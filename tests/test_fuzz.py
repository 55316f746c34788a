"""Hostile input, property-based (hypothesis, derandomised so CI is reproducible): objectives
and normalisers stay finite at extreme logits and magnitudes; invalid configs are refused,
naming the field, before the work directory is touched; bad pixels are refused by name."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from experiments.core.checks import ConfigError, get_field, set_field
from experiments.run.workdir import open_workdir
from nnce_jax import normalizers
from nnce_jax.data.images import image_batches
from nnce_jax.objectives import OBJECTIVES, make_objective
from tests.helpers import small_config

FUZZ = settings(deadline=None, derandomize=True, database=None)
LOGITS = st.floats(-1e4, 1e4, width=32)


@functools.cache
def _loss_and_grads(name, dtype):
  # The magnitude is passed as the "step" of an identity schedule: traced, so one compile.
  objective = make_objective(name, magnitude=lambda m: m, num_candidates=3, l2_penalty=0.1)
  loss = lambda d, n, m: objective.loss(d.astype(dtype), n.astype(dtype), m)  # noqa: E731
  return jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))


@settings(FUZZ, max_examples=300)
@given(name=st.sampled_from(OBJECTIVES), dtype=st.sampled_from(['float32', 'bfloat16']),
       log10_magnitude=st.floats(0, 12), data=arrays(np.float32, (2, 6), elements=LOGITS),
       noise=arrays(np.float32, (2, 12), elements=LOGITS))
def test_objectives_finite_for_any_magnitude_and_logits(name, dtype, log10_magnitude, data, noise):
  (loss, diagnostics), grads = _loss_and_grads(name, dtype)(data, noise, np.float32(10.0 ** log10_magnitude))
  assert np.isfinite(float(loss)), (name, dtype)
  assert all(np.all(np.isfinite(np.asarray(g, np.float32))) for g in grads)
  assert all(np.isfinite(float(v)) for v in diagnostics.values())


_estimate_all = jax.jit(normalizers.estimate_all)


@settings(FUZZ, max_examples=40)
@given(target=arrays(np.float32, 32, elements=LOGITS), proposal=arrays(np.float32, 32, elements=LOGITS))
def test_normalizers_finite_for_extreme_weights(target, proposal):
  for name, estimate in _estimate_all(jnp.asarray(target), jnp.asarray(proposal)).items():
    assert np.isfinite(float(estimate.log_z)), name
    assert not np.isnan(float(estimate.std_error)), name  # +inf is an honest "unknown"


# Per field, values of the field's own type that check_config must refuse.
INVALID = {
    'task': st.text(max_size=8).filter(lambda t: t not in ('density_chasm', 'gaussian', 'toy_densities')),
    'seed': st.integers(max_value=-1),
    'objective.name': st.text(max_size=12).filter(lambda t: t not in OBJECTIVES),
    'objective.magnitude': st.floats(max_value=0.0) | st.sampled_from([float('nan'), float('inf')]),
    'objective.final_magnitude': st.floats(max_value=0.0) | st.just(float('nan')),
    'objective.noise_ratio': st.integers(max_value=0),
    'objective.num_stages': st.integers(max_value=0),
    'objective.l2_penalty': st.floats(max_value=-1e-9) | st.just(float('nan')),
    'optimizer.learning_rate': st.floats(max_value=0.0) | st.sampled_from([float('nan'), float('-inf')]),
    'train.batch_size': st.integers(max_value=0) | st.integers(1, 10**6).filter(lambda b: b % 4),
    'train.num_steps': st.integers(max_value=0) | st.integers(1, 10**6).filter(lambda n: n % 10),
    'train.steps_per_dispatch': st.integers(max_value=0),
    'train.sync_every': st.integers(max_value=0),
    'train.ema_decay': st.floats(1.0, 1e9) | st.floats(max_value=-1e-9),
    'train.on_nonfinite': st.text(max_size=8).filter(lambda t: t not in ('stop', 'skip')),
    'parallel.backend': st.text(max_size=8).filter(lambda t: t not in ('shard_map', 'pmap')),
    'parallel.num_devices': st.integers(max_value=-1) | st.integers(5, 10**4),
    'data.sigma': st.floats(max_value=0.0) | st.just(float('inf')),
    'data.num_test': st.integers(max_value=0),
}


@settings(FUZZ, max_examples=400)
@given(field=st.sampled_from(sorted(INVALID)), data=st.data())
def test_invalid_configs_are_refused_before_the_workdir_is_touched(tmp_path_factory, field, data):
  config = small_config()
  value = data.draw(INVALID[field], label=field)
  set_field(config, field, type(get_field(config, field))(value))
  workdir = tmp_path_factory.mktemp('fuzz') / 'run'
  with pytest.raises(ConfigError, match=f'config.{field}'):
    open_workdir(config, str(workdir), num_devices=4)
  assert not workdir.exists()


BAD_PIXELS = st.sampled_from([float('nan'), float('inf'), -float('inf')]) | st.floats(
    allow_nan=False, allow_infinity=False, width=32).filter(lambda v: v < 0 or v > 255)


@settings(FUZZ, max_examples=100)
@given(image=arrays(np.float32, (4, 4, 1), elements=st.floats(0, 255, width=32)), bad=BAD_PIXELS,
       where=st.tuples(st.integers(0, 3), st.integers(0, 3)), victim=st.integers(0, 7))
def test_images_with_nan_or_out_of_range_pixels_are_refused(image, bad, where, victim):
  source = [{'image': image, 'label': 0} for _ in range(8)]
  assert np.all(np.isfinite(image_batches(source, batch_size=8, seed=0, shuffle=False)[0]['image']))
  broken = image.copy()
  broken[where] = bad
  source[victim] = {'image': broken, 'label': 0}
  with pytest.raises(ValueError, match=f'example {victim}: '):
    image_batches(source, batch_size=8, seed=0, shuffle=False)[0]
