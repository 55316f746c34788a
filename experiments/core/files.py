"""Files that other readers may open at any moment: written whole or not at all."""

import json
import os


def write_text_atomically(path: str, text: str) -> None:
  """Writes ``text`` to ``path`` through a temporary file and a rename, so a reader (another process,
  or a rerun after an interruption) sees the old file, the new one, or none: never half."""
  with open(path + '.tmp', 'w') as f:
    f.write(text)
  os.replace(path + '.tmp', path)


def write_json_atomically(path: str, data, **dump_kwargs) -> None:
  """``data`` as JSON, written by ``write_text_atomically``."""
  write_text_atomically(path, json.dumps(data, **dump_kwargs))
