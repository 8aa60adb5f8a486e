r"""Cost of a RigL topology update relative to a train step.

For each workload: the median time of one train step between updates, of
one update step (RigL's: dense gradients, then drop and grow in every layer
and the optimizer-state reset, no optimizer step), and of the topology
update alone (drop, grow and reset, jitted by itself). The amortized
overhead at ΔT = 100 is (update step - train step) / (100 train steps).
The plain and update steps are the run's ahead-of-time compiled
executables, which cannot recompile: a call they do not fit raises.

  python benchmarks/topology_update.py [--repeats=10]
"""

from collections.abc import Sequence
from typing import Optional

from absl import app
from absl import flags
import jax

from benchmarks import harness
from benchmarks import workloads


def topology_update_alone(state, grads):
  """An update step from given gradients: no forward or backward pass.

  RigL applies no optimizer step there (XLA drops the unused one), so what
  is left is what an update adds: new masks, zeroed entries, statistics.
  """
  return state.apply_gradients(grads=grads, topology_update=True)


def measure(
    name: str, repeats: int, bench: Optional[harness.Bench] = None
) -> list[str]:
  """The row of ``name``; ``bench``: its RigL steps, already compiled."""
  if bench is None:
    config_path, overrides = workloads.lookup(name)
    bench = harness.build(config_path, 'rigl', overrides)
  interval = bench.setup.resolved['mask_update']['interval']
  grads = jax.tree.map(lambda p: p * 0.5 + 0.1, bench.state.params)
  update_only = jax.jit(topology_update_alone)
  calls = {
      'train': bench.chain(bench.plain_step),
      'update_step': bench.chain(bench.update_step),
      'update_only': lambda: update_only(bench.state, grads),
  }
  seconds = harness.time_interleaved(calls, warmup=2, repeats=repeats)
  train, step, alone = (
      seconds['train'],
      seconds['update_step'],
      seconds['update_only'],
  )
  return [
      name,
      f'{bench.setup.resolved["sparsity"]:g} '
      f'{bench.setup.resolved["distribution"]}',
      f'{train * 1e3:.1f}',
      f'{step * 1e3:.1f}',
      f'{alone * 1e3:.1f}',
      f'{alone / train:.2f}',
      f'{step / train:.2f}',
      f'{(step - train) / (interval * train) * 100:.2f}%',
  ]


HEADER = (
    'model',
    'sparsity',
    'train step ms',
    'update step ms',
    'topology update alone ms',
    'update alone / train step',
    'update step / train step',
    'amortized overhead at ΔT=100',
)


def table(names: Sequence[str], repeats: int) -> str:
  """The Markdown table of ``names``."""
  return harness.markdown_table(
      HEADER, [measure(name, repeats) for name in names]
  )


def main(argv: Sequence[str]) -> None:
  del argv
  print(table(_WORKLOADS.value, _REPEATS.value))


if __name__ == '__main__':
  _REPEATS = flags.DEFINE_integer('repeats', 10, 'Timed calls of each kind.')
  _WORKLOADS = flags.DEFINE_list(
      'workloads', ['WRN-22-2', 'ResNet-50'], 'Workloads to run.'
  )
  app.run(main)
