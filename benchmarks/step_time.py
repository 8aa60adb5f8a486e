r"""Steady-state train step of each method against dense, side by side.

For every workload, the jitted train step of each method runs on the same
model, batch and optimizer, compiled and donated as in training,
interleaved round-robin after warm-up; the table gives the median ms/step
and the ratio to dense. These are the steps between topology updates (99
of every 100 with ΔT = 100).

  python benchmarks/step_time.py [--repeats=20] [--workloads=WRN-22-2]
"""

from collections.abc import Sequence
from typing import Optional

from absl import app
from absl import flags

from benchmarks import harness
from benchmarks import workloads


def build_benches(
    name: str, methods: Sequence[str] = workloads.STEP_METHODS
) -> dict[str, harness.Bench]:
  """The compiled steps of ``methods`` (dense first) on ``name``."""
  config_path, overrides = workloads.lookup(name)
  return {m: harness.build(config_path, m, overrides) for m in methods}


def measure(
    name: str,
    repeats: int,
    benches: Optional[dict[str, harness.Bench]] = None,
    back_to_back: int = 1,
) -> list[list[str]]:
  """Rows: method, sparsity, ms/step, ratio to dense.

  ``benches`` (of ``build_benches``) saves compiling the steps again;
  ``back_to_back`` steps are dispatched before each wait.
  """
  benches = benches or build_benches(name)
  calls = {m: b.chain(b.plain_step) for m, b in benches.items()}
  seconds = harness.time_interleaved(
      calls, warmup=3, repeats=repeats, back_to_back=back_to_back
  )
  rows = []
  for method, bench in benches.items():
    resolved = bench.setup.resolved
    sparsity = (
        '-'
        if method == 'dense'
        else f"{resolved['sparsity']:g} {resolved['distribution']}"
    )
    rows.append(
        [
            name,
            method,
            sparsity,
            f'{seconds[method] * 1e3:.2f}',
            f'{seconds[method] / seconds["dense"]:.3f}',
        ]
    )
  return rows


HEADER = ('model', 'method', 'sparsity', 'ms/step', 'ratio to dense')


def table(names: Sequence[str], repeats: int) -> str:
  """The Markdown table of ``names``."""
  return harness.markdown_table(
      HEADER, [row for name in names for row in measure(name, repeats)]
  )


def main(argv: Sequence[str]) -> None:
  del argv
  print(table(_WORKLOADS.value, _REPEATS.value))


if __name__ == '__main__':
  _REPEATS = flags.DEFINE_integer('repeats', 20, 'Timed calls per method.')
  _WORKLOADS = flags.DEFINE_list(
      'workloads', list(workloads.WORKLOADS), 'Workloads to run.'
  )
  app.run(main)
