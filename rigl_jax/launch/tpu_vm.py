"""The command that starts one run on every host of a Cloud TPU VM slice.

``gcloud compute tpus tpu-vm ssh --worker=all`` runs the same command on
each host; ``--distributed`` makes ``jax.distributed.initialize()`` find
the slice's hosts itself.
"""

import re
import shlex
from collections.abc import Sequence

# '$NAME' or '${NAME}': left for the caller's shell to expand.
_SHELL_VARIABLE = re.compile(r'\$(\w+|\{\w+\})')


def _shell_word(value: str) -> str:
  """``value`` quoted for a shell; a lone variable stays expandable."""
  if _SHELL_VARIABLE.fullmatch(value):
    return f'"{value}"'
  return shlex.quote(value)


def ssh_command(
    args: Sequence[str],
    tpu_name: str = '$TPU_NAME',
    zone: str = '$ZONE',
    repo_dir: str = 'rigl_jax',
) -> str:
  """One shell line: ``args`` with --distributed from ``repo_dir`` on each host."""
  remote = f'cd {shlex.quote(repo_dir)} && ' + shlex.join(
      [*args, '--distributed']
  )
  return (
      f'gcloud compute tpus tpu-vm ssh {_shell_word(tpu_name)} '
      f'--zone={_shell_word(zone)} --worker=all '
      f'--command={shlex.quote(remote)}'
  )
