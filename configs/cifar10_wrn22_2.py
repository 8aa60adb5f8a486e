r"""WRN-22-2 on CIFAR-10, as in the RigL paper.

Batch 128 for 97,656 steps (250 epochs), SGD momentum 0.9, L2 5e-4,
learning rate 0.1 x0.2 every 30,000 steps. RigL: ΔT=100, α=0.3 cosine,
T_end=75,000, ERK. Pruning from step 20,000 to 75,000 every 1,000 steps.

Values the paper does not state, from the reference code
(rigl/cifar_resnet/resnet_train_eval.py and its WideResNet model):
- Nesterov momentum;
- dropout 0.3 between the two convolutions of every residual block;
- pruning begins at step 20,000 (ends at 75,000, every 1,000 steps);
- the stem (first convolution) is never sparse (``prune_first_layer``
  False), under every distribution;
- learning-rate boundaries at 30,000, 60,000 and 90,000.
The reference pads by reflection and standardizes each image; this config
zero-pads and normalizes with the data set's per-channel mean and std.

Offline from the JPEG copy in ../shared/data/cifar10:

  python -m rigl_jax.main --config=configs/cifar10_wrn22_2.py \
      --config.dataset.local_dir=../shared/data/cifar10 --workdir=/tmp/wrn

Expected result (paper, not run here; GPU-days on CPU): RigL at 90%
sparsity within about 1.5 points of dense WRN-22-2 (about 94.5%); the JPEG
copy costs a few tenths of a point.

``:smoke`` shrinks it to two steps of a WRN-10 for tests.
"""

import ml_collections

from rigl_jax.training import config as run_config


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """The WRN-22-2 config; ``arg``: 'smoke' and/or key=value overrides."""
  config = run_config.base_config()
  config.method = 'rigl'
  config.sparsity = 0.9
  config.distribution = 'erk'
  config.dataset.name = 'cifar10'
  config.model.name = 'wrn22_2'

  config.batch_size = 128
  config.eval_batch_size = 1000
  config.num_train_steps = 97_656
  config.optimizer.name = 'momentum'
  config.optimizer.learning_rate = 0.1
  config.optimizer.momentum = 0.9
  config.optimizer.nesterov = True
  config.optimizer.l2 = 5e-4
  config.layer_sparsity = (('^stem/', 'dense'),)
  config.model.options.depth = 22  # WRN-10 and others: 6n + 4
  config.model.options.dropout_rate = 0.3
  config.lr_schedule.name = 'piecewise'
  config.lr_schedule.boundaries = (30_000, 60_000, 90_000)
  config.lr_schedule.decay_factor = 0.2

  config.mask_update.interval = 100
  config.mask_update.end_step = 75_000
  config.mask_update.drop_fraction = 0.3
  config.mask_update.schedule = 'cosine'
  config.pruning.begin_step = 20_000
  config.pruning.end_step = 75_000
  config.pruning.frequency = 1_000

  config.log_every_steps = 200
  config.eval_every_steps = 5_000
  config.checkpoint_every_steps = 5_000
  return run_config.apply_arg(config, arg, {'smoke': smoke})


def smoke(config: ml_collections.ConfigDict) -> None:
  """Two steps of a WRN-10 (one block per group) for tests."""
  run_config.shrink_for_smoke_test(config)
  config.model.width = 0.25
  config.model.options.depth = 10
