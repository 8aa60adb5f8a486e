"""BatchNorm statistics recomputed at a point of a path.

Running statistics belong to the solution they were trained with; at an
interior point of a path they would normalize with the wrong mean and
variance, so Garipov et al. recompute them at every evaluated point as the
mean of the batch statistics over a few training batches.
"""

from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from rigl_jax.sparse.tree_paths import PyTree


def batch_norm_momenta(
    model: nn.Module, variables: PyTree, inputs: Any, **apply_kwargs: Any
) -> PyTree:
  """The momentum of the BatchNorm owning each leaf of 'batch_stats'.

  Read from the modules themselves (by intercepting their calls while
  tracing, no computation), so models may use any momentum, or several.
  """
  found = {}

  def record(next_fun, args, kwargs, context):
    module = context.module
    if isinstance(module, nn.BatchNorm) and context.method_name == '__call__':
      found[tuple(module.path)] = module.momentum
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    jax.eval_shape(
        lambda v, x: model.apply(v, x, mutable=['batch_stats'], **apply_kwargs),
        variables,
        inputs,
    )

  def momentum_of(key_path, leaf):
    del leaf
    owner = tuple(key.key for key in key_path[:-1])
    if owner not in found:
      raise ValueError(f'batch_stats of {owner} come from no nn.BatchNorm')
    return found[owner]

  return jax.tree_util.tree_map_with_path(momentum_of, variables['batch_stats'])


def make_batch_stats_fn(
    model: nn.Module,
    inputs: Sequence[Any],
    batch_stats: PyTree,
    **apply_kwargs: Any,
) -> Callable[[PyTree], PyTree]:
  """``recompute(params) -> batch_stats``: the mean statistics over inputs.

  Each batch goes through the model in training mode from zero running
  statistics, which leaves (1 - momentum) times its statistics; dividing
  their sum by n (1 - momentum) gives the mean over the n batches, the
  variance being the mean of the batches' variances.

  Args:
    model: a Flax module whose BatchNorms write the 'batch_stats' collection.
    inputs: a few training batches of model inputs, all of one shape.
    batch_stats: statistics with the model's structure (e.g. a solution's).
    **apply_kwargs: keyword arguments of ``model.apply`` that select batch
      statistics; ``train=True`` (the rigl_jax models' argument) if none.

  Returns:
    A jitted function of the params.
  """
  apply_kwargs = apply_kwargs or {'train': True}
  stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *inputs)
  zeros = jax.tree.map(jnp.zeros_like, batch_stats)

  def scaled_batch_stats(params, x):
    _, state = model.apply(
        {'params': params, 'batch_stats': zeros},
        x,
        mutable=['batch_stats'],
        **apply_kwargs,
    )
    return state['batch_stats']

  @jax.jit
  def recompute(params, stacked):
    first = jax.tree.map(lambda x: x[0], stacked)
    variables = {'params': params, 'batch_stats': zeros}
    momenta = batch_norm_momenta(model, variables, first, **apply_kwargs)

    def accumulate(total, x):
      stats = scaled_batch_stats(params, x)
      return jax.tree.map(jnp.add, total, stats), None

    total, _ = jax.lax.scan(accumulate, zeros, stacked)
    return jax.tree.map(
        lambda s, m: s / (len(inputs) * (1 - m)), total, momenta
    )

  return lambda params: recompute(params, stacked)
