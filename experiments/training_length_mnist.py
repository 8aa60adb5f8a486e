"""The paper's training-length results (Figure 2, Table 2) at MNIST scale.

LeNet-300-100, ERK, 90% and 98% sparsity: RigL, SET, SNFS and Static
trained 1x, 2x, 3x and 5x as long (the multiplier also stretches T_end
and the learning-rate steps), "Static longer" (Static given the training
FLOPs of RigL 5x), and the dense model at 1x; three seeds each (105 runs).

  python scripts/sweep.py experiments/training_length_mnist.py \
      --root=/tmp/sweeps --set=dataset.local_dir=../shared/data/mnist --run
  python scripts/report.py --output_dir=docs/results/training_length_mnist \
      --title="Training length, LeNet-300-100 on MNIST" \
      /tmp/sweeps/training_length_mnist

Results and the paper's claims: docs/results/training_length_mnist/.
"""

import itertools

CONFIG = 'configs/mnist_lenet300.py'
SEEDS = (0, 1, 2)
SPARSITIES = (0.9, 0.98)
METHODS = ('static', 'set', 'snfs', 'rigl')
MULTIPLIERS = (1.0, 2.0, 3.0, 5.0)


def static_multiplier_at_rigl_5x(sparsity: float) -> float:
  """The multiplier at which Static spends RigL 5x's training FLOPs.

  RigL computes a dense gradient every ΔT steps, so it costs a little more
  per step than Static; rounded to two decimals for a readable workdir.
  """
  # Imported here: listing a sweep's runs should not load JAX unless needed.
  from rigl_jax.training import build  # pylint: disable=g-import-not-at-top
  from rigl_jax.training import config as config_lib  # pylint: disable=g-import-not-at-top

  def train_flops(method: str, multiplier: float) -> float:
    config = config_lib.load(CONFIG)
    config.method = method
    config.sparsity = sparsity
    config.distribution = 'erk'
    config.training_multiplier = multiplier
    return build.flops_report(config)['train_flops_ratio']

  return round(train_flops('rigl', 5.0) / train_flops('static', 1.0), 2)


def runs() -> list[dict[str, object]]:
  result = [dict(method='dense', seed=seed) for seed in SEEDS]
  for method, sparsity, multiplier, seed in itertools.product(
      METHODS, SPARSITIES, MULTIPLIERS, SEEDS
  ):
    result.append(
        dict(
            method=method,
            sparsity=sparsity,
            distribution='erk',
            training_multiplier=multiplier,
            seed=seed,
        )
    )
  for sparsity in SPARSITIES:
    longer = static_multiplier_at_rigl_5x(sparsity)
    result.extend(
        dict(
            method='static',
            sparsity=sparsity,
            distribution='erk',
            training_multiplier=longer,
            seed=seed,
        )
        for seed in SEEDS
    )
  return result
