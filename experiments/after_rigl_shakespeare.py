"""The methods after RigL on Tiny Shakespeare: GraNet, Top-KAST, MEST and
Chase against RigL, SET and Static, GRU language model at 90% (uniform,
embedding dense), three seeds each (21 runs).

  python scripts/sweep.py experiments/after_rigl_shakespeare.py \
      --root=/tmp/sweeps \
      --set=dataset.local_dir=../shared/data/tinyshakespeare --run --parallel=2
"""

import itertools

CONFIG = 'configs/shakespeare_gru.py'
SEEDS = (0, 1, 2)
METHODS = ('rigl', 'set', 'static', 'granet', 'top_kast', 'mest', 'chase')


def runs() -> list[dict[str, object]]:
  return [
      dict(method=method, sparsity=0.9, seed=seed)
      for seed, method in itertools.product(SEEDS, METHODS)
  ]
