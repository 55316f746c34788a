"""Small configs for fast tests, and what several test files do alike."""

import gzip

import jax
import numpy as np
import pytest

from experiments.configs import density_chasm, gaussian, log_z_estimators, mutual_information, toy_densities

CONFIGS = {'density_chasm': density_chasm, 'gaussian': gaussian, 'toy_densities': toy_densities,
           'log_z_estimators': log_z_estimators, 'mutual_information': mutual_information}


def small_config(task='density_chasm', num_steps=100, **train):
  config = CONFIGS[task].get_config()
  if 'num_test' in config.data:
    config.data.num_test = 1000
  if 'likelihood' in config:
    config.likelihood.update(num_samples=2000, num_chains=50, num_warmup=200, thin=2)
  if 'train' in config:
    config.train.update({**dict(num_steps=num_steps, batch_size=64, steps_per_dispatch=10, sync_every=10,
                                log_every=50, eval_every=50, checkpoint_every=50), **train})
  return config


def leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves((state.params, state.opt_state, state.ema_params))]


def assert_refused(config, field: str, value, message: str, num_devices: int = 4) -> None:
  """Setting ``config.<field> = value`` makes the run's config check raise ``ConfigError``
  matching the regular expression ``message``."""
  from experiments.core.checks import ConfigError, set_field
  from experiments.run.training import check_config
  set_field(config, field, value)
  with pytest.raises(ConfigError, match=message):
    check_config(config, num_devices=num_devices)


def write_idx(path, array) -> None:
  """A gzipped IDX file of unsigned bytes, as Debian's Fashion-MNIST package ships them."""
  header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, '>i4').tobytes()
  with gzip.open(path, 'wb') as f:
    f.write(header + np.ascontiguousarray(array, np.uint8).tobytes())
