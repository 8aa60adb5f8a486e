"""The interface every sparse training method implements.

A method decides the initial topology, what it observes every step, when
the topology changes and how. Every function is pure and jittable, and
``is_update_step`` also takes a Python int, so a loop can choose the
compiled step of each kind on the host (see ``rigl_jax.train_state``).
Methods are frozen dataclasses of hashable hyper-parameters so that they
can live in a jitted state's static fields.
"""

import dataclasses
from typing import Any, ClassVar

import jax

from rigl_jax.sparse import masks as masks_lib

PyTree = Any


@dataclasses.dataclass(frozen=True)
class SparseMethod:
  """A method that trains a fixed random sparse topology (the default)."""

  name: ClassVar[str] = ''
  # False for methods that train every weight (dense, small_dense).
  uses_masks: ClassVar[bool] = True
  # True when ``update_masks`` may change the masks during training.
  changes_topology: ClassVar[bool] = False

  @classmethod
  def from_config(cls, config: Any) -> 'SparseMethod':
    """Builds the method from a run config (see ``configs/``)."""
    del config
    return cls()

  @property
  def skip_optimizer_step(self) -> bool:
    """Whether a topology-update step applies no optimizer step."""
    return False

  def init_masks(self, rng: jax.Array, params: PyTree,
                 sparsities: PyTree) -> PyTree:
    """The masks training starts from."""
    return masks_lib.random_masks(rng, params, sparsities)

  def init_state(self, params: PyTree, masks: PyTree,
                 sparsities: PyTree) -> PyTree:
    """The method's own state (checkpointed with the train state)."""
    del params, masks, sparsities
    return {}

  def observe_gradients(self, state: PyTree, grads: PyTree,
                        masks: PyTree) -> PyTree:
    """Updates the method state with this step's dense gradients."""
    del grads, masks
    return state

  def is_update_step(self, step: Any) -> Any:
    """Whether the topology changes at ``step`` (Python or traced int)."""
    del step
    return False

  def update_masks(self, rng: jax.Array, step: Any, params: PyTree,
                   grads: PyTree, masks: PyTree, state: PyTree) -> PyTree:
    """The new masks. Weights and optimizer state are reset by the caller."""
    del rng, step, params, grads, state
    return masks
