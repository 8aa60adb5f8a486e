"""Fits a Bézier curve of low loss between two solutions (Garipov et al. 2018).

The free control points minimize E_{t ~ U(0, 1)}[loss(point(t))], estimated
each step with one t and one batch, as Garipov et al. train their curves.
The endpoints never move, and in a subspace the free points stay exactly
zero outside it: they are masked in the parametrization (so their gradient
there is zero) and again after every optimizer step (so weight decay or
noise cannot move them either).
"""

from typing import Any, Callable, Iterable, NamedTuple, Optional, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax

from rigl_jax.analysis import paths
from rigl_jax.sparse.tree_paths import PyTree

LossFn = Callable[[PyTree, Any], jax.Array]
# An iterable of batches, or a function of the step returning its batch.
Batches = Union[Iterable[Any], Callable[[int], Any]]


class CurveFit(NamedTuple):
  """The fitted free control points and the loss at each step's sampled t."""

  free: tuple[PyTree, ...]
  losses: np.ndarray


def make_curve_step(
    loss_fn: LossFn, optimizer: optax.GradientTransformation
) -> Callable[..., tuple[tuple[PyTree, ...], Any, jax.Array]]:
  """A jitted ``step(free, opt_state, start, end, subspace, rng, batch)``.

  The endpoints and subspace are arguments, not constants, so large models
  are not baked into the compiled program.
  """

  def curve_loss(free, start, end, subspace, t, batch):
    return loss_fn(paths.bezier_point(start, free, end, t, subspace), batch)

  @jax.jit
  def step(free, opt_state, start, end, subspace, rng, batch):
    t = jax.random.uniform(rng)
    loss, grads = jax.value_and_grad(curve_loss)(
        free, start, end, subspace, t, batch
    )
    updates, opt_state = optimizer.update(grads, opt_state, free)
    free = optax.apply_updates(free, updates)
    free = tuple(paths.restrict(p, subspace) for p in free)
    return free, opt_state, loss

  return step


def _batch_source(batches: Batches) -> Callable[[int], Any]:
  """Step -> batch, from an iterable or a function of the step."""
  if callable(batches):
    return batches
  iterator = iter(batches)
  return lambda step: next(iterator)


def fit_curve(
    loss_fn: LossFn,
    start: PyTree,
    end: PyTree,
    batches: Batches,
    *,
    num_steps: int,
    rng: jax.Array,
    order: int = 2,
    optimizer: Optional[optax.GradientTransformation] = None,
    subspace: Optional[PyTree] = None,
    free: Optional[tuple[PyTree, ...]] = None,
) -> CurveFit:
  """Fits the free control points of a Bézier curve from start to end.

  Args:
    loss_fn: ``loss_fn(params, batch) -> scalar``; for BatchNorm models it
      should apply the model in training mode (batch statistics).
    start: the first solution's params.
    end: the second solution's params.
    batches: an iterable of batches, or ``batches(step) -> batch``.
    num_steps: the number of optimizer steps.
    rng: PRNG key for the sampled t.
    order: the curve's order n, n - 1 control points being free (unused
      when ``free`` is given).
    optimizer: optax transformation; ``optax.adam(1e-3)`` if None.
    subspace: masks the curve is restricted to, or None (dense).
    free: initial free points; evenly spaced on the line if None.

  Returns:
    The fitted free points and the loss of every step.
  """
  if free is None:
    free = paths.initial_free_points(start, end, order, subspace)
  free = tuple(paths.restrict(p, subspace) for p in free)
  if not free:
    raise ValueError('a curve of order 1 (the line) has nothing to fit')
  optimizer = optax.adam(1e-3) if optimizer is None else optimizer
  step = make_curve_step(loss_fn, optimizer)
  opt_state = optimizer.init(free)
  next_batch = _batch_source(batches)
  losses = []
  for i, key in enumerate(jax.random.split(rng, num_steps)):
    free, opt_state, loss = step(
        free, opt_state, start, end, subspace, key, next_batch(i)
    )
    losses.append(loss)
  history = np.asarray(jnp.stack(losses)) if losses else np.zeros((0,))
  return CurveFit(free=free, losses=history)
