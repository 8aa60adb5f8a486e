r"""Inference speed of the export forms against the masked dense model.

  python -m benchmarks.inference [--repeats=5] [--resnet_image_size=112]

Latency at batch 1 and throughput at batch 256, every form of one case
interleaved with its masked model in one process (``harness.
time_interleaved``), on random masks at 90, 95 and 99% sparsity:

- single layers: ResNet-50's fc (2048x1000), a transformer MLP's 768x3072
  and 3072x768 layers, a 3x3x256x256 convolution on 14x14 maps. condensed
  runs a constant-fan-in mask, nm an N:M one (N:128, the nearest N),
  bcsr an unstructured one; 'shrunk' is the dense layer with the same
  fraction of its output units removed (what removing units gives when
  the sparsity is all in them). A 3x3 convolution has only that form.
- whole models (LeNet-300-100, WRN-22-2, ResNet-50): condensed, nm and
  bcsr at the sparsity in every masked kernel but the first and the
  dense ones; shrunk at 25, 50 and 75% of every linked layer's units
  removed, with XLA's FLOPs count of both models beside the speed.

Speed-ups are masked time / form time, medians of interleaved samples.
"""

from collections.abc import Sequence
import dataclasses
import datetime
from typing import Any, Callable

from absl import app
from absl import flags
from flax import traverse_util
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import harness
from rigl_jax import models
from rigl_jax.export import forms

_BATCHES = (1, 256)
_SPARSITIES = (0.9, 0.95, 0.99)
_UNITS_REMOVED = (0.25, 0.5, 0.75)
_NM_GROUP = 128
# ResNet-50 at batch 256 under the gathering forms: their gather holds
# (1 - s) of the dense multiply-adds as one tensor, about 100 GB at 112px.
_NOT_RUN = 'ResNet-50, batch 256: condensed, nm and bcsr not run'


@dataclasses.dataclass(frozen=True)
class Layer:
  name: str
  kernel_shape: tuple[int, ...]
  input_shape: tuple[int, ...]  # Per example.


LAYERS = (
    Layer('ResNet-50 fc 2048x1000', (2048, 1000), (2048,)),
    Layer('MLP 768x3072', (768, 3072), (768,)),
    Layer('MLP 3072x768', (3072, 768), (3072,)),
    Layer('conv 3x3x256x256 (14x14)', (3, 3, 256, 256), (14, 14, 256)),
)


class _Single(nn.Module):
  """One Dense or SAME-padded Conv layer."""

  kernel_shape: tuple[int, ...]

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train
    if len(self.kernel_shape) == 2:
      return nn.Dense(self.kernel_shape[-1], name='layer')(x)
    return nn.Conv(self.kernel_shape[-1], self.kernel_shape[:2], name='layer')(
        x
    )


def random_mask(
    shape: tuple[int, ...], sparsity: float, kind: str, rng
) -> np.ndarray:
  """A mask of ``kind`` ('unstructured', 'fan_in', 'n_m' as N:128)."""
  inputs, outputs = int(np.prod(shape[:-1])), shape[-1]
  if kind == 'fan_in':
    k = max(1, round((1 - sparsity) * inputs))
    ranks = np.argsort(np.argsort(rng.random((inputs, outputs)), 0), 0)
    return (ranks < k).reshape(shape)
  if kind == 'n_m':
    n = nm_n(sparsity)
    scores = rng.random(
        shape[:-2] + (shape[-2] // _NM_GROUP, _NM_GROUP, outputs)
    )
    ranks = np.argsort(np.argsort(scores, axis=-2), axis=-2)
    return (ranks < n).reshape(shape)
  k = max(1, round((1 - sparsity) * inputs * outputs))
  flat = np.zeros(inputs * outputs, bool)
  flat[rng.permutation(flat.size)[:k]] = True
  return flat.reshape(shape)


def nm_n(sparsity: float) -> int:
  return max(1, round((1 - sparsity) * _NM_GROUP))


def _masked_variables(variables, masks):
  flat = traverse_util.flatten_dict(variables['params'], sep='/')
  for path, mask in masks.items():
    flat[path] = np.where(mask, flat[path], 0).astype(flat[path].dtype)
  return {**variables, 'params': traverse_util.unflatten_dict(flat, sep='/')}


def _timed(
    calls: dict[str, Callable[[], Any]], batch: int, repeats: int
) -> dict[str, float]:
  repeats *= 10 if batch == 1 else 1
  return harness.time_interleaved(
      calls,
      warmup=2,
      repeats=repeats,
      back_to_back=10 if batch == 1 else 1,
  )


def _call(apply_fn, variables, x) -> Callable[[], Any]:
  jitted = jax.jit(apply_fn)
  variables = jax.device_put(variables)
  return lambda: jitted(variables, x)


def _masked_and_form(model, variables, masks, form: str, x, sparsity: float):
  """(masked model call, ``form`` call, the form's variables) on ``x``."""
  masked = _masked_variables(variables, masks)
  masked_fn, _ = forms.compact(model, masked, masks, 'masked', example_input=x)
  fn, compacted = forms.compact(
      model,
      masked,
      masks,
      form,
      example_input=x,
      n_m=(nm_n(sparsity), _NM_GROUP),
  )
  return _call(masked_fn, masked, x), _call(fn, compacted, x), compacted


def _row_time(seconds: float, batch: int) -> str:
  if batch == 1:
    return f'{seconds * 1e3:.3f} ms'
  return f'{batch / seconds:,.0f}/s'


def layer_rows(rng, repeats: int) -> list[list[str]]:
  """Rows of the single-layer table."""
  rows = []
  for layer in LAYERS:
    model = _Single(layer.kernel_shape)
    for batch in _BATCHES:
      x = jnp.asarray(
          rng.standard_normal((batch,) + layer.input_shape), jnp.float32
      )
      variables = jax.tree.map(
          np.asarray, model.init(jax.random.PRNGKey(0), x[:1])
      )
      for sparsity in _SPARSITIES:
        calls, labels = {}, {}
        kinds = {'condensed': 'fan_in', 'nm': 'n_m', 'bcsr': 'unstructured'}
        if len(layer.kernel_shape) == 4:
          kinds = {}  # Spatial: only the shrunk layer applies.
        for form, kind in kinds.items():
          masks = {
              'layer/kernel': random_mask(
                  layer.kernel_shape, sparsity, kind, rng
              )
          }
          calls[f'masked {kind}'], calls[form], _ = _masked_and_form(
              model, variables, masks, form, x, sparsity
          )
          labels[form] = f'masked {kind}'
        narrow = _Single(
            layer.kernel_shape[:-1]
            + (max(1, round((1 - sparsity) * layer.kernel_shape[-1])),)
        )
        calls['masked unstructured'] = calls.get(
            'masked unstructured'
        ) or _call(lambda v, x: model.apply(v, x), variables, x)
        calls['shrunk'] = _call(
            lambda v, x: narrow.apply(v, x),
            narrow.init(jax.random.PRNGKey(0), x[:1]),
            x,
        )
        labels['shrunk'] = 'masked unstructured'
        times = _timed(calls, batch, repeats)
        for form, base in labels.items():
          n = f' ({nm_n(sparsity)}:{_NM_GROUP})' if form == 'nm' else ''
          rows.append(
              [
                  layer.name,
                  batch,
                  sparsity,
                  form + n,
                  _row_time(times[base], batch),
                  _row_time(times[form], batch),
                  f'{times[base] / times[form]:.2f}x',
              ]
          )
        for row in rows[-len(labels) :]:
          print(row, flush=True)
  return rows


def _model(name: str, image_size: int):
  if name == 'lenet300_100':
    return models.create_model(name, num_classes=10, width=1.0), (28, 28, 1)
  if name == 'wrn22_2':
    return models.create_model(name, num_classes=10, width=1.0), (32, 32, 3)
  size = image_size
  return models.create_model(name, num_classes=1000, width=1.0), (size, size, 3)


_MODELS = {
    'LeNet-300-100': 'lenet300_100',
    'WRN-22-2': 'wrn22_2',
    'ResNet-50': 'resnet50',
}


def _sparse_kernels(variables) -> dict[str, np.ndarray]:
  """Every kernel but depthwise ones."""
  flat = traverse_util.flatten_dict(variables['params'], sep='/')
  return {
      p: v
      for p, v in flat.items()
      if p.endswith('/kernel') and not (v.ndim == 4 and v.shape[-2] == 1)
  }


def _nm_ok(shape) -> bool:
  return shape[-2] % _NM_GROUP == 0


def _flops(apply_fn, variables, x) -> float:
  analysis = jax.jit(apply_fn).lower(variables, x).compile().cost_analysis()
  if isinstance(analysis, list):
    analysis = analysis[0]
  return float(analysis.get('flops', float('nan')))


def model_rows(rng, repeats: int, image_size: int) -> list[list[str]]:
  """Rows of the whole-model table."""
  rows = []
  for label, name in _MODELS.items():
    model, shape = _model(name, image_size)
    for batch in _BATCHES:
      x = jnp.asarray(rng.standard_normal((batch,) + shape), jnp.float32)
      variables = jax.tree.map(
          np.asarray, model.init(jax.random.PRNGKey(0), x[:1], train=False)
      )
      kernels = _sparse_kernels(variables)
      module_paths = sorted(
          {
              p.rsplit('/', 1)[0]
              for p in traverse_util.flatten_dict(variables['params'], sep='/')
          }
      )
      links = models.get(name).channel_links(module_paths)
      for sparsity in _SPARSITIES:
        calls, labels, packed = {}, {}, {}
        for form, kind in (
            ('condensed', 'fan_in'),
            ('nm', 'n_m'),
            ('bcsr', 'unstructured'),
        ):
          if name == 'resnet50' and batch > 1:
            continue  # See _NOT_RUN.
          masks = {
              p: random_mask(v.shape, sparsity, kind, rng)
              for p, v in kernels.items()
              if kind != 'n_m' or _nm_ok(v.shape)
          }
          masked_call, form_call, compacted = _masked_and_form(
              model, variables, masks, form, x, sparsity
          )
          if not compacted[forms.PACKED]:
            continue  # No layer of the model fits the form.
          calls[f'masked {kind}'], calls[form] = masked_call, form_call
          labels[form] = f'masked {kind}'
          packed[form] = f'{len(compacted[forms.PACKED])} of {len(kernels)}'
        times = _timed(calls, batch, repeats)
        for form, base in labels.items():
          n = f' ({nm_n(sparsity)}:{_NM_GROUP})' if form == 'nm' else ''
          rows.append(
              [
                  label,
                  batch,
                  sparsity,
                  form + n,
                  packed[form],
                  '',
                  _row_time(times[base], batch),
                  _row_time(times[form], batch),
                  f'{times[base] / times[form]:.2f}x',
              ]
          )
          print(rows[-1], flush=True)
      producers = {f'{k.producer}/kernel' for k in links if k.consumer}
      for removed in _UNITS_REMOVED:
        masks = {}
        for path, value in traverse_util.flatten_dict(
            variables['params'], sep='/'
        ).items():
          if path in producers:
            masks[path] = np.ones(value.shape, bool)
            units = rng.permutation(value.shape[-1])
            masks[path][..., units[: int(removed * value.shape[-1])]] = False
        masked = _masked_variables(variables, masks)
        masked_fn = forms.compact(
            model, masked, masks, 'masked', example_input=x
        )[0]
        fn, compacted = forms.compact(
            model, masked, masks, 'shrunk', example_input=x, links=links
        )
        flops = _flops(fn, compacted, x) / _flops(masked_fn, masked, x)
        times = _timed(
            {
                'masked': _call(masked_fn, masked, x),
                'shrunk': _call(fn, compacted, x),
            },
            batch,
            repeats,
        )
        rows.append(
            [
                label,
                batch,
                f'{removed:.0%} units',
                'shrunk',
                f'{len(compacted[forms.PACKED])} of {len(kernels)}',
                f'{flops:.2f}',
                _row_time(times['masked'], batch),
                _row_time(times['shrunk'], batch),
                f"{times['masked'] / times['shrunk']:.2f}x",
            ]
        )
        print(rows[-1], flush=True)
  return rows


LAYER_HEADER = (
    'layer',
    'batch',
    'sparsity',
    'form',
    'masked',
    'form time',
    'speed-up',
)
MODEL_HEADER = (
    'model',
    'batch',
    'sparsity',
    'form',
    'layers replaced',
    'XLA FLOPs form/masked',
    'masked',
    'form time',
    'speed-up',
)


def table(repeats: int = 5, image_size: int = 112) -> str:
  """Both tables, as markdown; ``repeats`` samples per call (ten times as
  many at batch 1), ResNet-50 at ``image_size``."""
  rng = np.random.default_rng(0)
  layers = harness.markdown_table(LAYER_HEADER, layer_rows(rng, repeats))
  whole = harness.markdown_table(
      MODEL_HEADER, model_rows(rng, repeats, image_size)
  )
  return (
      f'Single layers (batch 1: latency; batch 256: examples/s):\n\n{layers}\n\n'
      f'Whole models (ResNet-50 at {image_size}x'
      f'{image_size}; {_NOT_RUN}):\n\n{whole}'
  )


if __name__ == '__main__':
  _REPEATS = flags.DEFINE_integer('repeats', 5, 'Interleaved samples per call.')
  _RESNET_IMAGE_SIZE = flags.DEFINE_integer(
      'resnet_image_size', 112, 'ResNet-50 input size (224 in training).'
  )

  def main(argv: Sequence[str]) -> None:
    del argv
    print(f'{datetime.date.today().isoformat()}, {harness.machine()}')
    print(table(_REPEATS.value, _RESNET_IMAGE_SIZE.value))

  app.run(main)
