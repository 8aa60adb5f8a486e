"""RigL paper, Table 2: ResNet-50 on ImageNet, every method.

Methods at 80% and 90% sparsity, uniform and ERK, with the 1x and 5x
training multipliers, plus the dense baseline.

  python scripts/sweep.py experiments/table2_resnet50.py --root=gs://bucket/sweeps
"""

import itertools

CONFIG = 'configs/imagenet_resnet50.py'


def runs() -> list[dict[str, object]]:
  sparse = [
      dict(method=m, sparsity=s, distribution=d, training_multiplier=x)
      for m, s, d, x in itertools.product(
          ('static', 'snip', 'set', 'snfs', 'rigl', 'small_dense', 'pruning'),
          (0.8, 0.9),
          ('uniform', 'erk'),
          (1, 5),
      )
  ]
  dense = [dict(method='dense', training_multiplier=x) for x in (1, 5)]
  return dense + sparse
