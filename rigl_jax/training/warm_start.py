"""Starting a run from other runs' checkpoints: warm starts, lottery tickets.

``config.warm_start`` (all empty by default):

- ``workdir``: start from the latest checkpoint of that run: its params,
  masks and BatchNorm statistics, and with ``optimizer_state`` its
  optimizer state. This run's method, schedules and step count start afresh
  at step 0 (e.g. RigL restarted from a static solution).
- ``masks_from``: train from this run's own initial values with the masks
  of that run's latest checkpoint (with ``method='static'``, the
  lottery-ticket experiment); ``init_seed`` takes the initial values of
  another seed instead.

The other run must have the same model and data set; any difference is an
error naming the key, and so is a leaf whose shape differs. Its checkpoint
must pass the checksum a resume verifies.
"""

import dataclasses
import os
from typing import Any, Callable, Optional

import jax
import ml_collections
import orbax.checkpoint as ocp

from rigl_jax import errors
from rigl_jax.sparse import checks
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import topology_stats
from rigl_jax.sparse import tree_paths
from rigl_jax.training import checkpoints as checkpoints_lib
from rigl_jax.training import identity as identity_lib

# Keys whose values must agree with the other run's: they shape the params.
MODEL_KEYS = ('model.name', 'model.width', 'model.options', 'dataset.name')


def _latest_step(key: str, workdir: str) -> tuple[str, int]:
  """The checkpoint directory of ``workdir`` and its newest step."""
  directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
  steps = []
  if os.path.isdir(directory):
    steps = [int(name) for name in os.listdir(directory) if name.isdigit()]
  checks.require(
      bool(steps), key, f'{workdir!r} holds no checkpoint (no {directory}/N)'
  )
  return directory, max(steps)


def _metadata(directory: str, step: int) -> dict[str, Any]:
  return checkpoints_lib.Checkpointer(directory, max_to_keep=1).read_metadata(
      step
  )


def _identity(directory: str, step: int) -> dict[str, Any]:
  return identity_lib.restrict(_metadata(directory, step)['identity'])


def _check_intact(key: str, directory: str, step: int) -> None:
  """Verifies the checkpoint's checksum, as a resume does.

  A resume falls back to an earlier checkpoint; a run started from
  another's stops instead: it would start from other values than those
  asked for.

  Raises:
    errors.DataFileError: naming the checkpoint, unreadable or damaged.
  """
  path = os.path.join(directory, str(step))
  remedy = (
      'move it away to start from an earlier checkpoint of that run, or '
      'train that run again'
  )
  try:
    expected = _metadata(directory, step).get('checksum')
    if expected is None:  # Saved before checkpoints had checksums.
      return
    actual = checkpoints_lib.saved_checksum(os.path.join(path, 'state'))
  except Exception as e:  # pylint: disable=broad-except
    cause = ' '.join(str(e).split())[:300]
    raise errors.DataFileError(
        f'{key}: the checkpoint {path} cannot be read '
        f'({type(e).__name__}: {cause}); {remedy}'
    ) from None
  if actual != expected:
    raise errors.DataFileError(
        f'{key}: the checkpoint {path} is damaged: its arrays do not match '
        f'the checksum saved with them; {remedy}'
    )


@dataclasses.dataclass(frozen=True)
class WarmStart:
  """Where a run starts from; all empty: from its own initial state.

  Attributes:
    workdir: a run whose latest params and masks it starts from.
    optimizer_state: with ``workdir``, its optimizer state too.
    masks_from: a run whose latest masks it trains from its own values.
    init_seed: with ``masks_from``, the seed of the initial values.
    seed: the run's own seed.
  """

  workdir: str = ''
  optimizer_state: bool = False
  masks_from: str = ''
  init_seed: Optional[int] = None
  seed: int = 0


def from_config(
    run: ml_collections.ConfigDict, identity: dict[str, Any]
) -> WarmStart:
  """Checks the warm-start keys and the other run's model (no arrays read).

  Args:
    run: the resolved config.
    identity: the run's identity (``rigl_jax.training.identity``).

  Raises:
    checks.InvalidArgument: naming the ``warm_start`` key at fault.
  """
  block = run.warm_start
  checks.require(
      not (block.workdir and block.masks_from),
      'warm_start.masks_from',
      'set either warm_start.workdir (params and masks) or '
      'warm_start.masks_from (masks only), not both',
  )
  checks.require(
      block.init_seed is None or bool(block.masks_from),
      'warm_start.init_seed',
      'chooses the initial values of a warm_start.masks_from run; set it',
  )
  checks.require(
      not block.optimizer_state or bool(block.workdir),
      'warm_start.optimizer_state',
      'restores the optimizer state of warm_start.workdir; set it',
  )
  for key in ('workdir', 'masks_from'):
    if not block[key]:
      continue
    other = _identity(*_latest_step(f'warm_start.{key}', block[key]))
    for model_key in MODEL_KEYS:
      mine = {k: v for k, v in identity.items() if k.startswith(model_key)}
      theirs = {k: v for k, v in other.items() if k.startswith(model_key)}
      checks.require(
          mine == theirs,
          f'warm_start.{key}',
          f'{block[key]!r} trained another model: {model_key} is '
          f'{theirs or "unset"} there and {mine or "unset"} here',
      )
  return WarmStart(
      workdir=block.workdir,
      optimizer_state=block.optimizer_state,
      masks_from=block.masks_from,
      init_seed=block.init_seed,
      seed=run.seed,
  )


def _restore(directory: str, step: int, target: dict[str, Any]) -> Any:
  path = os.path.join(directory, str(step), 'state')
  # Explicit restore args: arrays land where the target's live, and orbax
  # does not warn about reading shardings from the file.
  return ocp.PyTreeCheckpointer().restore(
      path,
      args=ocp.args.PyTreeRestore(
          item=target,
          restore_args=ocp.checkpoint_utils.construct_restore_args(target),
          partial_restore=True,
      ),
  )


def latest_state(workdir: str, target: Optional[Any] = None) -> Any:
  """The newest checkpoint of ``workdir``: its state as nested dicts.

  Args:
    workdir: a run's workdir.
    target: a dict of state fields with the structures to restore into
      (e.g. ``{'params': ..., 'masks': ...}``); None reads every field as
      saved (tuples as lists, arrays as numpy).
  """
  directory, step = _latest_step('workdir', workdir)
  path = os.path.join(directory, str(step), 'state')
  if target is None:
    return checkpoints_lib.read_as_saved(path)
  return _restore(directory, step, target)


def _check_shapes(key: str, mine: Any, theirs: Any) -> None:
  theirs = dict(tree_paths.named_leaves(theirs))
  for path, leaf in tree_paths.named_leaves(mine):
    shape = getattr(theirs.get(path), 'shape', None)
    checks.require(
        shape == leaf.shape,
        key,
        f'{path} has shape {shape} there and {leaf.shape} here',
    )


def apply(
    block: WarmStart,
    state: Any,
    init_state: Callable[[jax.Array], Any],
    place: Callable[[Any], Any],
) -> Any:
  """The initial ``state`` of a run with its warm start applied.

  Args:
    block: where the run starts from.
    state: the run's own initial state.
    init_state: rng -> an initial state (for ``init_seed``).
    place: puts restored arrays where the state lives (e.g. replicated).

  Returns:
    ``state`` itself when no warm start is set.
  """
  if block.workdir:
    key = 'warm_start.workdir'
    directory, step = _latest_step(key, block.workdir)
    _check_intact(key, directory, step)
    target = {'params': state.params, 'masks': state.masks}
    if state.batch_stats is not None:
      target['batch_stats'] = state.batch_stats
    if block.optimizer_state:
      target['opt_state'] = state.opt_state
    restored = _restore(directory, step, target)
    _check_shapes(key, target, restored)
    masks = place(restored['masks'])
    return state.replace(
        params=masks_lib.apply_masks(place(restored['params']), masks),
        masks=masks,
        topology_stats=topology_stats.TopologyStats.create(masks),
        batch_stats=place(restored.get('batch_stats', state.batch_stats)),
        opt_state=place(restored.get('opt_state', state.opt_state)),
    )
  if block.masks_from:
    key = 'warm_start.masks_from'
    directory, step = _latest_step(key, block.masks_from)
    _check_intact(key, directory, step)
    restored = _restore(directory, step, {'masks': state.masks})
    _check_shapes(key, {'masks': state.masks}, restored)
    if block.init_seed is not None:
      state = init_state(jax.random.PRNGKey(block.init_seed))
    masks = place(restored['masks'])
    return state.replace(
        params=masks_lib.apply_masks(state.params, masks),
        masks=masks,
        topology_stats=topology_stats.TopologyStats.create(masks),
    )
  return state


def describe(block: WarmStart) -> Optional[str]:
  """One line saying where the run starts from, or None."""
  if block.workdir:
    extra = ' and optimizer state' if block.optimizer_state else ''
    return f'Starting from the params and masks{extra} of {block.workdir}.'
  if block.masks_from:
    seed = block.seed if block.init_seed is None else block.init_seed
    return (
        f'Training the masks of {block.masks_from} from the initial '
        f'values of seed {seed}.'
    )
  return None
