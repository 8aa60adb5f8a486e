"""Loss and accuracy along a path, at a grid of t (the paper's Figure 6)."""

from typing import Any, Callable, Optional, Sequence

import jax
import numpy as np

from rigl_jax.analysis import paths
from rigl_jax.sparse.tree_paths import PyTree

# ``eval_fn(params, model_state) -> {'loss': ..., 'accuracy': ...}``.
EvalFn = Callable[[PyTree, Any], dict[str, Any]]

# One compilation serves every t: t and the points are arguments.
_point = jax.jit(paths.bezier_point)


def t_grid(num_points: int = 21) -> np.ndarray:
  """Evenly spaced t from exactly 0 to exactly 1 (0, 0.05, ..., 1 by default)."""
  return np.linspace(0.0, 1.0, num_points)


def evaluate_path(
    eval_fn: EvalFn,
    start: PyTree,
    end: PyTree,
    free: Sequence[PyTree] = (),
    *,
    ts: Optional[Sequence[float]] = None,
    subspace: Optional[PyTree] = None,
    model_state: Any = None,
    recompute_batch_stats: Optional[Callable[[PyTree], PyTree]] = None,
) -> dict[str, np.ndarray]:
  """Evaluates the curve (the straight line if ``free`` is empty) at each t.

  Args:
    eval_fn: ``eval_fn(params, model_state) -> dict`` of scalar metrics.
    start: the first solution's params.
    end: the second solution's params.
    free: the curve's free control points.
    ts: where to evaluate; ``t_grid()`` if None.
    subspace: the curve's subspace masks, or None (dense).
    model_state: what ``eval_fn`` receives at every t (e.g. None).
    recompute_batch_stats: ``f(params) -> batch_stats``, called at every t
      and passed to ``eval_fn`` as its model state (BatchNorm models; see
      ``batch_stats.make_batch_stats_fn``).

  Returns:
    ``{'t': ts, metric: values}`` with one value per t for every metric.
  """
  ts = t_grid() if ts is None else np.asarray(ts, np.float64)
  rows = []
  for t in ts:
    params = _point(start, tuple(free), end, t, subspace)
    if recompute_batch_stats is not None:
      model_state = recompute_batch_stats(params)
    rows.append(eval_fn(params, model_state))
  metrics = {k: np.array([float(row[k]) for row in rows]) for k in rows[0]}
  return {'t': ts, **metrics}
