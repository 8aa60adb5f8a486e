"""Orbax checkpoints of a run: the train state plus JSON run metadata.

The input pipelines are pure functions of (seed, step), so the state's
step is also the input position; the state holds every rng.
"""

from typing import Any, Optional

import jax
import orbax.checkpoint as ocp


class Checkpointer:
  """Saves and restores ``TrainState`` and metadata under one directory."""

  def __init__(self, directory: str, max_to_keep: int):
    self._manager = ocp.CheckpointManager(
        directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                             create=True))

  def latest_step(self) -> Optional[int]:
    """The step of the newest complete checkpoint, or None."""
    return self._manager.latest_step()

  def save(self, step: int, state: Any, metadata: dict[str, Any]) -> None:
    """Starts saving ``state`` at ``step`` (finishes in the background)."""
    self._manager.save(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                metadata=ocp.args.JsonSave(metadata)),
        force=True)

  def restore(self, step: int,
              abstract_state: Any) -> tuple[Any, dict[str, Any]]:
    """The state and metadata saved at ``step``.

    Args:
      step: a step with a complete checkpoint.
      abstract_state: ``jax.ShapeDtypeStruct`` leaves (with shardings) of the
        state to restore into.
    """
    restored = self._manager.restore(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state),
            metadata=ocp.args.JsonRestore()))
    return restored.state, restored.metadata

  def wait_until_finished(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()


def with_sharding(abstract_tree: Any, sharding: jax.sharding.Sharding) -> Any:
  """``abstract_tree``'s shapes and dtypes, placed with ``sharding``."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
      abstract_tree)
