"""Files that other readers may open at any moment: written whole or not at all."""

import json
import os
import tempfile


def write_atomically(path: str, data: str | bytes) -> None:
  """Writes ``data`` (text or bytes) to ``path`` through a temporary file and a rename, so a reader
  (another process, or a rerun after an interruption) sees the old file, the new one, or none:
  never half."""
  descriptor, temporary = tempfile.mkstemp(dir=os.path.dirname(path) or '.', prefix='.tmp-')
  with os.fdopen(descriptor, 'wb' if isinstance(data, bytes) else 'w') as f:  # a file of its own
    f.write(data)
  os.replace(temporary, path)


def write_json_atomically(path: str, data, **dump_kwargs) -> None:
  """``data`` as JSON, written by ``write_atomically``."""
  write_atomically(path, json.dumps(data, **dump_kwargs))
