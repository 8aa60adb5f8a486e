r"""The WikiText-103 GRU language model scaled to Tiny Shakespeare on a CPU.

The same model family and recipe as configs/wikitext103_gru.py (shared
byte embedding of 128, GRU, two readout layers, logits through the
embedding; Adam, L2, value clipping, uniform sparsity with the embedding
dense, RigL α=0.1 cosine every 100 steps until the end), at width 0.25: GRU
state 128 and readout 64, 128. Sequences of 128 bytes, batch 32, 3,000
steps (about 11 epochs of the 1 MB training split); pruning from step 500
to 2,000 every 100 steps.

Offline from ../shared/data/tinyshakespeare/input.txt:

  python -m rigl_jax.main --config=configs/shakespeare_gru.py \
      --config.dataset.local_dir=../shared/data/tinyshakespeare \
      --workdir=/tmp/shakespeare

Expected result: see docs/results/ (validation bits per character).

``:smoke`` shrinks it to two steps on 16-byte sequences for tests.
"""

import ml_collections

from rigl_jax.training import config as run_config

wikitext103_gru = run_config.load_sibling(__file__, 'wikitext103_gru')


def get_config(arg: str = '') -> ml_collections.ConfigDict:
  """The Tiny Shakespeare GRU config; ``arg``: 'smoke' and/or key=value."""
  config = wikitext103_gru.base_gru_config()
  config.dataset.name = 'tiny_shakespeare'
  config.dataset.sequence_length = 128
  config.model.width = 0.25
  config.batch_size = 32
  config.eval_batch_size = 64
  config.num_train_steps = 3_000
  config.optimizer.learning_rate = 2e-3
  config.mask_update.end_step = 3_000
  config.pruning.begin_step = 500
  config.pruning.end_step = 2_000
  config.pruning.frequency = 100
  config.granet.end_step = 1_500  # Half of training, as GraNet's code.
  config.granet.frequency = 100
  config.mest.interval = 94  # 1/32 of the run, as MEST's 5 of 160 epochs.
  config.log_every_steps = 100
  config.eval_every_steps = 1_000
  config.checkpoint_every_steps = 1_000
  return run_config.apply_arg(config, arg, {'smoke': wikitext103_gru.smoke})
