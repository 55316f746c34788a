"""Files that other readers may open at any moment: written whole or not at all."""

import json
import os


def write_json_atomically(path: str, data, **dump_kwargs) -> None:
  """Writes ``data`` as JSON to ``path`` through a temporary file and a rename, so a reader (another
  process, or a rerun after an interruption) sees the old file, the new one, or none: never half."""
  with open(path + '.tmp', 'w') as f:
    json.dump(data, f, **dump_kwargs)
  os.replace(path + '.tmp', path)
