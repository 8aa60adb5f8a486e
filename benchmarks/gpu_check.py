r"""The measurements of an accelerator check, one part per call.

  python -m benchmarks.gpu_check --part=PART --out=DIR [--smoke] \
      [--cifar_dir=DIR]

Parts:
- ``env``: the devices, the library versions and the device memory;
- ``steps``: the radix select of the mask updates against a sort; then for
  each workload of ``workloads.GPU_WORKLOADS`` (WRN-22-2 at batch 128;
  ResNet-50 at batch 256, 224px, bfloat16), the train step of every method
  against dense, one RigL topology update against a train step, and the
  memory of masks, method state and a step;
- ``end_to_end``: a short CIFAR-10 WRN-22-2 RigL job through
  ``train_and_evaluate`` (real data, logging, summaries, checkpoints)
  against its own compiled steps called back to back.

Each part writes DIR/PART.md and DIR/PART.json, and ``steps`` rewrites them
after each table, so a part stopped by its time budget keeps what it had
finished. ``--smoke`` shrinks every workload to seconds on a CPU.
``scripts/gpu_check.sh`` runs the parts under their budgets.
"""

import json
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from absl import app
from absl import flags
import jax

from benchmarks import end_to_end
from benchmarks import harness
from benchmarks import memory
from benchmarks import selection
from benchmarks import step_time
from benchmarks import topology_update
from benchmarks import workloads

_PART = flags.DEFINE_enum(
    'part', None, ['env', 'steps', 'end_to_end'], 'What to measure.'
)
_OUT = flags.DEFINE_string('out', None, 'Directory of the results.')
_SMOKE = flags.DEFINE_bool('smoke', False, 'Shrink everything to seconds.')
_CIFAR_DIR = flags.DEFINE_string(
    'cifar_dir', '../shared/data/cifar10', 'The CIFAR-10 JPEG zip.'
)
_REPEATS = flags.DEFINE_integer('repeats', 20, 'Timed calls per step kind.')
_E2E_STEPS = flags.DEFINE_integer(
    'e2e_steps', 3000, 'Steps of the end-to-end CIFAR-10 job.'
)
flags.mark_flags_as_required(['part', 'out'])

SMOKE_METHODS = ('dense', 'rigl')
SMOKE_SELECTION = {'a 3x3x16x16 kernel': 2304}
# Steps per timed sample, dispatched as training dispatches them.
BACK_TO_BACK = 10


class Part:
  """Markdown and JSON results of a part, rewritten as they grow."""

  def __init__(self, out: str, name: str):
    self.md_path = os.path.join(out, f'{name}.md')
    self.json_path = os.path.join(out, f'{name}.json')
    self.blocks: list[str] = []
    self.data: dict[str, Any] = {}

  def add(self, key: str, markdown: str, data: Any) -> None:
    print(markdown, flush=True)
    self.blocks.append(markdown)
    self.data[key] = data
    with open(self.md_path, 'w') as f:
      f.write('\n\n'.join(self.blocks) + '\n')
    with open(self.json_path, 'w') as f:
      json.dump(self.data, f, indent=1)


def environment() -> dict[str, Any]:
  devices = jax.devices()
  memory_stats = devices[0].memory_stats() or {}
  return {
      'devices': [str(d) for d in devices],
      'device_kind': devices[0].device_kind,
      'platform': devices[0].platform,
      'device_memory_gib': round(memory_stats.get('bytes_limit', 0) / 2**30, 1),
      'machine': harness.machine(),
      'python': platform.python_version(),
  }


def measure_env(part: Part) -> None:
  env = environment()
  lines = '\n'.join(f'- {k}: {v}' for k, v in env.items())
  part.add('env', f'### Environment\n{lines}', env)


def measure_steps(
    part: Part, names: Sequence[str], methods: Sequence[str], repeats: int
) -> None:
  """Step ratios, topology update and memory of each workload in ``names``.

  The compiled steps of a workload are built once and serve all three.
  """
  for name in names:
    start = time.perf_counter()
    benches = step_time.build_benches(name, methods)
    built = time.perf_counter() - start
    rows = step_time.measure(name, repeats, benches, BACK_TO_BACK)
    part.add(
        f'{name}/step_time',
        f'### {name}: train step against dense\n'
        f'Built and compiled in {built:.0f} s; ms/step of {BACK_TO_BACK} '
        'steps dispatched back to back, median of the samples.\n\n'
        + harness.markdown_table(step_time.HEADER, rows),
        rows,
    )
    row = topology_update.measure(name, repeats, benches['rigl'])
    part.add(
        f'{name}/topology_update',
        f'### {name}: topology update\n\n'
        + harness.markdown_table(topology_update.HEADER, [row]),
        row,
    )
    rows = memory.measure(name, benches)
    part.add(
        f'{name}/memory',
        f'### {name}: memory\n\n' + harness.markdown_table(memory.HEADER, rows),
        rows,
    )


def measure_end_to_end(
    part: Part, cifar_dir: str, num_steps: int, smoke: bool
) -> None:
  """A short CIFAR-10 RigL job against its bare compiled steps."""
  config = 'configs/cifar10_wrn22_2.py' + (':smoke' if smoke else '')
  overrides = {
      'dataset.local_dir': cifar_dir,
      'num_train_steps': num_steps,
      'mask_update.end_step': num_steps,
      'eval_every_steps': num_steps,
      'checkpoint_every_steps': num_steps,
      'log_every_steps': min(200, num_steps),
  }
  with tempfile.TemporaryDirectory() as workdir:
    start = time.perf_counter()
    results = end_to_end.run(config, 'rigl', overrides, workdir)
    wall = time.perf_counter() - start
  job = results['steps_per_second']
  bare = end_to_end.bare_steps_per_second(config, 'rigl', overrides)
  data = {
      'steps': num_steps,
      'end_to_end_steps_per_second': job,
      'bare_steps_per_second': bare,
      'ratio': job / bare,
      'wall_seconds': wall,
      'accuracy': results.get('eval', {}).get('accuracy'),
  }
  rows = [
      [
          f'{num_steps}',
          f'{job:.0f}',
          f'{bare:.0f}',
          f'{job / bare:.3f}',
          f'{wall:.0f}',
      ]
  ]
  part.add(
      'end_to_end',
      '### CIFAR-10 WRN-22-2 job against its bare steps\n'
      'RigL at 90% ERK, real data resident on the device; steps/s as '
      'results.json reports them (compilation and evaluation left out).\n\n'
      + harness.markdown_table(
          ('steps', 'job steps/s', 'bare steps/s', 'job / bare', 'wall s'),
          rows,
      ),
      data,
  )


def main(argv: Sequence[str]) -> None:
  del argv
  os.makedirs(_OUT.value, exist_ok=True)
  part = Part(_OUT.value, _PART.value)
  if _PART.value == 'env':
    measure_env(part)
  elif _PART.value == 'steps':
    part.add(
        'selection',
        '### Top-k selection\n'
        'The radix select behind every mask update against a stable argsort '
        '(`python -m benchmarks.selection`).\n\n'
        + selection.table(SMOKE_SELECTION if _SMOKE.value else selection.SIZES),
        None,
    )
    if _SMOKE.value:  # Compiling dominates: two methods show it all works.
      measure_steps(part, list(workloads.SMOKE_WORKLOADS), SMOKE_METHODS, 3)
    else:
      measure_steps(
          part,
          list(workloads.GPU_WORKLOADS),
          workloads.STEP_METHODS,
          _REPEATS.value,
      )
  else:
    measure_end_to_end(
        part,
        _CIFAR_DIR.value,
        20 if _SMOKE.value else _E2E_STEPS.value,
        _SMOKE.value,
    )


if __name__ == '__main__':
  app.run(main)
