"""Magnitude schedules: endpoints, shape, jit, and an N^2CE run that decays M."""

import jax
import numpy as np
import pytest

from experiments.run.training import train_and_evaluate
from nnce_jax import schedules
from tests.helpers import small_config


@pytest.mark.parametrize('kind, middle', [
    ('constant', 1000.0), ('linear', 500.5), ('cosine', 500.5), ('exponential', np.sqrt(1000.0))])
def test_schedule_endpoints_and_midpoint(kind, middle):
  magnitude = jax.jit(schedules.magnitude_schedule(kind, 1000.0, 1.0, 100))
  at = [float(magnitude(t)) for t in (0, 50, 100, 200)]
  assert at[0] == pytest.approx(1000.0, rel=1e-5)
  assert at[1] == pytest.approx(middle, rel=1e-4)
  assert at[2] == at[3] == pytest.approx(1000.0 if kind == 'constant' else 1.0, rel=1e-5)
  steps = np.arange(0, 101)
  values = np.asarray(jax.vmap(magnitude)(steps))
  assert np.all(np.diff(values) <= 1e-3)  # never increases


def test_unknown_schedule_is_rejected():
  with pytest.raises(ValueError, match='magnitude_schedule=.*constant, linear, cosine, exponential'):
    schedules.magnitude_schedule('step', 10.0, 1.0, 10)


def test_a_decaying_schedule_trains_and_differs_from_constant(tmp_path):
  finals = {}
  for kind in ('constant', 'exponential'):
    config = small_config(num_steps=100)
    config.objective.update(magnitude=1000.0, magnitude_schedule=kind, final_magnitude=1.0)
    config.likelihood.num_samples = 0
    finals[kind] = train_and_evaluate(config, str(tmp_path / kind))['final']['kl']
  assert all(np.isfinite(v) for v in finals.values())
  assert finals['constant'] != finals['exponential']
