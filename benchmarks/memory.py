r"""Memory of masks and method state, and the peak memory of a train step.

Bytes come from the state's arrays. The peak is XLA's own accounting of the
compiled train steps (arguments + outputs + temporaries - aliased), jitted
with the state donated as rigl_jax.training.loop does: the memory a device must
hold for a step, the larger of a plain and an update step.

  python benchmarks/memory.py
"""

from collections.abc import Sequence
from typing import Any, Optional

from absl import app
from absl import flags
import jax

from benchmarks import harness
from benchmarks import workloads

METHODS = ('dense', 'static', 'rigl', 'snfs', 'pruning')


def nbytes(tree: Any) -> int:
  return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))


def peak_bytes(bench: harness.Bench) -> int:
  """The larger peak of the plain and the update step."""
  peaks = []
  for step in (bench.plain_step, bench.update_step):
    if step is not None:
      analysis = step.memory_analysis()
      peaks.append(
          analysis.argument_size_in_bytes
          + analysis.output_size_in_bytes
          + analysis.temp_size_in_bytes
          - analysis.alias_size_in_bytes
      )
  return max(peaks)


def measure(
    name: str, benches: Optional[dict[str, harness.Bench]] = None
) -> list[list[str]]:
  """Rows of ``METHODS`` on ``name``, or of those ``benches`` compiled."""
  config_path, overrides = workloads.lookup(name)
  rows, dense_peak = [], None
  for method in [m for m in METHODS if benches is None or m in benches]:
    bench = (benches or {}).get(method) or harness.build(
        config_path, method, overrides
    )
    state = bench.state
    params = nbytes(state.params)
    masked = sum(m.size for m in jax.tree.leaves(state.masks))
    peak = peak_bytes(bench)
    dense_peak = dense_peak or peak
    rows.append(
        [
            name,
            method,
            f'{params / 2**20:.2f}',
            f'{nbytes(state.masks) / masked:.2f}' if masked else '-',
            f'{nbytes(state.masks) / params:.3f}',
            f'{nbytes(state.method_state) / params:.3f}',
            f'{nbytes(state.topology_stats) / params:.3f}',
            f'{peak / 2**20:.1f}',
            f'{peak / dense_peak:.3f}',
        ]
    )
  return rows


HEADER = (
    'model',
    'method',
    'params MiB',
    'mask bytes / masked weight',
    'masks / params',
    'method state / params',
    'topology stats / params',
    'step peak MiB',
    'peak / dense peak',
)


def table(names: Sequence[str]) -> str:
  """The Markdown table of ``names``."""
  return harness.markdown_table(
      HEADER, [row for name in names for row in measure(name)]
  )


def main(argv: Sequence[str]) -> None:
  del argv
  print(table(_WORKLOADS.value))


if __name__ == '__main__':
  _WORKLOADS = flags.DEFINE_list(
      'workloads', list(workloads.WORKLOADS), 'Workloads to run.'
  )
  app.run(main)
