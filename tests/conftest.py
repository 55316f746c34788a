"""Four fake CPU devices for every test, a collective hang that fails in seconds, and one
compilation cache.

Must run before JAX initialises its backend (fake-device collectives deadlock
on 2 cores when too many steps are in flight; the engine syncs, the timeout is a backstop).
"""

import os

import pytest

os.environ['XLA_FLAGS'] = ' '.join([
    os.environ.get('XLA_FLAGS', ''),
    '--xla_force_host_platform_device_count=4',
    '--xla_cpu_collective_call_terminate_timeout_seconds=6',
]).strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
# The suite compiles the same small programs in many processes (the workers, the runs the tests
# start, CI's three tiers): one persistent compilation cache for them all, beside pytest's own.
os.environ.setdefault('NNCE_COMPILATION_CACHE', os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), '.pytest_cache', 'nnce_xla'))

from experiments.core import compilation_cache  # noqa: E402 (reads the variable above)

compilation_cache.enable(compilation_cache.DEFAULT_DIR)


@pytest.fixture(scope='session')
def data_dir(tmp_path_factory):
  """mnist5k and sklearn_digits built offline once for the session (about a second each)."""
  from nnce_jax.data import builders  # after the XLA flags above
  path = str(tmp_path_factory.mktemp('tfds'))
  builders.prepare('mnist5k', path)
  builders.prepare('sklearn_digits', path)
  return path
