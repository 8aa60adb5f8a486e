"""What produced a result: package versions, devices, the code's commit, when."""

import datetime
import importlib.metadata
import os
import platform
import subprocess
from typing import Any, Optional

import jax

_PACKAGES = ('rigl_jax', 'jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint')


def _version(package: str) -> Optional[str]:
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    return None


def _git(*args: str) -> str:
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  return subprocess.run(
      ['git', *args],
      cwd=root,
      capture_output=True,
      text=True,
      timeout=10,
      check=True,
  ).stdout.strip()


# Names the commit where the code runs outside a git checkout (a wheel, or
# a copy of a checkout sent to another machine without its .git).
COMMIT_VARIABLE = 'RIGL_JAX_COMMIT'


def git_commit() -> Optional[str]:
  """The commit of the rigl_jax checkout in use ('+dirty' if edited).

  Outside a git checkout: $RIGL_JAX_COMMIT, else None.
  """
  try:
    commit = _git('rev-parse', 'HEAD')
    dirty = _git('status', '--porcelain', '--untracked-files=no')
  except (OSError, subprocess.SubprocessError):
    # Not a git checkout, or no git.
    return os.environ.get(COMMIT_VARIABLE) or None
  return commit + ('+dirty' if dirty else '')


def host_cpu() -> Optional[str]:
  """The host's CPU model, e.g. 'Intel(R) Xeon(R) Processor'.

  XLA compiles for the host CPU, so one seed's CPU run can end at other
  numbers on another CPU model.
  """
  try:
    with open('/proc/cpuinfo', encoding='utf-8') as cpuinfo:
      for line in cpuinfo:
        key, _, value = line.partition(':')
        if key.strip() == 'model name':
          return value.strip()
  except OSError:
    pass  # Not Linux.
  return platform.processor() or None


def describe() -> dict[str, Any]:
  """JSON-able: versions, Python, the devices, the git commit, the UTC date."""
  devices = jax.devices()
  return {
      'versions': {p: _version(p) for p in _PACKAGES},
      'python': platform.python_version(),
      'platform': devices[0].platform,
      'device_kind': devices[0].device_kind,
      'host_cpu': host_cpu(),
      'git_commit': git_commit(),
      'date': datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec='seconds'
      ),
  }
