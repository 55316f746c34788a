"""JAX's persistent compilation cache for experiment processes.

A sweep's runs compile the same programs again and again (other seeds, other constants of the
same shapes), and on a CPU compiling is most of a small run: a 6,000-step 5-D Gaussian run spends
about 6 s in 86 compilations and 2 s training. With the cache, a run finds what an earlier run
(or a sibling in the same sweep) compiled. Entries are looked up by the program, the compile
options and the devices, so a hit is the executable a fresh compile would build.

The cache is not bounded: JAX bounds it by scanning every entry at every write, under a file
lock, which made the test suite's cold run 1.6 times slower (docs/performance.md). The test
suite's cache is about 20 MB; delete the directory to reclaim it. An entry read while another
process is still writing it fails to load, and JAX then compiles it again with a warning.
"""

import os

# $NNCE_COMPILATION_CACHE when set (empty: no cache), else the user's cache directory.
DEFAULT_DIR = os.environ.get('NNCE_COMPILATION_CACHE', os.path.join(
    os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'), 'nnce_jax', 'xla'))


def enable(path: str) -> None:
  """Caches every compilation under ``path`` (none if ``path`` is empty): also the small eager ops
  of a run's setup, which JAX's defaults (at least 1 s of compile time) would skip."""
  if not path:
    return
  import jax

  jax.config.update('jax_compilation_cache_dir', path)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', -1)
