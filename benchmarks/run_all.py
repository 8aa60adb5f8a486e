r"""Runs the benchmarks in one process and writes a section of RESULTS.md.

  python -m benchmarks.run_all [--output=benchmarks/RESULTS.md] \
      [--sections=step_time,topology_update,selection,memory,input,end_to_end,inference]

The section records the machine, the library versions and the date with the
tables; a section of the same title in the file is replaced, others are
kept (one per machine). Run it on an otherwise idle machine: every ratio is
measured side by side in this one process, but absolute times depend on
the load.
"""

import datetime
import os
from collections.abc import Sequence

from absl import app
from absl import flags
import jax

from benchmarks import end_to_end
from benchmarks import harness
from benchmarks import inference
from benchmarks import input_pipeline
from benchmarks import memory
from benchmarks import selection
from benchmarks import step_time
from benchmarks import topology_update
from benchmarks import workloads

_OUTPUT = flags.DEFINE_string(
    'output',
    os.path.join(os.path.dirname(__file__), 'RESULTS.md'),
    'Markdown file to write.',
)
_STEP_REPEATS = flags.DEFINE_integer(
    'step_repeats', 20, 'Timed calls per method in step_time.'
)
_UPDATE_REPEATS = flags.DEFINE_integer(
    'update_repeats', 10, 'Timed calls of each kind in topology_update.'
)
_SECTION = flags.DEFINE_string(
    'section', '', 'Title of the machine section (default: from the device).'
)
_SECTIONS = flags.DEFINE_list(
    'sections',
    [
        'step_time',
        'topology_update',
        'selection',
        'memory',
        'input',
        'end_to_end',
    ],
    'Which benchmarks to run.',
)
_MNIST_DIR = flags.DEFINE_string(
    'mnist_dir', '../shared/data/mnist', 'MNIST IDX files (input, end_to_end).'
)
_CIFAR_DIR = flags.DEFINE_string(
    'cifar_dir', '../shared/data/cifar10', 'The CIFAR-10 JPEG zip (input).'
)
_SHAKESPEARE_DIR = flags.DEFINE_string(
    'shakespeare_dir',
    '../shared/data/tinyshakespeare',
    'Tiny Shakespeare (input).',
)
_IMAGENET_IMAGE_SIZE = flags.DEFINE_integer(
    'imagenet_image_size', 224, 'ImageNet-style crop size (input).'
)
_IMAGENET_BATCH = flags.DEFINE_integer(
    'imagenet_batch', 16, 'ImageNet-style batch (input).'
)
_E2E_ROUNDS = flags.DEFINE_integer('e2e_rounds', 8, 'Rounds of end_to_end.')
_E2E_MULTIPLIER = flags.DEFINE_float(
    'e2e_multiplier', 0.25, 'Training multiplier of the end_to_end runs.'
)


def report() -> tuple[str, list[str]]:
  """Runs the chosen benchmarks: the machine title and its subsections."""
  device = jax.devices()[0]
  title = _SECTION.value or (
      f'CPU: {harness.cpu_name()}, {os.cpu_count()} cores'
      if device.platform == 'cpu'
      else f'{device.platform.upper()}: {device.device_kind}'
  )
  measured = (
      f'Measured {datetime.date.today().isoformat()} on '
      f'{harness.machine()}.'
  )
  sections = {
      'step_time': (
          'Train step against dense',
          'Median ms per jitted train step between topology updates, '
          'methods compiled and donated as in training, interleaved in one '
          'process (`python -m benchmarks.step_time`).',
          lambda: step_time.table(
              list(workloads.WORKLOADS), _STEP_REPEATS.value
          ),
      ),
      'topology_update': (
          'Topology update',
          'One RigL update (drop and grow in every layer, optimizer-state '
          'reset) against a train step (`python -m '
          'benchmarks.topology_update`).',
          lambda: topology_update.table(
              ['WRN-22-2', 'ResNet-50'], _UPDATE_REPEATS.value
          ),
      ),
      'selection': (
          'Top-k selection',
          '`topology.top_k_mask` (radix select) against a stable argsort, '
          'on the largest layer of each model (`python -m '
          'benchmarks.selection`).',
          selection.table,
      ),
      'memory': (
          'Memory',
          'Bytes of masks, method state and topology statistics relative '
          "to the params, and the peak memory of a train step in XLA's "
          'accounting (`python -m benchmarks.memory`).',
          lambda: memory.table(list(workloads.WORKLOADS)),
      ),
      'input': (
          'Input pipelines',
          'Examples/s of each input path against the examples/s the '
          "config's compiled RigL step consumes (`python -m "
          'benchmarks.input_pipeline`); ImageNet-style input decodes '
          'synthetic 500x375 JPEGs, its step is ResNet-50 at '
          f'{_IMAGENET_IMAGE_SIZE.value}px, batch {_IMAGENET_BATCH.value}.',
          lambda: input_pipeline.table(
              input_pipeline.measure_all(
                  _MNIST_DIR.value,
                  _CIFAR_DIR.value,
                  _SHAKESPEARE_DIR.value,
                  _IMAGENET_IMAGE_SIZE.value,
                  _IMAGENET_BATCH.value,
              )
          ),
      ),
      'inference': (
          'Inference forms',
          'Latency (batch 1) and throughput (batch 256) of each export form '
          '(`rigl_jax.export.load`) against the masked dense model, '
          'interleaved in one process, random masks (`python -m '
          'benchmarks.inference`).',
          inference.table,
      ),
      'end_to_end': (
          'End to end',
          'The MNIST main job (and its dense counterpart) through '
          '`train_and_evaluate` against its own compiled steps called back '
          'to back, training multiplier '
          f'{_E2E_MULTIPLIER.value:g}; ratios per round, medians over '
          f'{_E2E_ROUNDS.value} rounds (`python -m benchmarks.end_to_end`).',
          lambda: end_to_end.table(
              end_to_end.measure(
                  _MNIST_DIR.value, _E2E_MULTIPLIER.value, _E2E_ROUNDS.value
              )
          ),
      ),
  }
  unknown = set(_SECTIONS.value) - set(sections)
  if unknown:
    raise app.UsageError(
        f'--sections: unknown {sorted(unknown)}; choose '
        f'from {sorted(sections)}'
    )
  sections = [sections[name] for name in _SECTIONS.value]
  subsections = []
  for name, description, run in sections:
    table = run()
    print(f'### {name}', table, sep='\n', flush=True)
    subsections.append(f'### {name}\n{description} {measured}\n\n{table}\n')
  return f'## {title}', subsections


HEADER = (
    '# Benchmark results\n\n'
    'Written by `python -m benchmarks.run_all`, a section per machine. '
    'Workloads: LeNet-300-100 at batch 100, WRN-22-2 at batch 128 '
    "(32x32), ResNet-50 at batch 16 (112x112), each config's default "
    'sparsity and distribution, ΔT = 100.\n\n'
)


def _split(text: str, marker: str) -> tuple[str, list[str]]:
  """The text before the first ``marker`` heading, and each such section."""
  parts = ('\n' + text).split('\n' + marker)
  return parts[0].lstrip('\n'), [marker + p for p in parts[1:]]


def _title(section: str) -> str:
  return section.split('\n', 1)[0]


def merge(text: str, title: str, subsections: list[str]) -> str:
  """``text`` with ``subsections`` put under the machine section ``title``.

  A subsection of the same title there is replaced; the others, and the
  other machines' sections, are kept.
  """
  head, machines = _split(text, '## ')
  current = next((m for m in machines if _title(m) == title), title + '\n')
  intro, old = _split(current, '### ')
  new_titles = {_title(s) for s in subsections}
  merged = '\n'.join(
      [intro.rstrip('\n') + '\n']
      + [s.rstrip('\n') + '\n' for s in old if _title(s) not in new_titles]
      + subsections
  )
  machines = [merged if _title(m) == title else m for m in machines]
  if title not in {_title(m) for m in machines}:
    machines.append(merged)
  return '\n'.join(
      [head.rstrip('\n') + '\n'] + [m.rstrip('\n') + '\n' for m in machines]
  )


def main(argv: Sequence[str]) -> None:
  del argv
  title, subsections = report()
  text = HEADER
  if os.path.exists(_OUTPUT.value):
    with open(_OUTPUT.value) as f:
      text = f.read()
  with open(_OUTPUT.value, 'w') as f:
    f.write(merge(text, title, subsections))


if __name__ == '__main__':
  app.run(main)
