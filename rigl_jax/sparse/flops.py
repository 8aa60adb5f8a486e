"""Training FLOPs per step of the paper's methods, from inference FLOPs.

``f_D`` and ``f_S`` are the dense and sparse inference FLOPs of one example
(a forward pass); a training step costs the forward pass, the gradients
w.r.t. the activations and the gradients w.r.t. the weights (RigL paper,
appendix H). Methods combine these into their run's total
(``SparseMethod.train_flops``).
"""

import dataclasses
from collections.abc import Callable, Mapping


@dataclasses.dataclass(frozen=True)
class RunCosts:
  """What a method's training-FLOPs formula needs to know of a run.

  Attributes:
    num_steps: the run's steps (training multiplier applied).
    dense_flops: f_D of the trained model.
    sparse_flops: f_S at the final per-layer sparsities.
    sparsities: the final sparsity of each sparse layer, by path.
    flops_at: f at other per-layer sparsities (e.g. during pruning).
  """

  num_steps: int
  dense_flops: float
  sparse_flops: float
  sparsities: Mapping[str, float]
  flops_at: Callable[[Mapping[str, float]], float]


def dense_step(dense_flops: float) -> float:
  """Forward, input gradients and weight gradients, all dense: 3 f_D."""
  return 3.0 * dense_flops


def sparse_step(sparse_flops: float) -> float:
  """All three passes sparse: 3 f_S."""
  return 3.0 * sparse_flops


def dense_gradient_step(sparse_flops: float, dense_flops: float) -> float:
  """Sparse forward and input gradients, dense weight gradients: 2 f_S + f_D."""
  return 2.0 * sparse_flops + dense_flops
