"""RigL against SET on Tiny Shakespeare at 90% with a longer interval ΔT.

The MNIST knob sweep (experiments/mnist_rigl_vs_set.py) found RigL ahead
of SET at ΔT=300 where the two tie at ΔT=100; this repeats that change on
the GRU language model (configs/shakespeare_gru.py, three seeds). The main
sweep (experiments/shakespeare_gru.py) holds the ΔT=100 baseline.

  python scripts/sweep.py experiments/shakespeare_rigl_vs_set.py \
      --root=/tmp/sweeps --set=dataset.local_dir=../shared/data/tinyshakespeare --run
"""

import itertools

CONFIG = 'configs/shakespeare_gru.py'
SEEDS = (0, 1, 2)


def runs() -> list[dict[str, object]]:
  return [
      dict(
          method=method,
          sparsity=0.9,
          seed=seed,
          **{'mask_update.interval': 300},
      )
      for method, seed in itertools.product(('set', 'rigl'), SEEDS)
  ]
