"""Structured sparsity on Tiny Shakespeare: SRigL against RigL, GRU
language model at 90% (uniform, embedding dense), three seeds each.

  python scripts/sweep.py experiments/structured_shakespeare.py \
      --root=/tmp/sweeps \
      --set=dataset.local_dir=../shared/data/tinyshakespeare --run --parallel=2
"""

import itertools

CONFIG = 'configs/shakespeare_gru.py'
SEEDS = (0, 1, 2)


def runs() -> list[dict[str, object]]:
  return [
      dict(method=method, sparsity=0.9, seed=seed)
      for method, seed in itertools.product(('rigl', 'srigl'), SEEDS)
  ]
