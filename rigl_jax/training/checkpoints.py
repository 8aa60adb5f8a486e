"""Orbax checkpoints of a run: train state, train-metric accumulators, metadata.

The input pipelines are pure functions of (seed, step), so the state's step
is also the input position; the state holds every rng. Orbax writes each
checkpoint under a temporary name and renames it when complete, so a
checkpoint cut short by a kill is never listed; one that is listed but
cannot be read is skipped in favour of the previous one.
"""

import time
from typing import Any, Optional

from absl import logging
import jax
import ml_collections
from etils import epath
import orbax.checkpoint as ocp

from rigl_jax import errors
from rigl_jax.training import config as config_lib

# Keys a resumed run may change (see config.SAFE_TO_CHANGE); every other key
# of the resolved config must match the checkpoint's.
SAFE_TO_CHANGE = config_lib.SAFE_TO_CHANGE


def _flatten(tree: Any, prefix: str = '') -> dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat


def _json_value(value: Any) -> Any:
  """Tuples as lists, recursively, as JSON stores them."""
  if isinstance(value, (tuple, list)):
    return [_json_value(v) for v in value]
  return value


def run_identity(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Every key of the resolved config but ``SAFE_TO_CHANGE``, JSON-able."""
  return {
      key: _json_value(value)
      for key, value in _flatten(config.to_dict()).items()
      if key not in SAFE_TO_CHANGE
  }


def check_resumable(
    saved: dict[str, Any], current: dict[str, Any], directory: str
) -> None:
  """Raises ``ResumeError`` naming every key that differs (fails closed)."""
  missing = object()
  changed = sorted(
      key
      for key in set(saved) | set(current)
      if saved.get(key, missing) != current.get(key, missing)
  )
  if changed:
    details = '; '.join(
        f'config.{k} was {saved.get(k, "absent")!r}, now '
        f'{current.get(k, "absent")!r}'
        for k in changed
    )
    raise errors.ResumeError(
        f'cannot resume the run in {directory}: {details}. Restore those '
        'values or use a new --workdir.'
    )


class Checkpointer:
  """Saves and restores a run's state under one directory."""

  def __init__(self, directory: str, max_to_keep: int):
    self.directory = directory
    self._manager = ocp.CheckpointManager(
        directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True
        ),
    )

  def all_steps(self) -> list[int]:
    """Steps of the complete checkpoints, oldest first."""
    return sorted(self._manager.all_steps())

  def save(
      self, step: int, state: Any, train_metrics: Any, metadata: dict[str, Any]
  ) -> None:
    """Starts saving at ``step``; the write finishes in the background."""
    self._manager.save(
        step,
        args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            train_metrics=ocp.args.StandardSave(train_metrics),
            metadata=ocp.args.JsonSave(metadata),
        ),
        force=True,
    )

  def read_metadata(self, step: int) -> dict[str, Any]:
    return self._manager.restore(
        step, args=ocp.args.Composite(metadata=ocp.args.JsonRestore())
    ).metadata

  def restore_latest(
      self, abstract_state: Any, abstract_metrics: Any, identity: dict[str, Any]
  ) -> Optional[tuple[Any, Any, dict[str, Any]]]:
    """(state, train_metrics, metadata) of the newest readable checkpoint.

    Args:
      abstract_state: ``jax.ShapeDtypeStruct`` leaves (with shardings) of the
        state to restore into.
      abstract_metrics: the same for the train-metric accumulators.
      identity: ``run_identity`` of the current config.

    Returns:
      None when there is no checkpoint.

    Raises:
      ResumeError: the checkpoints belong to a run with another identity, or
        none of them can be read.
    """
    steps = self.all_steps()
    for step in reversed(steps):
      try:
        metadata = self.read_metadata(step)
      except Exception as e:  # pylint: disable=broad-except
        self._set_aside(step, e)
        continue
      check_resumable(metadata['identity'], identity, self.directory)
      try:
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state),
                train_metrics=ocp.args.StandardRestore(abstract_metrics),
            ),
        )
      except Exception as e:  # pylint: disable=broad-except
        self._set_aside(step, e)
        continue
      return restored.state, restored.train_metrics, metadata
    if steps:
      raise errors.ResumeError(
          f'none of the checkpoints {steps} in {self.directory} can be read'
      )
    return None

  def _set_aside(self, step: int, error: Exception) -> None:
    """Renames an unreadable checkpoint so the run can save that step again."""
    path = epath.Path(self.directory) / str(step)
    aside = path.with_name(f'{path.name}.unreadable-{int(time.time())}')
    logging.warning(
        'Checkpoint %s cannot be read (%s); moved to %s and '
        'falling back to an earlier one.',
        path,
        error,
        aside,
    )
    path.rename(aside)
    self._manager.reload()

  def wait_until_finished(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()


def with_sharding(abstract_tree: Any, sharding: jax.sharding.Sharding) -> Any:
  """``abstract_tree``'s shapes and dtypes, placed with ``sharding``."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
      abstract_tree,
  )
