r"""A run's masks and masked params as files that other tools read.

  python -m rigl_jax.export --workdir=/tmp/mnist --out=/tmp/mnist_export

reads the newest checkpoint of the workdir that can be read (or the one of
``--step``) and writes into ``--out``:

- ``masks.npz``: one boolean array per masked parameter, keyed by its
  '/'-joined path (``rigl_jax.sparse.tree_paths``, e.g. 'Dense_0/kernel');
  dense parameters have none.
- ``params.npz``: every parameter under the same keys, masked ones with
  their inactive entries exactly 0.
- ``batch_stats.npz``: BatchNorm running statistics, for models with them.
- ``meta.json``: the run's identity, the step, the achieved sparsity of each
  masked layer and overall, and the mask structure. Written last: an
  ``--out`` holding it holds a complete export.

``load(DIR, form=...)`` turns an export (or a workdir's newest checkpoint)
into ``(apply_fn, variables)``: the masked model or one of its compact
inference forms (``rigl_jax.export.forms``), all giving the same logits.

Nothing here imports TensorFlow, and the workdir is only read.
"""

import json
import zipfile
from typing import Any, Optional

from absl import logging
from etils import epath
from flax import traverse_util
import jax
import numpy as np

from rigl_jax import data
from rigl_jax import errors
from rigl_jax import models
from rigl_jax.export import forms
from rigl_jax.sparse import masks as masks_lib
from rigl_jax.sparse import tree_paths
from rigl_jax.training import build as build_lib
from rigl_jax.training import checkpoints as checkpoints_lib
from rigl_jax.training import config as config_lib
from rigl_jax.training import identity as identity_lib
from rigl_jax.training import workdir as workdir_lib

# Bumped when a file's layout changes (2: batch_stats.npz).
FORMAT_VERSION = 2
MASKS_FILE = 'masks.npz'
PARAMS_FILE = 'params.npz'
BATCH_STATS_FILE = 'batch_stats.npz'
META_FILE = 'meta.json'
FORMS = forms.FORMS


def checkpoint_steps(workdir: str) -> tuple[epath.Path, list[int]]:
  """The checkpoint directory of ``workdir`` and its steps, oldest first.

  Raises:
    errors.WorkdirError: ``workdir`` does not exist or holds no checkpoint.
  """
  path = epath.Path(workdir_lib.resolve(workdir))
  if not path.is_dir():
    raise errors.WorkdirError(f'{path} does not exist (no such workdir)')
  directory = path / 'checkpoints'
  steps = []
  if directory.is_dir():
    steps = sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())
  if not steps:
    raise errors.WorkdirError(f'{path} holds no checkpoint (no {directory}/N)')
  return directory, steps


def resolved_out(out: Optional[str]) -> str:
  """``out`` as an absolute path (local) or as given (remote)."""
  if not out or not str(out).strip():
    raise errors.WorkdirError('--out must name a directory, got ""')
  return workdir_lib.resolve(out)


def _cause(error: Exception) -> str:
  return f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"


def _read(directory: epath.Path, step: int) -> tuple[dict[str, Any], Any]:
  """(identity, state as saved) of the checkpoint at ``step``."""
  checkpointer = checkpoints_lib.Checkpointer(str(directory), max_to_keep=1)
  try:
    metadata = checkpointer.read_metadata(step)
  finally:
    checkpointer.close()
  if not isinstance(metadata, dict) or 'identity' not in metadata:
    raise ValueError('its metadata holds no identity')
  state = checkpoints_lib.read_as_saved(directory / str(step) / 'state')
  if 'params' not in state:
    raise ValueError('its state holds no params')
  return identity_lib.restrict(metadata['identity']), state


def _read_checkpoint(
    directory: epath.Path, steps: list[int], step: Optional[int]
) -> tuple[int, dict[str, Any], Any]:
  """(step, identity, state) of ``step``, or of the newest readable one.

  Raises:
    errors.WorkdirError: ``step`` cannot be read, or no checkpoint can be
      read.
  """
  if step is not None:
    try:
      return step, *_read(directory, step)
    except Exception as e:  # pylint: disable=broad-except
      raise errors.WorkdirError(
          f'cannot read the checkpoint {directory / str(step)}: {_cause(e)}'
      ) from None
  for candidate in reversed(steps):
    try:
      return candidate, *_read(directory, candidate)
    except Exception as e:  # pylint: disable=broad-except
      logging.warning(
          'Checkpoint %s cannot be read (%s); falling back to an earlier one.',
          directory / str(candidate),
          _cause(e),
      )
  raise errors.WorkdirError(
      f'none of the checkpoints {steps} in {directory} can be read'
  )


def _batch_stats(state: Any) -> dict[str, np.ndarray]:
  """BatchNorm statistics of a state as saved, keyed by path ({}: none)."""
  return {
      path: np.asarray(leaf)
      for path, leaf in tree_paths.named_leaves(state.get('batch_stats'))
  }


def _arrays(state: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
  """(masks, masked params) of a state as saved, keyed by path."""
  # Dense leaves' masks are saved as None, which named_leaves skips.
  masks = {
      path: np.asarray(mask).astype(bool)
      for path, mask in tree_paths.named_leaves(state.get('masks'))
  }
  params = {
      path: np.asarray(leaf)
      for path, leaf in tree_paths.named_leaves(state['params'])
  }
  for path, mask in masks.items():
    param = params.get(path)
    if param is None or param.shape != mask.shape:
      raise ValueError(
          f'the mask {path} of shape {mask.shape} has no parameter of its '
          f'shape ({getattr(param, "shape", "none")})'
      )
    params[path] = np.where(mask, param, np.zeros((), param.dtype))
  return masks, params


def _write_npz(
    path: epath.Path, arrays: dict[str, np.ndarray], compress: bool
) -> None:
  """As ``np.savez``, for any key ('/' included); replaces ``path`` whole."""
  temporary = path.with_name(f'{path.name}.tmp')
  compression = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
  with temporary.open('wb') as f:
    with zipfile.ZipFile(f, 'w', compression=compression) as archive:
      for key, array in arrays.items():
        with archive.open(f'{key}.npy', 'w', force_zip64=True) as entry:
          np.lib.format.write_array(
              entry, np.ascontiguousarray(array), allow_pickle=False
          )
  temporary.replace(path)


def _mask_structure(identity: dict[str, Any]) -> dict[str, Any]:
  structure = {'kind': identity.get('mask_structure.kind', 'unstructured')}
  for key in ('n', 'm'):
    if f'mask_structure.{key}' in identity:
      structure[key] = identity[f'mask_structure.{key}']
  return structure


def export_masks(
    workdir: str, out: str, step: Optional[int] = None
) -> dict[str, Any]:
  """Writes masks.npz, params.npz and meta.json of a run into ``out``.

  Args:
    workdir: the run's workdir.
    out: the directory to write into (created if missing; files of an
      earlier export are replaced).
    step: the checkpoint to read; None: the newest one that can be read
      (an unreadable one is skipped with a warning).

  Returns:
    The content of meta.json.

  Raises:
    errors.WorkdirError: naming the path: no workdir, no checkpoint (at
      ``step``), none readable, or ``out`` not writable.
  """
  directory, steps = checkpoint_steps(workdir)
  if step is not None and step not in steps:
    raise errors.WorkdirError(
        f'{directory} holds no checkpoint at step {step} (it holds steps '
        f"{', '.join(map(str, steps))})"
    )
  out_path = epath.Path(resolved_out(out))
  try:
    out_path.mkdir(parents=True, exist_ok=True)
    # Known before reading a checkpoint, which may take a while.
    probe = out_path / f'.{META_FILE}.write-test'
    probe.write_text('rigl_jax')
    probe.unlink()
  except OSError as e:
    raise errors.WorkdirError(
        f'cannot write to {out_path}: {e.strerror or e}'
    ) from None
  step, identity, state = _read_checkpoint(directory, steps, step)
  try:
    masks, params = _arrays(state)
  except ValueError as e:
    raise errors.WorkdirError(
        f'the checkpoint {directory / str(step)} does not fit: {e}'
    ) from None
  meta = {
      'format_version': FORMAT_VERSION,
      'workdir': str(directory.parent),
      'step': step,
      'identity': identity,
      'mask_structure': _mask_structure(identity),
      'sparsity': {
          'overall': masks_lib.overall_sparsity(masks),
          'layers': masks_lib.layer_sparsities(masks),
      },
      'files': {'masks': MASKS_FILE, 'params': PARAMS_FILE},
  }
  batch_stats = _batch_stats(state)
  if batch_stats:
    meta['files']['batch_stats'] = BATCH_STATS_FILE
  try:
    # Until the new meta.json is written, the folder holds no export.
    (out_path / META_FILE).unlink(missing_ok=True)
    _write_npz(out_path / MASKS_FILE, masks, compress=True)
    _write_npz(out_path / PARAMS_FILE, params, compress=False)
    if batch_stats:
      _write_npz(out_path / BATCH_STATS_FILE, batch_stats, compress=False)
    temporary = out_path / f'{META_FILE}.tmp'
    temporary.write_text(json.dumps(meta, indent=2) + '\n')
    temporary.replace(out_path / META_FILE)
  except OSError as e:
    raise errors.WorkdirError(
        f'cannot write to {out_path}: {e.strerror or e}'
    ) from None
  return meta


def _read_npz(path: epath.Path) -> dict[str, np.ndarray]:
  with path.open('rb') as f:
    with np.load(f, allow_pickle=False) as arrays:
      return {key: arrays[key] for key in arrays.files}


def _read_export(
    directory: epath.Path,
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict, dict]:
  """(meta, masks, params, batch stats) of an export directory."""
  meta = json.loads((directory / META_FILE).read_text())
  files = meta.get('files', {})
  masks = _read_npz(directory / files.get('masks', MASKS_FILE))
  params = _read_npz(directory / files.get('params', PARAMS_FILE))
  stats = {}
  if 'batch_stats' in files:
    stats = _read_npz(directory / files['batch_stats'])
  return meta, masks, params, stats


def _read_workdir(
    workdir: str,
) -> tuple[dict[str, Any], dict[str, np.ndarray], dict, dict]:
  """As ``_read_export``, from a workdir's newest readable checkpoint."""
  directory, steps = checkpoint_steps(workdir)
  step, identity, state = _read_checkpoint(directory, steps, None)
  masks, params = _arrays(state)
  meta = {'step': step, 'identity': identity}
  meta['mask_structure'] = _mask_structure(identity)
  return meta, masks, params, _batch_stats(state)


def _config_of(identity: dict[str, Any]) -> Any:
  """A resolved config holding ``identity``'s values."""
  config = config_lib.base_config()
  for key, value in identity.items():
    if key.startswith('model.options.'):
      config.model.options[key[len('model.options.') :]] = value
      continue
    try:
      config_lib.set_values(config, {key: value})
    except (TypeError, errors.ConfigError):
      # A list where the config holds a tuple; other keys do not matter.
      if isinstance(value, list):
        config_lib.set_values(config, {key: tuple(value)})
  # The identity leaves num_train_steps out (runs may be extended); the
  # model does not depend on it, but methods check their step keys
  # against it.
  steps = [
      v
      for k, v in identity.items()
      if k.endswith('_step') and isinstance(v, int)
  ]
  config.num_train_steps = max([config.num_train_steps, *steps]) + 1
  return config_lib.resolve(config)


def load(
    path: str, form: str = 'masked'
) -> tuple[forms.ApplyFn, dict[str, Any]]:
  """``(apply_fn, variables)`` of an export or a workdir, in ``form``.

  ``apply_fn(variables, x)`` returns the logits of the masked model, to
  float tolerance, for inputs ``x`` as the run's data set's batches hold
  them (MNIST: uint8 pixels); the evaluation's preprocessing (e.g. scaling
  to [0, 1]) runs first, as in the run's evaluation.

  Args:
    path: a directory written by ``export_masks`` (holding meta.json), or
      a run's workdir (its newest readable checkpoint).
    form: one of ``FORMS`` (see ``rigl_jax.export.forms``).

  Raises:
    errors.WorkdirError: naming the path: nothing to read there, or files
      that do not fit the run's model, or a form these masks cannot take.
  """
  directory = epath.Path(workdir_lib.resolve(path))
  if not directory.is_dir():
    raise errors.WorkdirError(f'{directory} does not exist')
  if form not in FORMS:
    raise errors.WorkdirError(
        f'form must be one of {list(FORMS)}, got {form!r}'
    )
  try:
    if (directory / META_FILE).exists():
      meta, masks, params, stats = _read_export(directory)
    else:
      meta, masks, params, stats = _read_workdir(str(directory))
  except (OSError, ValueError, KeyError) as e:
    raise errors.WorkdirError(f'cannot read {directory}: {_cause(e)}') from None
  run = _config_of(meta['identity'])
  model, spec = build_lib.trained_model(run)
  variables = {'params': params, 'batch_stats': stats}
  expected = build_lib.abstract_variables(model, spec)
  for name, arrays in variables.items():
    wanted = {
        k: tuple(v.shape)
        for k, v in tree_paths.named_leaves(expected.get(name, {}))
    }
    found = {k: tuple(v.shape) for k, v in arrays.items()}
    if wanted != found:
      differing = sorted(set(wanted.items()) ^ set(found.items()))[:1]
      raise errors.WorkdirError(
          f'the {name} in {directory} do not fit the model '
          f'{run.model.name!r} of its run (e.g. {differing})'
      )
  variables = {
      name: traverse_util.unflatten_dict(arrays, sep='/')
      for name, arrays in variables.items()
      if arrays
  }
  structure = meta.get('mask_structure', {})
  n_m = None
  if structure.get('kind') == 'n_m':
    n_m = (structure['n'], structure['m'])
  elif form == 'nm':
    raise errors.WorkdirError(
        f"{directory}: form 'nm' needs a run trained with "
        f"mask_structure.kind='n_m', not {structure.get('kind')!r}"
    )
  module_paths = sorted({key.rsplit('/', 1)[0] for key in params})
  try:
    apply_fn, compacted = forms.compact(
        model,
        variables,
        masks,
        form,
        example_input=build_lib.dummy_inputs(spec),
        links=models.get(run.model.name).channel_links(module_paths),
        n_m=n_m,
    )
  except forms.FormError as e:
    raise errors.WorkdirError(f'{directory}: {e}') from None
  return _on_data_set_inputs(apply_fn, run.dataset.name), compacted


def _on_data_set_inputs(
    apply_fn: forms.ApplyFn, dataset_name: str
) -> forms.ApplyFn:
  """``apply_fn`` on inputs as the data set's batches hold them (e.g.
  uint8 pixels), with the evaluation's on-device preprocessing first."""
  preprocess = data.get(dataset_name).preprocess_on_device

  def on_inputs(variables: Any, inputs: Any) -> Any:
    batch = preprocess({'inputs': inputs}, jax.random.key(0), False)
    return apply_fn(variables, batch['inputs'])

  return on_inputs
