"""Every inference form gives the masked model's logits, on the registry's
convolutional models and LeNet, with random masks of each structure.

The masks also remove whole output units (as SRigL's ablation and Chase
do), and biases, BatchNorm scales and statistics are random, so the
shrunk form's folding is exercised. ResNet-50 and MobileNet v1 run at
width 0.25 on 32x32 inputs to keep the test short: their layers and links
are those of width 1.
"""

from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rigl_jax import models
from rigl_jax.export import forms
from rigl_jax.export import layers

# (model, input shape, width).
_MODELS = {
    'lenet300_100': ((28, 28, 1), 1.0),
    'wrn22_2': ((32, 32, 3), 1.0),
    'resnet50': ((32, 32, 3), 0.25),
    'mobilenet_v1': ((32, 32, 3), 0.25),
}
_STRUCTURES = ('unstructured', 'n_m', 'fan_in')


def _mask(shape: tuple[int, ...], structure: str, rng) -> np.ndarray:
  """A random mask of ``structure`` (2:4; fan-in 10% of the inputs)."""
  inputs, outputs = int(np.prod(shape[:-1])), shape[-1]
  if structure == 'n_m':
    scores = rng.random(shape[:-2] + (shape[-2] // 4, 4, outputs))
    ranks = np.argsort(np.argsort(scores, axis=-2), axis=-2)
    return (ranks < 2).reshape(shape)
  if structure == 'fan_in':
    ranks = np.argsort(np.argsort(rng.random((inputs, outputs)), 0), 0)
    return (ranks < max(1, inputs // 10)).reshape(shape)
  return rng.random(shape) < 0.2


def _random_sparse_model(name: str, structure: str, seed: int = 0):
  """(model, variables, masks, inputs) with a third of the units removed."""
  shape, width = _MODELS[name]
  model = models.create_model(name, num_classes=10, width=width)
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.standard_normal((2,) + shape), jnp.float32)
  variables = jax.tree.map(
      np.asarray, model.init(jax.random.PRNGKey(seed), x, train=False)
  )
  flat = traverse_util.flatten_dict(variables['params'], sep='/')
  masks = {}
  for path, value in flat.items():
    depthwise = value.ndim == 4 and value.shape[-2] == 1
    if path.endswith('/kernel') and not depthwise:
      if structure == 'n_m' and value.shape[-2] % 4:
        continue  # The stem's 3 input channels: dense, as build keeps it.
      mask = _mask(value.shape, structure, rng)
      mask[..., rng.random(value.shape[-1]) < 0.3] = False  # Removed units.
      masks[path] = mask
      flat[path] = np.where(mask, value, 0.0).astype(value.dtype)
    elif path.endswith(('/bias', '/scale')):
      flat[path] = rng.standard_normal(value.shape).astype(value.dtype)
  variables['params'] = traverse_util.unflatten_dict(flat, sep='/')
  if 'batch_stats' in variables:
    variables['batch_stats'] = jax.tree.map(
        lambda a: (rng.random(a.shape) + 0.5).astype(a.dtype),
        variables['batch_stats'],
    )
  return model, variables, masks, x


def _links(name: str, variables) -> tuple:
  flat = traverse_util.flatten_dict(variables['params'], sep='/')
  return models.get(name).channel_links(
      sorted({p.rsplit('/', 1)[0] for p in flat})
  )


def _cases():
  for name in _MODELS:
    for structure in _STRUCTURES:
      for form in forms.FORMS:
        if form == 'nm' and structure != 'n_m':
          continue
        yield pytest.param(
            name, structure, form, id=f'{name}-{structure}-{form}'
        )


@pytest.mark.parametrize('name,structure,form', _cases())
def test_every_form_gives_the_masked_logits(name, structure, form):
  model, variables, masks, x = _random_sparse_model(name, structure)
  expected = model.apply(variables, x, train=False)
  apply_fn, compacted = forms.compact(
      model,
      variables,
      masks,
      form,
      example_input=x,
      links=_links(name, variables),
      n_m=(2, 4),
  )
  logits = jax.jit(apply_fn)(compacted, x)
  scale = float(jnp.max(jnp.abs(expected)))
  np.testing.assert_allclose(logits, expected, atol=1e-5 * scale, rtol=0)
  if form != 'masked':
    # The replaced layers' dense kernels are gone from the variables.
    assert forms.PACKED in compacted
    kernels = {
        p
        for p in traverse_util.flatten_dict(compacted['params'], sep='/')
        if p.endswith('/kernel')
    }
    assert kernels.isdisjoint(f'{p}/kernel' for p in compacted[forms.PACKED])


@pytest.mark.parametrize('name', list(_MODELS))
def test_shrunk_models_lose_the_removed_units(name):
  model, variables, masks, x = _random_sparse_model(name, 'fan_in')
  _, compacted = forms.compact(
      model,
      variables,
      masks,
      'shrunk',
      example_input=x,
      links=_links(name, variables),
  )
  before = sum(a.size for a in jax.tree.leaves(variables['params']))
  after = sum(
      a.size
      for a in jax.tree.leaves((compacted['params'], compacted[forms.PACKED]))
  )
  # About 30% of every linked producer's units were removed.
  assert after < 0.9 * before
  for link in _links(name, variables):
    mask = masks.get(f'{link.producer}/kernel')
    if not link.consumer or link.depthwise or mask is None:
      continue  # Behind a depthwise conv only zero constants go.
    units = mask.shape[-1]
    removed = (~mask.reshape(-1, units).any(axis=0)).sum()
    kept = compacted[forms.PACKED][link.producer]['kernel'].shape[-1]
    assert kept <= max(1, units - removed), link.producer


def test_condensed_holds_each_units_active_inputs_and_nm_its_groups():
  kernel = np.array(
      [[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, 0.0]], np.float32
  )
  condensed = layers.pack_condensed(kernel)
  np.testing.assert_array_equal(condensed['indices'], [[0, 2], [1, 0]])
  np.testing.assert_array_equal(condensed['values'], [[1.0, 3.0], [2.0, 0.0]])
  nm = layers.pack_nm(kernel, n=1, m=2)
  # Group 0 (inputs 0, 1): unit 0 keeps offset 0, unit 1 offset 1.
  np.testing.assert_array_equal(nm['offsets'][:, 0, :], [[0, 1], [0, 0]])
  np.testing.assert_array_equal(nm['values'][:, 0, :], [[1.0, 2.0], [3.0, 0.0]])
  assert layers.nm_violation(kernel, n=1, m=2) is None
  assert 'holds 2 nonzeros' in layers.nm_violation(np.ones((4, 2)), n=1, m=2)


def test_an_unknown_form_or_unpackable_masks_are_refused():
  model, variables, masks, x = _random_sparse_model(
      'lenet300_100', 'unstructured'
  )
  with pytest.raises(forms.FormError, match='form must be one of'):
    forms.compact(model, variables, masks, 'sparse', example_input=x)
  with pytest.raises(forms.FormError, match='cannot pack Dense_0/kernel'):
    forms.compact(model, variables, masks, 'nm', example_input=x, n_m=(2, 4))
