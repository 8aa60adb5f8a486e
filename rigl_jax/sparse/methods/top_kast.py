"""Top-KAST (Jayakumar et al., "Top-KAST: Top-K Always Sparse Training",
NeurIPS 2020): the forward pass uses each layer's largest weights, the
backward pass updates a larger set of them. No official code was released;
read with the paper, SparseML's reimplementation
(``src/sparseml/pytorch/sparsification/pruning/modifier_pruning_topkast.py``,
``TopKASTPruningModifier``).

Each sparse layer keeps its dense weights θ. With D the layer's forward
density (1 - its sparsity) and M the extra backward density:

- Forward set A: the D-fraction of θ largest in magnitude; the model sees
  α = θ on A and 0 elsewhere (``params`` and ``masks``: A).
- Backward set B ⊇ A: the (D + M)-fraction largest |θ|. The optimizer
  updates θ on B with the gradient of the loss w.r.t. α (Δθ_i = -η
  ∇_α L_i for i in B, 0 elsewhere); θ outside B keeps its value.
- Exploration penalty: λ θ_i² / 2 on A and λ θ_i² / (2 D) on B \\ A, so a
  weight outside the forward set must grow against a stronger pull to
  zero to enter it (the paper's L_penalty: |θ_i| on A, |θ_i| / D on B \\ A,
  0 elsewhere, used as an L2 term).
- A and B are recomputed from |θ| after the optimizer step every ΔT steps
  (every step in the paper).

The always-sparse backward is realized with the dense gradient the train
step computes, masked to B: the optimizer sees θ on B (``optimizer_step``)
and the weights outside A live in the method state (``inactive_weights``),
so the forward pass, evaluation, checkpoints and exports see α and A.
Reads the ``top_kast`` block.

Defaults and their source:

- ``backward_sparsity`` = 0.5: the paper's ImageNet runs pair forward 80%
  with backward 50% (Table 1); here M = ``sparsity`` - ``backward_sparsity``
  is added to each layer's forward density (capped at 1), which is the
  paper's D + M under a uniform distribution.
- ``penalty`` = 1e-4 (λ): the paper gives the penalty's form, not its own
  scale; 1e-4 is the weight decay of the ResNet-50 setup it follows and
  SparseML's ``active_weight_decay`` default. The run's ``optimizer.l2``
  applies besides, to every updated weight (set it to 0 for the penalty
  alone).
- ``frequency`` = 1 (ΔT): the sets are recomputed at every step in the
  paper (it reports recomputing every 100 steps to match).

What differs from the paper, and why:

- The weights enter the forward set with their values, as in the paper,
  but their optimizer state (momentum, Adam moments) is kept only where a
  weight is in A before and after a recomputation, as for every method
  here (``topology.apply_new_masks``): at ΔT = 1 the weights of B \\ A are
  stepped without momentum. The paper (SGD, and Adam for language models)
  does not say how its optimizer state follows the sets.
- Under a non-uniform distribution (ERK) each layer's backward density is
  its forward density plus M; the paper trains with uniform sparsity.
- Ties in |θ| are broken by index (the sets are recomputed inside the
  optimizer step, which draws no random key); weights are continuous, so
  ties are rare.
- Mask structures (``n_m``, ``fan_in``) hold for A and B group by group:
  each group keeps its forward count of largest |θ| and the backward count
  round((D + M) * group size).

Training FLOPs (the paper's accounting: the forward pass at A, the
backward pass at B): every step costs 2 f_A + f_B, the forward pass and the
input gradients through α (f_A each) and the weight gradients of B (f_B);
recomputing the sets is not counted.
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from rigl_jax.sparse import checks
from rigl_jax.sparse import flops
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import structure as structure_lib
from rigl_jax.sparse import topology
from rigl_jax.sparse.methods import base


@dataclasses.dataclass(frozen=True)
class TopKast(base.SparseMethod):
  """Top-K Always Sparse Training.

  Attributes:
    backward_extra: M, the density B adds to each layer's forward density.
    penalty: λ, the scale of the exploration penalty.
    frequency: ΔT, the steps between recomputations of A and B.
  """

  backward_extra: float = 0.4
  penalty: float = 1e-4
  frequency: int = 1

  name = 'top_kast'
  display_name = 'Top-KAST'
  changes_topology = True

  def __post_init__(self):
    checks.require_in_range('top_kast.penalty', self.penalty, 0.0, 1.0)
    checks.require_positive_int('top_kast.frequency', self.frequency)

  @classmethod
  def config_defaults(cls):
    return {
        'top_kast': {
            'backward_sparsity': 0.5,
            'penalty': 1e-4,  # λ
            'frequency': 1,  # ΔT
        }
    }

  @classmethod
  def smoke_overrides(cls, num_steps):
    del num_steps
    return {'top_kast.frequency': 1}

  @classmethod
  def from_config(cls, config: Any) -> 'TopKast':
    block = config.top_kast
    checks.require_in_range(
        'top_kast.backward_sparsity',
        block.backward_sparsity,
        0.0,
        config.sparsity,
    )
    checks.require_positive_int('top_kast.frequency', block.frequency)
    return cls(
        backward_extra=float(config.sparsity - block.backward_sparsity),
        penalty=block.penalty,
        frequency=int(block.frequency),
    )

  # -- Sets ------------------------------------------------------------------

  def backward_sparsity(self, sparsity: float) -> float:
    """A layer's backward sparsity given its forward one."""
    return max(0.0, sparsity - self.backward_extra)

  def counts(self, sparsity: float, shape: tuple[int, ...]) -> jax.Array:
    """[A, B] counts of each group of a kernel at forward ``sparsity``."""
    structure = self.structure
    forward = structure.active_per_group(sparsity, shape)
    backward = structure_lib.num_active_for(
        self.backward_sparsity(sparsity), structure.group_size(shape)
    )
    return jnp.asarray([forward, max(forward, backward)], jnp.int32)

  def _largest(self, weights, count, tie_seed=None):
    """The ``count`` largest |weights| of each group."""
    return self.structure.apply(
        lambda w, seed: topology.top_k_mask(jnp.abs(w), count, seed),
        weights,
        tie_seed=tie_seed,
    )

  def _sets(self, weights, counts):
    forward = self._largest(weights, counts[0])
    return forward, self._largest(weights, counts[1]) | forward

  # -- Cost ------------------------------------------------------------------

  def train_flops(self, costs: flops.RunCosts) -> float:
    """2 f_A + f_B every step: see the module docstring."""
    backward = costs.flops_at(
        {p: self.backward_sparsity(s) for p, s in costs.sparsities.items()}
    )
    return costs.num_steps * (2.0 * costs.sparse_flops + backward)

  # -- Training --------------------------------------------------------------

  def init_masks(self, rng, params, sparsities):
    return masks_lib.map_masks(
        lambda s, p, seed: None
        if s is None
        else self._largest(p, self.counts(s, p.shape)[0], seed),
        sparsities,
        params,
        masks_lib.tie_seeds(rng, sparsities),
    )

  def init_state(self, params, masks, sparsities):
    counts = masks_lib.map_masks(
        lambda s, p: None if s is None else self.counts(s, p.shape),
        sparsities,
        params,
    )
    backward = masks_lib.map_masks(
        lambda m, p, c: None if m is None else self._largest(p, c[1]) | m,
        masks,
        params,
        counts,
    )
    inactive = masks_lib.map_masks(
        lambda m, p: None if m is None else jnp.where(m, 0.0, p),
        masks,
        params,
    )
    return {
        'counts': counts,
        'forward': masks,
        'backward': backward,
        'inactive_weights': inactive,
    }

  def is_update_step(self, step):
    return step % self.frequency == 0

  def optimizer_step(self, tx, opt_state, params, grads, masks, state, step):
    theta = masks_lib.map_masks(
        lambda m, p, r: p if m is None else p + r,
        masks,
        params,
        state['inactive_weights'],
    )

    def penalized(m, g, w, b):
      if m is None:
        return g
      density = jnp.mean(m, dtype=jnp.float32)
      scale = jnp.where(m, 1.0, jnp.where(b, 1.0 / density, 0.0))
      return g + self.penalty * scale * w

    grads = masks_lib.map_masks(
        penalized, masks, grads, theta, state['backward']
    )
    updates, opt_state = tx.update(
        grads, opt_state, theta, masks=state['backward'], step=step
    )
    theta = optax.apply_updates(theta, updates)

    def recompute():
      return masks_lib.map_masks(
          lambda m, w, c: None if m is None else self._sets(w, c),
          masks,
          theta,
          state['counts'],
      )

    def keep():
      return masks_lib.map_masks(
          lambda m, b: None if m is None else (m, b), masks, state['backward']
      )

    if self.frequency == 1:
      sets = recompute()
    else:
      sets = jax.lax.cond(self.is_update_step(step), recompute, keep)
    is_pair = lambda x: x is None or isinstance(x, tuple)
    forward = jax.tree.map(
        lambda s: None if s is None else s[0], sets, is_leaf=is_pair
    )
    backward = jax.tree.map(
        lambda s: None if s is None else s[1], sets, is_leaf=is_pair
    )
    params = masks_lib.map_masks(
        lambda a, w: w if a is None else jnp.where(a, w, 0.0), forward, theta
    )
    inactive = masks_lib.map_masks(
        lambda a, w: None if a is None else jnp.where(a, 0.0, w),
        forward,
        theta,
    )
    state = {
        **state,
        'forward': forward,
        'backward': backward,
        'inactive_weights': inactive,
    }
    return params, opt_state, state

  def update_masks(self, rng, step, params, grads, masks, state):
    # ``optimizer_step`` recomputed the forward set from this step's θ.
    del rng, step, params, grads, masks
    return state['forward']


METHOD = TopKast
