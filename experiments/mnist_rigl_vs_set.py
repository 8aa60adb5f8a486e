"""RigL against SET on MNIST at 98%: the update knobs, both methods.

LeNet-300-100, ERK, 98% sparsity, SET and RigL under the main sweep's
schedule with one knob changed at a time: a longer update interval ΔT
(five seeds), a larger drop fraction α and twice the training steps (the
multiplier also stretches T_end and the learning-rate steps; three seeds
each). The main sweep (experiments/mnist_lenet300.py) holds the baseline.
docs/results/README.md reads the results: RigL leads at ΔT = 300, SET
with twice the steps, and SET's accuracy follows how much it explores.

  python scripts/sweep.py experiments/mnist_rigl_vs_set.py --root=/tmp/sweeps \
      --set=dataset.local_dir=../shared/data/mnist --run
"""

import itertools

CONFIG = 'configs/mnist_lenet300.py'
# (override, seeds)
VARIANTS = (
    ({'mask_update.interval': 300}, (0, 1, 2, 3, 4)),
    ({'mask_update.drop_fraction': 0.5}, (0, 1, 2)),
    ({'training_multiplier': 2.0}, (0, 1, 2)),
)


def runs() -> list[dict[str, object]]:
  return [
      dict(
          method=method, sparsity=0.98, distribution='erk', seed=seed, **variant
      )
      for variant, seeds in VARIANTS
      for method, seed in itertools.product(('set', 'rigl'), seeds)
  ]
