"""What the report's command lines share: ``--quick``, ``--workdir``, ``--output``, ``--jobs``,
``--teachers``."""

import os

from absl import flags

QUICK = flags.DEFINE_bool('quick', False, 'Tiny grids, seeds and steps: checks the pipeline end to end; '
                          'its numbers mean nothing.')
WORKDIR = flags.DEFINE_string('workdir', None, 'Where the sweeps run (default runs/<name>, '
                              'runs/<name>_quick with --quick).')
OUTPUT = flags.DEFINE_string('output', None, 'The markdown it writes (default docs/<name>.md, '
                             '<workdir>/<name>.md with --quick).')
JOBS = flags.DEFINE_integer('jobs', 2, 'Runs in parallel.')
TEACHERS = flags.DEFINE_string('teachers', None, 'Where the diffusion teachers are trained, one per dataset, '
                               'shared by the sampler reports (default runs/teachers, runs/teachers_quick '
                               'with --quick).')


def paths(name: str, output: str) -> tuple[str, str]:
  """``(workdir, output)`` from the flags; ``output`` is the full run's file (``docs/...``)."""
  quick = QUICK.value
  workdir = WORKDIR.value or (f'runs/{name}_quick' if quick else f'runs/{name}')
  return workdir, OUTPUT.value or (os.path.join(workdir, os.path.basename(output)) if quick else output)


def teachers_dir() -> str:
  """The teachers' workdir: one teacher per dataset, distilled and fine-tuned by every report."""
  return TEACHERS.value or ('runs/teachers_quick' if QUICK.value else 'runs/teachers')
