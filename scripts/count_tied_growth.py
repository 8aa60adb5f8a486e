r"""How often RigL must grow among tied scores: MNIST LeNet-300-100.

RigL grows the inactive entries with the largest |gradient|. An input pixel
that is always zero (MNIST's border) gives exactly zero gradient to every
weight it feeds, as a dead ReLU unit does to every weight into it; when an
update must grow more entries than have a nonzero gradient, the rest are
chosen among zeros, i.e. by the tie-breaking rule. This trains the config
with its method (RigL by default) and prints, per layer, the updates that
grew among ties and the share of grown entries chosen that way.

  python scripts/count_tied_growth.py --config=configs/mnist_lenet300.py \
      --config.dataset.local_dir=../shared/data/mnist --config.sparsity=0.98
"""

import json

from absl import app
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np

from rigl_jax.data import mnist
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import topology
from rigl_jax.sparse import tree_paths
from rigl_jax.sparse import train_state as train_state_lib
from rigl_jax.sparse.methods import drop_and_grow
from rigl_jax.training import build
from rigl_jax.training import steps

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file.', lock_config=True
)


def tied_growth(state, grads):
  """Per sparse layer: (entries to grow, entries grown among zero |grad|)."""
  fraction = state.method.drop_fraction(state.step)

  def count(mask, weights, grad):
    k = drop_and_grow.num_to_swap(mask, fraction)
    num_active = jnp.sum(mask, dtype=jnp.int32)
    drop_scores = jnp.where(mask, jnp.abs(weights), -jnp.inf)
    kept = topology.top_k_mask(drop_scores, num_active - k)
    nonzero = jnp.sum(~kept & (grad != 0), dtype=jnp.int32)
    return jnp.stack([k, jnp.maximum(k - nonzero, 0)])

  return masks_lib.map_masks(
      lambda m, w, g: None if m is None else count(m, w, g),
      state.masks,
      state.params,
      grads,
  )


def main(argv):
  del argv
  setup = build.build(_CONFIG.value)
  run = setup.run
  train = mnist.load_idx_split(run.dataset.local_dir, 'train')
  images = jnp.asarray(train['inputs'])
  labels = jnp.asarray(train['labels'])
  params = setup.model.init(
      jax.random.key(run.seed), jnp.zeros((1,) + setup.spec.input_shape)
  )['params']
  state = train_state_lib.TrainState.create(
      params=params,
      tx=setup.tx,
      method=setup.method,
      sparsities=setup.sparsities,
      rng=jax.random.key(run.seed + 1),
  )

  @jax.jit
  def grads_of(state, batch):
    def loss_fn(params):
      logits, _ = steps.apply_model(
          setup.model, params, None, batch['inputs'], train=True
      )
      return steps.cross_entropy(logits, batch['labels']).mean()

    return jax.grad(loss_fn)(state.params)

  apply = {
      kind: jax.jit(
          lambda s, g, kind=kind: s.apply_gradients(
              grads=g, topology_update=kind
          )
      )
      for kind in (False, True)
  }
  counts = {}
  rng = np.random.default_rng(run.seed)
  order = rng.permutation(len(labels))
  per_epoch = len(labels) // run.batch_size
  for step in range(run.num_train_steps):
    if step % per_epoch == 0:
      order = rng.permutation(len(labels))
    index = order[
        (step % per_epoch)
        * run.batch_size : (step % per_epoch + 1)
        * run.batch_size
    ]
    batch = setup.preprocess(
        {'inputs': images[index], 'labels': labels[index]}, None, True
    )
    grads = grads_of(state, batch)
    update = bool(setup.method.is_update_step(step))
    if update:
      for path, pair in tree_paths.named_leaves(tied_growth(state, grads)):
        counts.setdefault(path, []).append(np.asarray(pair).tolist())
    state = apply[update](state, grads)
  summary = {}
  for path, pairs in counts.items():
    pairs = np.array(pairs)
    summary[path] = {
        'updates': len(pairs),
        'updates_growing_among_ties': int((pairs[:, 1] > 0).sum()),
        'grown': int(pairs[:, 0].sum()),
        'grown_among_ties': int(pairs[:, 1].sum()),
    }
  print(json.dumps(summary, indent=2))


if __name__ == '__main__':
  app.run(main)
