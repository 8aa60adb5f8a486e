"""Orbax checkpoints of a run: train state, train-metric accumulators, metadata.

The input pipelines are pure functions of (seed, step), so the state's step
is also the input position; the state holds every rng. Orbax writes each
checkpoint under a temporary name and renames it when complete, so a
checkpoint cut short by a kill is never listed; one that is listed but
cannot be read is skipped in favour of the previous one.
"""

import hashlib
import json
import time
from typing import Any, Optional

from absl import logging
import jax
import numpy as np
from etils import epath
import orbax.checkpoint as ocp

from rigl_jax import errors
from rigl_jax.training import identity as identity_lib


def resume_error(
    directory: str, changes: dict[str, tuple[Any, Any]]
) -> errors.ResumeError:
  details = '; '.join(
      f'config.{k} was {old!r}, now {new!r}'
      for k, (old, new) in changes.items()
  )
  return errors.ResumeError(
      f'cannot resume the run in {directory}: {details}. Restore those '
      'values, use a new --workdir, or pass --allow_config_change to '
      'continue it with the new values.'
  )


def check_resumable(
    saved: dict[str, Any],
    current: dict[str, Any],
    directory: str,
    allow_config_change: bool = False,
) -> dict[str, tuple[Any, Any]]:
  """The changed keys; raises ``ResumeError`` naming them (fails closed).

  With ``allow_config_change`` the changes are logged and returned instead.
  """
  changes = identity_lib.changes(saved, current)
  if changes and not allow_config_change:
    raise resume_error(directory, changes)
  for key, (old, new) in changes.items():
    logging.warning(
        'Resuming with a changed config.%s: %r, was %r.', key, new, old
    )
  return changes


def read_as_saved(path: Any) -> Any:
  """The pytree saved in the orbax item folder ``path``, arrays as numpy.

  No target structure: tuples come back as lists.
  """
  path = epath.Path(path)
  # The handler reads the item's tree metadata; the checkpointer would also
  # look for step metadata in the item folder, and warn.
  saved = ocp.PyTreeCheckpointHandler().metadata(path).tree
  as_numpy = jax.tree.map(
      lambda _: ocp.RestoreArgs(restore_type=np.ndarray), saved
  )
  return ocp.PyTreeCheckpointer().restore(
      path, args=ocp.args.PyTreeRestore(restore_args=as_numpy)
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
    # The step whose write may still run in the background: its failure
    # shows at the next save or wait, and must name this step.
    self._writing = None
    self._failed = False

  def all_steps(self) -> list[int]:
    """Steps of the complete checkpoints, oldest first."""
    return sorted(self._manager.all_steps())

  def save(
      self, step: int, state: Any, train_metrics: Any, metadata: dict[str, Any]
  ) -> None:
    """Starts saving at ``step``; the write finishes in the background.

    The metadata gets a checksum of the state, verified at restore.

    Raises:
      errors.WorkdirError: the save (or the previous one) failed, naming
        its step, the directory and the cause.
    """
    metadata = {**metadata, 'checksum': checksum(state)}
    self.wait_until_finished()  # The previous save's failure is its own.
    try:
      self._manager.save(
          step,
          args=ocp.args.Composite(
              state=ocp.args.StandardSave(state),
              train_metrics=ocp.args.StandardSave(train_metrics),
              metadata=ocp.args.JsonSave(metadata),
          ),
          force=True,
      )
    except Exception as e:  # pylint: disable=broad-except
      raise self._save_error(step, e) from None
    self._writing = step

  def _save_error(self, step: int, error: Exception) -> errors.WorkdirError:
    """The one-line error of the failed save at ``step``.

    orbax's background threads have logged the details (at debug level in
    ``rigl_jax.main``); the checkpoints before ``step`` are untouched.
    """
    self._failed = True
    cause = ' '.join(str(error).split())[:300]
    return errors.WorkdirError(
        f'could not save the checkpoint at step {step} in {self.directory}: '
        f'{type(error).__name__}: {cause}; once the cause is fixed, the same '
        'command resumes from the last complete checkpoint'
    )

  def read_metadata(self, step: int) -> dict[str, Any]:
    return self._manager.restore(
        step, args=ocp.args.Composite(metadata=ocp.args.JsonRestore())
    ).metadata

  def restore_latest(
      self,
      abstract_state: Any,
      abstract_metrics: Any,
      identity: dict[str, Any],
      allow_config_change: bool = False,
  ) -> Optional[tuple[Any, Any, dict[str, Any]]]:
    """(state, train_metrics, metadata) of the newest readable checkpoint.

    Args:
      abstract_state: ``jax.ShapeDtypeStruct`` leaves (with shardings) of the
        state to restore into.
      abstract_metrics: the same for the train-metric accumulators.
      identity: the run's identity (``rigl_jax.training.identity``).
      allow_config_change: resume even if the identity differs (logged).

    Returns:
      None when there is no checkpoint; the metadata gets
      'config_changes' when the identity differs.

    Raises:
      ResumeError: the checkpoints belong to a run with another identity
        (unless allowed) or another state structure, or none can be read.
    """
    steps = self.all_steps()
    for step in reversed(steps):
      try:
        metadata = self.read_metadata(step)
      except Exception as e:  # pylint: disable=broad-except
        self._set_aside(step, e)
        continue
      if not isinstance(metadata, dict) or 'identity' not in metadata:
        raise errors.ResumeError(
            f'the checkpoint at step {step} in {self.directory} does not say '
            'which config wrote it (no identity in its metadata); use a new '
            '--workdir'
        )
      changes = check_resumable(
          metadata['identity'], identity, self.directory, allow_config_change
      )
      restored = self._restore_step(
          step, abstract_state, abstract_metrics, changes
      )
      if restored is None:
        continue
      expected = metadata.get('checksum')
      if expected is not None and checksum(restored.state) != expected:
        self._set_aside(step, ValueError('its checksum does not match'))
        continue
      metadata['config_changes'] = {k: list(v) for k, v in changes.items()}
      return restored.state, restored.train_metrics, metadata
    if steps:
      raise errors.ResumeError(
          f'none of the checkpoints {steps} in {self.directory} can be read'
      )
    return None

  def _restore_step(
      self,
      step: int,
      abstract_state: Any,
      abstract_metrics: Any,
      changes: dict[str, tuple[Any, Any]],
  ) -> Any:
    """The checkpoint at ``step``; None if unreadable (then set aside).

    Raises:
      ResumeError: it is intact but holds another structure of state.
    """
    try:
      return self._manager.restore(
          step,
          args=ocp.args.Composite(
              state=ocp.args.StandardRestore(abstract_state),
              train_metrics=ocp.args.StandardRestore(abstract_metrics),
          ),
      )
    except Exception as e:  # pylint: disable=broad-except
      if self._readable(step):
        # Intact, but not this config's state: never set it aside.
        cause = (
            '; '.join(
                f'config.{k} was {old!r}, now {new!r}'
                for k, (old, new) in changes.items()
            )
            or 'the code changed'
        )
        raise errors.ResumeError(
            f'the checkpoint at step {step} in {self.directory} is intact '
            "but does not match this config: the optimizer state's "
            f"structure (or the model's) changed ({cause}); restore the "
            'original values or use a new --workdir'
        ) from None
      self._set_aside(step, e)
      return None

  def _readable(self, step: int) -> bool:
    """Whether the state at ``step`` reads as saved (no target structure)."""
    try:
      read_as_saved(epath.Path(self.directory) / str(step) / 'state')
    except Exception:  # pylint: disable=broad-except
      return False
    return True

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
    """Waits for the save in the background.

    Raises:
      errors.WorkdirError: it failed (naming its step and the cause).
    """
    try:
      self._manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except
      raise self._save_error(self._last_save(), e) from None
    finally:
      self._writing = None

  def _last_save(self) -> int:
    """The step of the save that may still run, else the newest one."""
    if self._writing is not None:
      return self._writing
    return max(self.all_steps(), default=0)

  def close(self) -> None:
    """Waits for the save in the background, and closes orbax's manager.

    After a failed save (already raised) orbax may raise it again here;
    that goes to the debug log, not over the error being reported.
    """
    try:
      self._manager.close()
    except Exception as e:  # pylint: disable=broad-except
      if not self._failed:
        raise self._save_error(self._last_save(), e) from None
      logging.debug('Closing the checkpoints after a failed save: %r', e)


# orbax's tree metadata: the file, and the key type of a sequence index.
_TREE_METADATA_FILE = '_METADATA'
_SEQUENCE_KEY = 1


def saved_checksum(path: Any) -> str:
  """``checksum`` of the state saved in the orbax item folder ``path``.

  Needs no target structure (a warm start's source state has its own):
  orbax's tree metadata lists the leaves in the order they were saved,
  which is the order ``checksum`` hashed them in at save.

  Raises:
    Exception: of orbax or tensorstore, when the files cannot be read.
  """
  path = epath.Path(path)
  saved = read_as_saved(path)
  entries = json.loads((path / _TREE_METADATA_FILE).read_text())
  leaves = []
  for entry in entries['tree_metadata'].values():
    node = saved
    for key in entry['key_metadata']:
      node = node[
          int(key['key']) if key['key_type'] == _SEQUENCE_KEY else key['key']
      ]
    leaves.append(node)  # None and empty containers: no leaves, as at save.
  return checksum(leaves)


def checksum(tree: Any) -> str:
  """SHA-256 of every leaf's dtype, shape and bytes (this process's copy)."""
  digest = hashlib.sha256()
  for leaf in jax.tree.leaves(tree):
    if isinstance(leaf, jax.Array):
      if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        leaf = jax.random.key_data(leaf)
      leaf = leaf.addressable_data(0)  # The state is replicated.
    array = np.ascontiguousarray(np.asarray(leaf))
    digest.update(f'{array.dtype}{array.shape}'.encode())
    digest.update(array.tobytes())
  return digest.hexdigest()
