"""Small-scale check of the paper's claims: LeNet-300-100 on real MNIST.

Every method at 90%, 95% and 98% sparsity with ERK; Static and RigL also
with the uniform distribution; dense once; three seeds each (84 runs).
The schedule is configs/mnist_lenet300.py's (12,000 steps, 20 epochs).

  python scripts/sweep.py experiments/mnist_lenet300.py --root=/tmp/sweeps \
      --set=dataset.local_dir=../shared/data/mnist --run
"""

import itertools

CONFIG = 'configs/mnist_lenet300.py'
SEEDS = (0, 1, 2)
SPARSITIES = (0.9, 0.95, 0.98)


def runs() -> list[dict[str, object]]:
  result = [dict(method='dense', seed=seed) for seed in SEEDS]
  for method, sparsity, seed in itertools.product(
      ('small_dense', 'static', 'snip', 'set', 'snfs', 'rigl', 'pruning'),
      SPARSITIES,
      SEEDS,
  ):
    result.append(
        dict(method=method, sparsity=sparsity, distribution='erk', seed=seed)
    )
    if method in ('static', 'rigl'):
      result.append(
          dict(
              method=method,
              sparsity=sparsity,
              distribution='uniform',
              seed=seed,
          )
      )
  return result
