"""Small-scale GRU language model: Tiny Shakespeare, validation bits/char.

Dense, Static, SET, RigL and gradual pruning at 75% and 90% sparsity
(uniform, embedding dense), three seeds each (27 runs), with
configs/shakespeare_gru.py.

  python scripts/sweep.py experiments/shakespeare_gru.py --root=/tmp/sweeps \
      --set=dataset.local_dir=../shared/data/tinyshakespeare --run
"""

import itertools

CONFIG = 'configs/shakespeare_gru.py'
SEEDS = (0, 1, 2)


def runs() -> list[dict[str, object]]:
  return [dict(method='dense', seed=seed) for seed in SEEDS] + [
      dict(method=method, sparsity=sparsity, seed=seed)
      for method, sparsity, seed in itertools.product(
          ('static', 'set', 'rigl', 'pruning'), (0.75, 0.9), SEEDS
      )
  ]
