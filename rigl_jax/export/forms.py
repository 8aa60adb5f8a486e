"""Inference forms of a trained sparse model: the same logits, less work.

``compact(model, variables, masks, form)`` returns ``(apply_fn,
variables)`` with ``apply_fn(variables, x)`` equal to the masked model's
``model.apply(..., x, train=False)`` to float tolerance:

- 'masked': the masked dense model as trained.
- 'shrunk': channels no weight uses removed along the model's channel
  links, BatchNorm folded (``shrink``): a smaller dense model.
- 'condensed': masked Dense and 1x1-conv kernels as a gather plus a
  row-wise product (``layers.pack_condensed``); fast when the fan-in is
  constant.
- 'nm': masked Dense and 1x1-conv kernels packed N:M (values plus
  offsets), multiplied by a reference gather.
- 'bcsr': masked Dense and 1x1-conv kernels as ``jax.experimental.sparse``
  BCSR matrices.

Layers a form does not cover (spatial convolutions under 'condensed',
'nm' and 'bcsr'; dense layers) run as in the masked model. Each form
intercepts the Flax modules it replaces (``nn.intercept_methods``), so it
works for any model built from ``nn.Dense``, ``nn.Conv`` and
``nn.BatchNorm``; their parameters leave ``variables['params']`` and
their packed arrays go to ``variables['packed']``.
"""

from collections.abc import Callable, Mapping
from typing import Any, Optional

from flax import traverse_util
import flax.linen as nn
import jax
import numpy as np

from rigl_jax.export import layers
from rigl_jax.export import shrink
from rigl_jax.models import base as models_base
from rigl_jax.models import batch_norm

FORMS = ('masked', 'shrunk', 'condensed', 'nm', 'bcsr')
PACKED = 'packed'

ApplyFn = Callable[[Any, jax.Array], jax.Array]


class FormError(ValueError):
  """A form that cannot be built from these masks."""


def _module_path(kernel_path: str) -> str:
  return kernel_path.rsplit('/', 1)[0]


def _without(tree: Any, module_paths: set[str]) -> Any:
  """``tree`` less the subtrees at ``module_paths``."""
  flat = traverse_util.flatten_dict(tree, sep='/')
  kept = {k: v for k, v in flat.items() if _module_path(k) not in module_paths}
  return traverse_util.unflatten_dict(kept, sep='/')


def _modules(model: nn.Module, variables: Any, x: jax.Array) -> dict:
  """The bound Dense/Conv/BatchNorm modules of a model, by path."""
  found = {}

  def record(next_fun, args, kwargs, context):
    module = context.module
    if context.method_name == '__call__' and isinstance(
        module, (nn.Dense, nn.Conv, nn.BatchNorm)
    ):
      found['/'.join(module.path)] = module.clone(parent=None)
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    jax.eval_shape(lambda v: model.apply(v, x, train=False), variables)
  return found


def _pack(
    form: str,
    masks: Mapping[str, np.ndarray],
    params: Any,
    modules: dict,
    n_m: Optional[tuple[int, int]],
) -> tuple[dict[str, Any], dict[str, Callable]]:
  """(packed arrays, product functions) of the layers ``form`` covers."""
  flat = traverse_util.flatten_dict(params, sep='/')
  packed, products = {}, {}
  for kernel_path in masks:
    path = _module_path(kernel_path)
    kernel = np.asarray(flat[kernel_path])
    module = modules.get(path)
    if module is None or not layers.is_dense_like(module, kernel.shape):
      continue
    if form == 'condensed':
      packed[path] = layers.pack_condensed(kernel)
      products[path] = layers.condensed_product
    elif form == 'nm':
      n, m = n_m
      problem = layers.nm_violation(kernel, n, m)
      if problem:
        raise FormError(
            f"form 'nm' ({n}:{m}) cannot pack {kernel_path}: {problem}; "
            "it needs a run trained with mask_structure.kind='n_m'"
        )
      packed[path] = layers.pack_nm(kernel, n, m)
      products[path] = lambda x, p, m=m: layers.nm_product(x, p, m)
    else:
      packed[path] = {'matrix': layers.pack_bcsr(kernel)}
      products[path] = lambda x, p: layers.bcsr_product(x, p['matrix'])
    bias_path = f'{path}/bias'
    if bias_path in flat:
      packed[path]['bias'] = np.asarray(flat[bias_path])
  return packed, products


def compact(
    model: nn.Module,
    variables: Mapping[str, Any],
    masks: Mapping[str, np.ndarray],
    form: str,
    *,
    example_input: jax.Array,
    links: tuple[models_base.ChannelLink, ...] = (),
    n_m: Optional[tuple[int, int]] = None,
) -> tuple[ApplyFn, dict[str, Any]]:
  """``form`` of a masked model: ``(apply_fn, variables)``.

  Args:
    model: the Flax module.
    variables: its 'params' (inactive entries zero) and, if it has them,
      'batch_stats'.
    masks: boolean masks by kernel path ('Dense_0/kernel').
    form: one of ``FORMS``.
    example_input: an input of the model's shape (any batch size).
    links: the model's channel links ('shrunk').
    n_m: (N, M) of the masks ('nm').

  Raises:
    FormError: an unknown form, or masks the form cannot pack.
  """
  if form not in FORMS:
    raise FormError(f'form must be one of {list(FORMS)}, got {form!r}')
  variables = dict(variables)
  if form == 'masked':
    return _masked_apply(model), variables
  if form == 'nm' and n_m is None:
    raise FormError("form 'nm' needs the masks' N:M (n_m=(N, M))")
  modules = _modules(model, variables, example_input)
  skipped: set[str] = set()
  if form == 'shrunk':
    plans, skipped, _ = shrink.plan(
        links,
        variables['params'],
        variables.get('batch_stats', {}),
        batch_norm.batch_norm(False).epsilon,
    )
    packed = {path: p.arrays() for path, p in plans.items()}
    groups = {path: p.groups for path, p in plans.items()}
    products = {
        path: (lambda m, x, a, g=groups[path]: shrink.apply(m, x, a, g))
        for path in plans
    }
  else:
    packed, products = _pack(form, masks, variables['params'], modules, n_m)
    products = {
        path: (lambda m, x, a, f=f: _dense_like(m, x, a, f))
        for path, f in products.items()
    }
  replaced = set(packed) | skipped
  compacted = {
      name: _without(tree, replaced) for name, tree in variables.items()
  }
  compacted[PACKED] = jax.tree.map(np.asarray, packed)
  return _intercepting_apply(model, products, skipped), compacted


def _dense_like(
    module: nn.Module, x: jax.Array, arrays: Any, product: Callable
) -> jax.Array:
  y = product(layers.dense_rows(module, x), arrays)
  return y + arrays['bias'] if 'bias' in arrays else y


def _masked_apply(model: nn.Module) -> ApplyFn:
  def apply_fn(variables: Any, x: jax.Array) -> jax.Array:
    return model.apply(variables, x, train=False)

  return apply_fn


def _intercepting_apply(
    model: nn.Module, products: dict[str, Callable], skipped: set[str]
) -> ApplyFn:
  """``model.apply`` with the modules at ``products`` computed by them and
  the BatchNorms at ``skipped`` (folded) passing their input through."""

  def apply_fn(variables: Any, x: jax.Array) -> jax.Array:
    packed = variables[PACKED]

    def intercept(next_fun, args, kwargs, context):
      if context.method_name == '__call__' and context.module.path:
        path = '/'.join(context.module.path)
        if path in skipped:
          return args[0]
        if path in products:
          return products[path](context.module, args[0], packed[path])
      return next_fun(*args, **kwargs)

    rest = {k: v for k, v in variables.items() if k != PACKED}
    with nn.intercept_methods(intercept):
      return model.apply(rest, x, train=False)

  return apply_fn
