"""The methods after RigL on MNIST: GraNet, Top-KAST, MEST and Chase
against RigL, SET and Static, LeNet-300-100 at 90% and 98% ERK, three
seeds each (42 runs, 12,000 steps, the settings of
configs/mnist_lenet300.py and each method's own block).

  python scripts/sweep.py experiments/after_rigl_mnist.py --root=/tmp/sweeps \
      --set=dataset.local_dir=../shared/data/mnist --run --parallel=2
"""

import itertools

CONFIG = 'configs/mnist_lenet300.py'
SEEDS = (0, 1, 2)
METHODS = ('rigl', 'set', 'static', 'granet', 'top_kast', 'mest', 'chase')


def runs() -> list[dict[str, object]]:
  return [
      dict(method=method, sparsity=sparsity, distribution='erk', seed=seed)
      for seed, sparsity, method in itertools.product(
          SEEDS, (0.9, 0.98), METHODS
      )
  ]
