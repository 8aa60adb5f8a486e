"""RigL paper, MobileNet v1 and v2 on ImageNet (5x training multiplier).

Dense, Small-Dense, Static, gradual pruning and RigL at 75% and 90%
sparsity, uniform and ERK, for both MobileNets; and the Big-Sparse MobileNet
v1 (width 1.98 at 75% sparsity, uniform and ERK: 0.98x and 1.92x the
FLOPs of the width-1 dense model).
"""

import itertools

CONFIG = 'configs/imagenet_mobilenet_v1.py'


def runs() -> list[dict[str, object]]:
  result = []
  for config in (
      'configs/imagenet_mobilenet_v1.py',
      'configs/imagenet_mobilenet_v2.py',
  ):
    result.append(dict(config=config, method='dense'))
    result += [
        dict(config=config, method=m, sparsity=s, distribution=d)
        for m, s, d in itertools.product(
            ('small_dense', 'static', 'pruning', 'rigl'),
            (0.75, 0.9),
            ('uniform', 'erk'),
        )
    ]
  # Big-Sparse (Figure 3-right): FLOPs against the width-1 dense model and,
  # as the paper counts them, depthwise kernels sparse too.
  result += [
      dict(
          config='configs/imagenet_mobilenet_v1.py',
          method='rigl',
          sparsity=0.75,
          distribution=distribution,
          layer_sparsity=(('^stem/', 'dense'),),
          **{'model.width': 1.98, 'model.reference_width': 1.0},
      )
      for distribution in ('uniform', 'erk')
  ]
  return result
