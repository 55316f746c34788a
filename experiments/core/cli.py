"""Command-line parsing shared by the entry points: an override the config cannot take, refused in
one line."""

import re
import sys

from absl import flags


def refuse_override(error: Exception, argv: list[str]):
  """Exits naming the ``--config.FIELD=`` override whose field (or section) the config lacks;
  ``error`` is what ml_collections raised applying it (a task's config holds only the sections
  the task reads, so a field it ignores is missing, not silently recorded)."""
  field = re.search(r'\w+', str(error)).group()
  flag = next((a.split('=')[0] for a in argv if a.startswith('--config.') and f'.{field}' in a), field)
  hint = re.search(r'Did you mean "\w+"', str(error))
  sys.exit(f'Invalid config override {flag}: the config has no field {field!r}'
           + (f'. {hint.group()}?' if hint else ' (the task does not read it)'))


def parse_flags(argv: list[str]) -> list[str]:
  """absl's parse for ``app.run(main, flags_parser=parse_flags)``, with :func:`refuse_override`."""
  try:
    return flags.FLAGS(argv)
  except (AttributeError, KeyError) as error:  # ml_collections applies --config.FIELD=... here
    refuse_override(error, argv)
  except flags.Error as error:
    sys.exit(f'FATAL Flags parsing error: {error}')
