r"""The paper's Section 4.4 analyses on CIFAR-10, shrunk to train here.

A WRN-10 (one block per group) at quarter width, 90% ERK, batch 128 for
1,500 steps (about 4 epochs), dropout off (curve fitting needs a
deterministic loss). The schedule of the WRN-22-2 config, scaled to the
shorter run: learning rate 0.1 x0.2 at steps 750 and 1,250; RigL updates
every 50 steps until step 1,150; pruning from step 300 to 1,150 every 50.

  python scripts/sparse_landscape.py --config=experiments/landscape_cifar10.py \
      --config.dataset.local_dir=../shared/data/cifar10 \
      --fit_steps=2000 --eval_batches=20 \
      --root=/tmp/landscape_cifar10 \
      --output_dir=docs/results/landscape_cifar10
"""

import ml_collections

from rigl_jax.training import config as run_config

OVERRIDES = {
    'model.options.depth': 10,
    'model.width': 0.25,
    'model.options.dropout_rate': 0.0,
    'num_train_steps': 1500,
    'lr_schedule.boundaries': (750, 1250),
    'mask_update.interval': 50,
    'mask_update.end_step': 1150,
    'pruning.begin_step': 300,
    'pruning.end_step': 1150,
    'pruning.frequency': 50,
    'log_every_steps': 50,
    'eval_every_steps': 300,
    'checkpoint_every_steps': 1500,
}


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """The shrunk WRN config; ``arg``: key=value overrides."""
  config = run_config.load_relative(__file__, '../configs/cifar10_wrn22_2.py')
  run_config.set_values(config, OVERRIDES)
  return run_config.apply_arg(config, arg)
