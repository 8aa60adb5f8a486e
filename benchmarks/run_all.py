r"""Runs every benchmark in one process and writes benchmarks/RESULTS.md.

  python -m benchmarks.run_all [--output=benchmarks/RESULTS.md]

The file records the machine, the library versions and the date with the
tables. Run it on an otherwise idle machine: every ratio is measured side by
side in this one process, but absolute times depend on the load.
"""

import datetime
import os
import platform
from collections.abc import Sequence

from absl import app
from absl import flags
import flax
import jax
import jaxlib
import optax

from benchmarks import memory
from benchmarks import selection
from benchmarks import step_time
from benchmarks import topology_update
from benchmarks import workloads

_OUTPUT = flags.DEFINE_string(
    'output', os.path.join(os.path.dirname(__file__), 'RESULTS.md'),
    'Markdown file to write.')
_STEP_REPEATS = flags.DEFINE_integer('step_repeats', 20,
                                     'Timed calls per method in step_time.')
_UPDATE_REPEATS = flags.DEFINE_integer(
    'update_repeats', 10, 'Timed calls of each kind in topology_update.')
_SECTION = flags.DEFINE_string(
    'section', '', 'Title of the machine section (default: from the device).')


def cpu_name() -> str:
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or 'unknown CPU'


def machine() -> str:
  device = jax.devices()[0]
  accelerator = ('' if device.platform == 'cpu' else
                 f', {len(jax.devices())} x {device.device_kind}')
  return (f'{cpu_name()}, {os.cpu_count()} cores{accelerator}; '
          f'{platform.system()} {platform.release()}; Python '
          f'{platform.python_version()}; jax {jax.__version__}, jaxlib '
          f'{jaxlib.__version__}, flax {flax.__version__}, optax '
          f'{optax.__version__}')


def report() -> str:
  """Runs every benchmark; prints each table as it is done."""
  device = jax.devices()[0]
  title = _SECTION.value or (
      f'CPU: {cpu_name()}, {os.cpu_count()} cores' if device.platform == 'cpu'
      else f'{device.platform.upper()}: {device.device_kind}')
  date = datetime.date.today().isoformat()
  parts = [f'## {title}', '', f'Measured {date} on {machine()}.', '']
  sections = [
      ('Train step against dense',
       'Median ms per jitted train step between topology updates, methods '
       'compiled and donated as in training, interleaved in one process '
       '(`python -m benchmarks.step_time`).',
       lambda: step_time.table(list(workloads.WORKLOADS),
                               _STEP_REPEATS.value)),
      ('Topology update',
       'One RigL update (drop and grow in every layer, optimizer-state '
       'reset) against a train step; the compiled-executable count shows '
       'the update runs inside the one compiled step (`python -m '
       'benchmarks.topology_update`).',
       lambda: topology_update.table(['WRN-22-2', 'ResNet-50'],
                                     _UPDATE_REPEATS.value)),
      ('Top-k selection',
       '`topology.top_k_mask` (radix select) against a stable argsort, on '
       'the largest layer of each model (`python -m benchmarks.selection`).',
       selection.table),
      ('Memory',
       'Bytes of masks, method state and topology statistics relative to '
       "the params, and the peak memory of a train step in XLA's "
       'accounting (`python -m benchmarks.memory`).',
       lambda: memory.table(list(workloads.WORKLOADS))),
  ]
  for title, description, run in sections:
    table = run()
    print(f'### {title}', table, sep='\n', flush=True)
    parts += [f'### {title}', description, '', table, '']
  return '\n'.join(parts)


def main(argv: Sequence[str]) -> None:
  del argv
  section = report()
  with open(_OUTPUT.value, 'w') as f:
    f.write('# Benchmark results\n\n'
            'Written by `python -m benchmarks.run_all`. Workloads: '
            'LeNet-300-100 at batch 100, WRN-22-2 at batch 128 (32x32), '
            'ResNet-50 at batch 16 (112x112), each config\'s default '
            'sparsity and distribution, ΔT = 100.\n\n' + section)


if __name__ == '__main__':
  app.run(main)
