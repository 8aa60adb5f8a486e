"""Loss landscape between solutions (the paper's Section 4.4 and Figure 6).

Straight lines and Bézier curves between two solutions (Garipov et al.
2018), in the dense space or a subspace such as the union of their masks;
curve fitting, and loss and accuracy along a path. Pure JAX, flax and
optax, for any Flax model: it imports nothing of the runner.

  subspace = analysis.union_subspace(masks_a, masks_b)  # or None: dense
  fit = analysis.fit_curve(loss_fn, params_a, params_b, batches,
                           num_steps=1000, rng=rng, subspace=subspace)
  line = analysis.evaluate_path(eval_fn, params_a, params_b)
  curve = analysis.evaluate_path(eval_fn, params_a, params_b, fit.free,
                                 subspace=subspace)
"""

from rigl_jax.analysis.batch_stats import make_batch_stats_fn
from rigl_jax.analysis.curve_fitting import CurveFit
from rigl_jax.analysis.curve_fitting import fit_curve
from rigl_jax.analysis.evaluate import evaluate_path
from rigl_jax.analysis.evaluate import t_grid
from rigl_jax.analysis.paths import bezier_point
from rigl_jax.analysis.paths import initial_free_points
from rigl_jax.analysis.paths import linear_point
from rigl_jax.analysis.paths import restrict
from rigl_jax.analysis.paths import union_subspace

__all__ = [
    'CurveFit',
    'bezier_point',
    'evaluate_path',
    'fit_curve',
    'initial_free_points',
    'linear_point',
    'make_batch_stats_fn',
    'restrict',
    't_grid',
    'union_subspace',
]
