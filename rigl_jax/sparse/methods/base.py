"""The interface every sparse training method implements.

A method is one module in this package. Its class says:

- how it trains: the initial topology, what it observes every step, when
  the topology changes and how (pure, jittable functions; ``is_update_step``
  also takes a Python int, so a loop can choose the compiled step of each
  kind on the host, see ``rigl_jax.sparse.train_state``);
- how it is configured: the config blocks it reads with their defaults
  (``config_defaults``), which of their keys are step counts that the
  training multiplier scales, how to shrink them for a two-step smoke test,
  and its construction from a config (``from_config``), which checks every
  value it reads;
- how it is reported: its display name and its training-FLOPs formula.

Methods are frozen dataclasses of hashable hyper-parameters so that they
can live in a jitted state's static fields.
"""

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, Optional

import jax
import optax

from rigl_jax.sparse import flops
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import structure as structure_lib
from rigl_jax.sparse.tree_paths import PyTree

# A config block: key -> default value (or ``Unset``).
ConfigBlock = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class SparseModelSize:
  """How big the config's sparse model is (what Small-Dense matches).

  Attributes:
    nonzeros: its nonzero parameters.
    bits: its storage: 32 bits per nonzero and a mask bit per sparse entry.
  """

  nonzeros: int
  bits: int


@dataclasses.dataclass(frozen=True)
class Unset:
  """A config default of None whose overrides must have ``type``."""

  type: type


@dataclasses.dataclass(frozen=True)
class SparseMethod:
  """A method that trains a fixed random sparse topology (the default)."""

  name: ClassVar[str] = ''
  display_name: ClassVar[str] = ''
  # False for methods that train every weight (dense, small_dense).
  uses_masks: ClassVar[bool] = True
  # False for methods whose model does not depend on the sparsity keys
  # (``sparsity``, ``distribution``, ...): the dense baseline. Reports put
  # such a method at sparsity 0, and those keys are not part of its runs'
  # identity.
  reads_sparsity: ClassVar[bool] = True
  # True when ``update_masks`` may change the masks during training.
  changes_topology: ClassVar[bool] = False
  # Dotted config keys holding step counts, scaled by the multiplier.
  scaled_step_keys: ClassVar[tuple[str, ...]] = ()

  # How each kernel's active entries are spread (``config.mask_structure``);
  # every selection of the method keeps it.
  structure: structure_lib.MaskStructure = dataclasses.field(
      default=structure_lib.UNSTRUCTURED, kw_only=True
  )

  # -- Configuration ---------------------------------------------------------

  @classmethod
  def config_defaults(cls) -> dict[str, ConfigBlock]:
    """The config blocks this method reads, with their defaults."""
    return {}

  @classmethod
  def smoke_overrides(cls, num_steps: int) -> dict[str, Any]:
    """Dotted keys that squeeze the method's schedules into ``num_steps``."""
    del num_steps
    return {}

  @classmethod
  def from_config(cls, config: Any) -> 'SparseMethod':
    """Builds the method from a run config (see ``configs/``).

    Raises:
      checks.InvalidArgument: naming the offending config key.
    """
    del config
    return cls()

  def with_structure(
      self, structure: structure_lib.MaskStructure
  ) -> 'SparseMethod':
    """This method keeping ``structure`` (``config.mask_structure``)."""
    return dataclasses.replace(self, structure=structure)

  def structure_problem(self) -> Optional[str]:
    """Why this method cannot keep ``structure``, or None."""
    return None

  def for_model(self, output_layer: str) -> 'SparseMethod':
    """This method for a model whose logits come from ``output_layer``."""
    del output_layer
    return self

  # -- Cost ------------------------------------------------------------------

  def model_width(
      self,
      width: float,
      num_params_at: Callable[[float], int],
      sparse_model: Callable[[Any], 'SparseModelSize'],
  ) -> float:
    """The width multiplier of the model this method trains.

    Args:
      width: the config's width multiplier.
      num_params_at: the parameter count of the model at a width.
      sparse_model: the size of the config's sparse model at ``width``
        given per-layer rules (as ``config.layer_sparsity``; None: the
        config's own).
    """
    del num_params_at, sparse_model
    return width

  def train_flops(self, costs: flops.RunCosts) -> float:
    """Per-example training FLOPs of the run: 3 f_S every step."""
    return costs.num_steps * flops.sparse_step(costs.sparse_flops)

  # -- Training --------------------------------------------------------------

  @property
  def skip_optimizer_step(self) -> bool:
    """Whether a topology-update step applies no optimizer step."""
    return False

  def init_masks(
      self, rng: jax.Array, params: PyTree, sparsities: PyTree
  ) -> PyTree:
    """The masks training starts from."""
    return masks_lib.random_masks(rng, params, sparsities, self.structure)

  def init_state(
      self, params: PyTree, masks: PyTree, sparsities: PyTree
  ) -> PyTree:
    """The method's own state (checkpointed with the train state).

    ``params`` are the initial weights before the masks apply.
    """
    del params, masks, sparsities
    return {}

  def observe_gradients(
      self, state: PyTree, grads: PyTree, masks: PyTree
  ) -> PyTree:
    """Updates the method state with this step's dense gradients."""
    del grads, masks
    return state

  def optimizer_step(
      self,
      tx: optax.GradientTransformationExtraArgs,
      opt_state: optax.OptState,
      params: PyTree,
      grads: PyTree,
      masks: PyTree,
      state: PyTree,
      step: Any,
  ) -> tuple[PyTree, optax.OptState, PyTree]:
    """This step's params, optimizer state and method state.

    By default ``tx`` (the sparse optimizer) steps the active weights. A
    method that also trains weights outside the forward pass (Top-KAST)
    keeps them in its state and steps them here.
    """
    updates, opt_state = tx.update(
        grads, opt_state, params, masks=masks, step=step
    )
    return optax.apply_updates(params, updates), opt_state, state

  def is_update_step(self, step: Any) -> Any:
    """Whether the topology changes at ``step`` (Python or traced int)."""
    del step
    return False

  def update_masks(
      self,
      rng: jax.Array,
      step: Any,
      params: PyTree,
      grads: PyTree,
      masks: PyTree,
      state: PyTree,
  ) -> PyTree:
    """The new masks. Weights and optimizer state are reset by the caller."""
    del rng, step, params, grads, state
    return masks

  def init_grown(
      self,
      rng: jax.Array,
      weights: PyTree,
      grads: PyTree,
      grown: PyTree,
      params: PyTree,
  ) -> PyTree:
    """``params`` with the entries just grown set (by default left at 0).

    Args:
      rng: a key of this update.
      weights: the params ``update_masks`` saw.
      grads: this step's dense gradients.
      grown: bool per masked leaf, True where an entry was grown.
      params: the params after the update (grown entries are zero).
    """
    del rng, weights, grads, grown
    return params
