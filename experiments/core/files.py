"""Files that other readers may open at any moment: written whole or not at all."""

import json
import os
import tempfile


def write_text_atomically(path: str, text: str) -> None:
  """Writes ``text`` to ``path`` through a temporary file and a rename, so a reader (another process,
  or a rerun after an interruption) sees the old file, the new one, or none: never half."""
  descriptor, temporary = tempfile.mkstemp(dir=os.path.dirname(path) or '.', prefix='.tmp-')
  with os.fdopen(descriptor, 'w') as f:  # a file of its own: two writers never share one
    f.write(text)
  os.replace(temporary, path)


def write_json_atomically(path: str, data, **dump_kwargs) -> None:
  """``data`` as JSON, written by ``write_text_atomically``."""
  write_text_atomically(path, json.dumps(data, **dump_kwargs))
