"""Four fake CPU devices for every test, and a collective hang that fails in seconds.

Must run before JAX initialises its backend (DESIGN.md: fake-device collectives deadlock
on 2 cores when too many steps are in flight; the engine syncs, the timeout is a backstop).
"""

import os

os.environ['XLA_FLAGS'] = ' '.join([
    os.environ.get('XLA_FLAGS', ''),
    '--xla_force_host_platform_device_count=4',
    '--xla_cpu_collective_call_terminate_timeout_seconds=6',
]).strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')
