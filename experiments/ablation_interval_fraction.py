"""RigL paper, ablation of the update interval ΔT and drop fraction α.

ResNet-50, RigL at 80% sparsity (uniform), cosine decay of α.
"""

import itertools

CONFIG = 'configs/imagenet_resnet50.py'


def runs() -> list[dict[str, object]]:
  return [
      {
          'method': 'rigl',
          'sparsity': 0.8,
          'distribution': 'uniform',
          'mask_update.interval': interval,
          'mask_update.drop_fraction': alpha,
      }
      for interval, alpha in itertools.product(
          (50, 100, 500, 1000), (0.1, 0.3, 0.5)
      )
  ]
