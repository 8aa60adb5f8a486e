"""RigL paper, WRN-22-2 on CIFAR-10: test accuracy across sparsities."""

import itertools

CONFIG = 'configs/cifar10_wrn22_2.py'


def runs() -> list[dict[str, object]]:
  return [dict(method='dense')] + [
      dict(method=m, sparsity=s)
      for m, s in itertools.product(
          ('small_dense', 'static', 'set', 'snfs', 'rigl', 'pruning'),
          (0.5, 0.6, 0.7, 0.8, 0.9, 0.95),
      )
  ]
