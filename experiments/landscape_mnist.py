r"""The paper's Section 4.4 analyses on MNIST: LeNet-300-100 at 98% ERK.

The main MNIST config (12,000 steps) at 98% sparsity.

  python scripts/sparse_landscape.py --config=experiments/landscape_mnist.py \
      --config.dataset.local_dir=../shared/data/mnist --eval_batches=60 \
      --root=/tmp/landscape_mnist --output_dir=docs/results/landscape_mnist
"""

import ml_collections

from rigl_jax.training import config as run_config


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """The MNIST config at 98%; ``arg``: key=value overrides."""
  config = run_config.load_relative(__file__, '../configs/mnist_lenet300.py')
  config.sparsity = 0.98
  return run_config.apply_arg(config, arg)
