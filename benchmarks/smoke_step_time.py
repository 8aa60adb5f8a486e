r"""Train step time of every config's ``:smoke`` size (the models CI trains).

For each config in configs/, the dense and RigL steps of its smoke variant
(tiny batch and input, the paper's architecture at reduced depth or width
where the smoke variant says so) are timed side by side, with the RigL
topology-update step as well.

  python -m benchmarks.smoke_step_time [--repeats=20]
"""

import glob
import os
from collections.abc import Sequence

from absl import app
from absl import flags
import jax
import numpy as np

from benchmarks import harness

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'configs')


def smoke_configs() -> list[str]:
  """Paths of the runnable configs (shared modules start with '_')."""
  return sorted(
      p
      for p in glob.glob(os.path.join(CONFIG_DIR, '*.py'))
      if not os.path.basename(p).startswith('_')
  )


def measure(config_path: str, repeats: int) -> list[str]:
  """A row: config, model, batch, input shape, params, ms per step kind."""
  benches = {
      m: harness.build(f'{config_path}:smoke', m, {}) for m in ('dense', 'rigl')
  }
  rigl = benches['rigl']
  seconds = harness.time_interleaved(
      {
          'dense': benches['dense'].chain(benches['dense'].plain_step),
          'rigl': rigl.chain(rigl.plain_step),
          'rigl update': rigl.chain(rigl.update_step),
      },
      warmup=2,
      repeats=repeats,
  )
  params = sum(int(np.size(x)) for x in jax.tree.leaves(rigl.state.params))
  return [
      os.path.basename(config_path),
      rigl.setup.resolved['model']['name'],
      str(rigl.setup.data.batch_size),
      'x'.join(str(d) for d in rigl.batch['inputs'].shape[1:]),
      f'{params:,}',
  ] + [f'{seconds[k] * 1e3:.2f}' for k in ('dense', 'rigl', 'rigl update')]


HEADER = (
    'config',
    'model',
    'batch',
    'input',
    'params',
    'dense ms/step',
    'RigL ms/step',
    'RigL update ms/step',
)


def table(repeats: int) -> str:
  return harness.markdown_table(
      HEADER, [measure(path, repeats) for path in smoke_configs()]
  )


def main(argv: Sequence[str]) -> None:
  del argv
  print(table(_REPEATS.value))


if __name__ == '__main__':
  _REPEATS = flags.DEFINE_integer('repeats', 20, 'Timed calls per step kind.')
  app.run(main)
