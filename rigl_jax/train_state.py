"""TrainState: params, masks, optimizer and method state, stepped as one.

``apply_gradients`` performs either an optimizer step or, on the method's
update steps, a topology update, chosen inside the compiled step with
``lax.cond`` so that nothing leaves the device. The optimizer receives the
masks and the training step as extra arguments (see ``transforms``).
"""

from typing import Any, Optional

from flax import struct
import jax
import optax

from rigl_jax import masks as masks_lib
from rigl_jax import methods as methods_lib
from rigl_jax import topology
from rigl_jax import topology_stats as topology_stats_lib
from rigl_jax import transforms

PyTree = Any


class TrainState(struct.PyTreeNode):
  """Everything a sparse run needs to take its next step.

  Attributes:
    step: the number of steps taken so far.
    params: the weights; inactive weights are exactly zero.
    masks: a bool array per sparsified leaf of ``params``, None elsewhere.
    opt_state: state of ``tx``.
    method_state: the method's own state (e.g. SNFS's gradient EMA).
    rng: key for the method's random choices (e.g. SET's growth).
    topology_stats: churn and exploration of the topology.
    batch_stats: BatchNorm statistics, or None.
    tx: the sparse optimizer (masks inactive gradients and updates).
    method: the sparse training method.
  """
  step: jax.Array
  params: PyTree
  masks: PyTree
  opt_state: optax.OptState
  method_state: PyTree
  rng: jax.Array
  topology_stats: topology_stats_lib.TopologyStats
  batch_stats: Optional[PyTree] = None
  tx: optax.GradientTransformationExtraArgs = struct.field(
      pytree_node=False, default=None)
  method: methods_lib.SparseMethod = struct.field(
      pytree_node=False, default=None)

  @classmethod
  def create(cls,
             *,
             params: PyTree,
             tx: optax.GradientTransformation,
             method: methods_lib.SparseMethod,
             sparsities: PyTree,
             rng: jax.Array,
             batch_stats: Optional[PyTree] = None) -> 'TrainState':
    """Initial state: the method's masks applied to ``params``.

    Args:
      params: the dense initial weights.
      tx: any optax optimizer; it is wrapped by
        ``transforms.sparse_optimizer`` so inactive weights stay zero.
      method: the sparse training method.
      sparsities: per-leaf sparsities from ``get_sparsities``.
      rng: key for the initial masks and the method's random choices.
      batch_stats: BatchNorm statistics, if the model has them.
    """
    mask_rng, rng = jax.random.split(rng)
    masks = method.init_masks(mask_rng, params, sparsities)
    params = masks_lib.apply_masks(params, masks)
    sparse_tx = transforms.sparse_optimizer(tx)
    return cls(
        step=jax.numpy.zeros((), jax.numpy.int32),
        params=params,
        masks=masks,
        opt_state=sparse_tx.init(params),
        method_state=method.init_state(params, masks, sparsities),
        rng=rng,
        topology_stats=topology_stats_lib.TopologyStats.create(masks),
        batch_stats=batch_stats,
        tx=sparse_tx,
        method=method)

  def _optimizer_step(self, grads: PyTree) -> 'TrainState':
    updates, opt_state = self.tx.update(
        grads, self.opt_state, self.params, masks=self.masks, step=self.step)
    return self.replace(
        params=optax.apply_updates(self.params, updates), opt_state=opt_state)

  def _topology_step(self, grads: PyTree, rng: jax.Array) -> 'TrainState':
    state = self if self.method.skip_optimizer_step else self._optimizer_step(
        grads)
    new_masks = self.method.update_masks(rng, self.step, state.params, grads,
                                         state.masks, state.method_state)
    params, opt_state = topology.reset_grown(self.tx, state.params,
                                             state.opt_state, state.masks,
                                             new_masks)
    return state.replace(
        params=params,
        opt_state=opt_state,
        masks=new_masks,
        topology_stats=state.topology_stats.record(state.masks, new_masks))

  def apply_gradients(self, *, grads: PyTree, **kwargs) -> 'TrainState':
    """One training step from the dense gradients ``grads``.

    Args:
      grads: gradients of the loss w.r.t. ``params`` (dense: inactive
        entries carry the gradient RigL grows by).
      **kwargs: other fields to replace, e.g. ``batch_stats``.

    Returns:
      The state after an optimizer step, or after a topology update on the
      method's update steps.
    """
    rng, topology_rng = jax.random.split(self.rng)
    state = self.replace(
        method_state=self.method.observe_gradients(self.method_state, grads,
                                                   self.masks),
        **kwargs)
    if self.method.changes_topology:
      state = jax.lax.cond(
          self.method.is_update_step(self.step),
          lambda s: s._topology_step(grads, topology_rng),
          lambda s: s._optimizer_step(grads), state)
    else:
      state = state._optimizer_step(grads)
    return state.replace(step=self.step + 1, rng=rng)
