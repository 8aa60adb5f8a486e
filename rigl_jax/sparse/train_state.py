"""TrainState: params, masks, optimizer and method state, stepped as one.

``apply_gradients`` performs an optimizer step and, on the method's update
steps, a topology update: chosen inside the compiled step with ``lax.cond``
by default, or fixed when tracing by a loop that knows its step (as
``rigl_jax.training.loop`` does). The optimizer receives the masks and the training
step as extra arguments (see ``transforms``).
"""

from collections.abc import Callable
from typing import Any, Optional

from flax import struct
from flax.training import train_state as flax_train_state
import jax
import optax

from rigl_jax.sparse import checks
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import methods as methods_lib
from rigl_jax.sparse import sparsity_tree
from rigl_jax.sparse import topology
from rigl_jax.sparse import topology_stats as topology_stats_lib
from rigl_jax.sparse import transforms
from rigl_jax.sparse.tree_paths import PyTree


def _check_update_runs(
    tx: optax.GradientTransformationExtraArgs,
    opt_state: PyTree,
    params: PyTree,
    masks: PyTree,
) -> None:
  """Traces one update (no compilation) so that an optimizer the step
  cannot drive fails at ``create``, by name, not at the first step."""
  try:
    jax.eval_shape(
        lambda: tx.update(params, opt_state, params, masks=masks, step=0)
    )
  except (TypeError, ValueError, AttributeError) as e:
    cause = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise checks.InvalidArgument(
        'tx',
        f'its update fails on the params ({type(e).__name__}: {cause}). '
        'apply_gradients passes the params, the masks and the step only: '
        'optimizers that need the loss at each update (optax.lbfgs, '
        'polyak_sgd, contrib.sophia, contrib.momo, '
        'contrib.reduce_on_plateau) or their own params layout '
        '(optax.lookahead) cannot train a sparse TrainState',
    ) from e


class TrainState(flax_train_state.TrainState):
  """Everything a sparse run needs to take its next step.

  A ``flax.training.train_state.TrainState``: a Flax-examples loop switches
  by creating this class instead (``create`` takes the method, sparsities
  and a key besides ``apply_fn``, ``params`` and ``tx``); its train step,
  ``state.apply_fn`` and ``state.apply_gradients(grads=grads)``, stays as
  it is.

  Attributes:
    step: the number of steps taken so far.
    apply_fn: usually ``model.apply`` (optional).
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

  masks: PyTree
  method_state: PyTree
  rng: jax.Array
  topology_stats: topology_stats_lib.TopologyStats
  batch_stats: Optional[PyTree] = None
  method: methods_lib.SparseMethod = struct.field(
      pytree_node=False, default=None
  )

  @classmethod
  def create(
      cls,
      *,
      params: PyTree,
      tx: optax.GradientTransformation,
      method: methods_lib.SparseMethod,
      sparsities: PyTree,
      rng: jax.Array,
      apply_fn: Optional[Callable[..., Any]] = None,
      batch_stats: Optional[PyTree] = None,
      **kwargs,
  ) -> 'TrainState':
    """Initial state: the method's masks applied to ``params``.

    Args:
      params: the dense initial weights.
      tx: any optax optimizer; it is wrapped by
        ``transforms.sparse_optimizer`` so inactive weights stay zero.
      method: the sparse training method.
      sparsities: per-leaf sparsities from ``get_sparsities``, or a tree of
        ``params``' structure with None for dense leaves and a sparsity in
        [0, 1) for sparse ones.
      rng: key for the initial masks and the method's random choices.
      apply_fn: usually ``model.apply``, for the caller's own use.
      batch_stats: BatchNorm statistics, if the model has them.
      **kwargs: fields of a subclass.

    Raises:
      checks.InvalidArgument: naming 'sparsities' and the first bad leaf,
        or 'tx' for an optimizer that cannot train masked params.
    """
    sparsity_tree.check(params, sparsities)
    mask_rng, rng = jax.random.split(rng)
    masks = method.init_masks(mask_rng, params, sparsities)
    sparse_params = masks_lib.apply_masks(params, masks)
    sparse_tx = transforms.sparse_optimizer(tx)
    opt_state = sparse_tx.init(sparse_params)
    _check_update_runs(sparse_tx, opt_state, sparse_params, masks)
    return cls(
        step=jax.numpy.zeros((), jax.numpy.int32),
        apply_fn=apply_fn,
        params=sparse_params,
        masks=masks,
        opt_state=opt_state,
        method_state=method.init_state(params, masks, sparsities),
        rng=rng,
        topology_stats=topology_stats_lib.TopologyStats.create(masks),
        batch_stats=batch_stats,
        tx=sparse_tx,
        method=method,
        **kwargs,
    )

  def apply_gradients(
      self, *, grads: PyTree, topology_update: Optional[bool] = None, **kwargs
  ) -> 'TrainState':
    """One training step from the dense gradients ``grads``.

    The optimizer step uses the current masks. On a topology-update step
    the method computes new masks from the weights and gradients at the
    start of the step, a method that skips the optimizer there (RigL) keeps
    the old params and optimizer statistics (its step counters advance, so
    schedules follow the training step), dropped weights are zeroed and
    the optimizer state is reset wherever an entry is not active before and
    after the update (grown entries start at zero with zero state).

    Args:
      grads: gradients of the loss w.r.t. ``params`` (dense: inactive
        entries carry the gradient RigL grows by).
      topology_update: whether this step updates the topology. None decides
        inside the compiled step (``lax.cond`` on the method's schedule):
        one executable for every step. True or False fixes it when tracing,
        for a loop that knows its step on the host (the schedule is a pure
        function of it) and compiles one step of each kind: a
        ``lax.cond`` in the step slows an XLA:CPU ResNet-50 step by about
        15% (benchmarks/RESULTS.md), a plain step costs what a static
        sparse step costs.
      **kwargs: other fields to replace, e.g. ``batch_stats``.

    Returns:
      The state after the step.
    """
    rng, topology_rng = jax.random.split(self.rng)
    method = self.method
    method_state = method.observe_gradients(
        self.method_state, grads, self.masks
    )
    params, opt_state, method_state = method.optimizer_step(
        self.tx,
        self.opt_state,
        self.params,
        grads,
        self.masks,
        method_state,
        self.step,
    )
    masks, topology_stats = self.masks, self.topology_stats

    def update_topology(params, opt_state):
      new_masks = method.update_masks(
          topology_rng, self.step, self.params, grads, self.masks, method_state
      )
      if method.skip_optimizer_step:
        params = self.params
        opt_state = topology.keep_counters(
            self.masks, self.opt_state, opt_state
        )
      params, opt_state = topology.apply_new_masks(
          params, opt_state, self.masks, new_masks
      )
      params = method.init_grown(
          jax.random.fold_in(topology_rng, 1),
          self.params,
          grads,
          topology.grown_entries(self.masks, new_masks),
          params,
      )
      return (
          params,
          opt_state,
          new_masks,
          self.topology_stats.record(self.masks, new_masks),
      )

    if method.changes_topology and topology_update is None:
      params, opt_state, masks, topology_stats = jax.lax.cond(
          method.is_update_step(self.step),
          update_topology,
          lambda params, opt_state: (params, opt_state, masks, topology_stats),
          params,
          opt_state,
      )
    elif method.changes_topology and topology_update:
      params, opt_state, masks, topology_stats = update_topology(
          params, opt_state
      )
    return self.replace(
        params=params,
        opt_state=opt_state,
        masks=masks,
        method_state=method_state,
        topology_stats=topology_stats,
        step=self.step + 1,
        rng=rng,
        **kwargs,
    )
