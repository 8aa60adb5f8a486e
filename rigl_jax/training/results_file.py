"""A run's results.json: written last, read by reruns, sweeps and reports.

A results.json that is cut short, is not JSON, or lacks a key its reader
needs is an error naming the file, not a traceback that names none.
"""

import json
from collections.abc import Sequence
from typing import Any

from rigl_jax import errors

NAME = 'results.json'


def _has(content: dict[str, Any], dotted_key: str) -> bool:
  node: Any = content
  for part in dotted_key.split('.'):
    if not isinstance(node, dict) or part not in node:
      return False
    node = node[part]
  return True


def read(path: str, required: Sequence[str] = ()) -> dict[str, Any]:
  """The content of the results.json at ``path``.

  Args:
    path: the file.
    required: the keys the caller reads ('sparsity.overall' for nested
      ones); a file without one is not a finished run's.

  Raises:
    errors.ResultsFileError: naming ``path`` and what is wrong with it.
  """
  try:
    with open(path, encoding='utf-8') as f:
      content = json.load(f)
  except OSError as e:
    raise errors.ResultsFileError(
        f'{path}: cannot be read: {e.strerror or e}'
    ) from None
  except ValueError as e:  # Not JSON, or not UTF-8.
    raise errors.ResultsFileError(
        f'{path}: not valid JSON (cut short or damaged): {e}'
    ) from None
  if not isinstance(content, dict):
    raise errors.ResultsFileError(
        f'{path}: holds a JSON {type(content).__name__}, not an object'
    )
  missing = [key for key in required if not _has(content, key)]
  if missing:
    raise errors.ResultsFileError(
        f'{path}: has no {", ".join(missing)} (not the results of a '
        'finished run)'
    )
  return content
