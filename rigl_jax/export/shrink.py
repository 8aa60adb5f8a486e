"""The 'shrunk' form: channels no weight uses, removed from every layer.

Along each of a model's ``ChannelLink``s, a producer channel is removed
when its kernel column is all zero (an ablated unit, a removed channel) or
when the consumer's rows for it are: the consumer then reads a constant
(bias, BatchNorm shift, activation) that is folded into its bias, or, for a
padded spatial convolution, into a fixed map added to its output (a
1-channel convolution of ones, computed at inference; exact at the
borders). Behind a depthwise convolution a channel goes only if its
constant is 0 (else the padded depthwise output would vary at the
borders). The BatchNorm after each producer is folded into it. The result
is a dense model with fewer channels, exact to float tolerance.
"""

import dataclasses
from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rigl_jax.models import base as models_base


@dataclasses.dataclass
class LayerPlan:
  """How one Dense or Conv of the shrunk model computes.

  Attributes:
    kernel: the kernel, narrowed (and scaled by a folded BatchNorm).
    bias: its bias (the folded BatchNorm's shift and constants included).
    correction: (kh, kw, 1, out) kernel whose convolution of an all-ones
      image is added to the output (removed inputs' constants under zero
      padding), or None.
    groups: ``feature_group_count`` of the narrowed layer.
  """

  kernel: np.ndarray
  bias: np.ndarray
  correction: Optional[np.ndarray] = None
  groups: int = 1

  def arrays(self) -> dict[str, np.ndarray]:
    out = {'kernel': self.kernel, 'bias': self.bias}
    if self.correction is not None:
      out['correction'] = self.correction
    return out


@dataclasses.dataclass
class _Layer:
  """A layer being narrowed: the original arrays and what to keep."""

  kernel: np.ndarray
  bias: np.ndarray
  in_keep: Optional[np.ndarray] = None
  out_keep: Optional[np.ndarray] = None
  constants: Optional[np.ndarray] = None  # Of the removed inputs.
  scale: Optional[np.ndarray] = None
  shift: Optional[np.ndarray] = None
  depthwise: bool = False


def _subtree(tree: Any, path: str) -> Any:
  for part in path.split('/'):
    tree = tree[part]
  return tree


def _norm(
    params: Any, stats: Any, path: str, epsilon: float
) -> tuple[np.ndarray, np.ndarray]:
  """(scale, shift) of the BatchNorm at ``path``, at inference."""
  p, s = _subtree(params, path), _subtree(stats, path)
  scale = np.asarray(p['scale']) / np.sqrt(np.asarray(s['var']) + epsilon)
  return scale, np.asarray(p['bias']) - np.asarray(s['mean']) * scale


def _layer(params: Any, path: str, depthwise: bool = False) -> _Layer:
  p = _subtree(params, path)
  kernel = np.asarray(p['kernel'])
  bias = np.asarray(p['bias']) if 'bias' in p else np.zeros(kernel.shape[-1])
  return _Layer(kernel, bias.astype(kernel.dtype), depthwise=depthwise)


def _is_spatial(kernel: np.ndarray) -> bool:
  return kernel.ndim == 4 and kernel.shape[:2] != (1, 1)


def plan(
    links: tuple[models_base.ChannelLink, ...],
    params: Any,
    batch_stats: Any,
    epsilon: float,
) -> tuple[dict[str, LayerPlan], set[str], dict[str, tuple[int, int]]]:
  """(layer plans by module path, folded BatchNorm paths, channels kept).

  ``channels`` maps each producer with a consumer to (kept, before).
  """
  layers: dict[str, _Layer] = {}
  folded, channels = set(), {}

  def layer(path: str, depthwise: bool = False) -> _Layer:
    if path not in layers:
      layers[path] = _layer(params, path, depthwise)
    return layers[path]

  for link in links:
    producer = layer(link.producer)
    width = producer.kernel.shape[-1]
    scale, shift = np.ones(width), np.zeros(width)
    if link.norm:
      scale, shift = _norm(params, batch_stats, link.norm, epsilon)
      producer.scale, producer.shift = scale, shift
      folded.add(link.norm)
    if not link.consumer:
      continue
    consumer = layer(link.consumer)
    dead = ~producer.kernel.reshape(-1, width).any(axis=0)
    c_kernel = consumer.kernel
    unused = ~np.moveaxis(c_kernel, -2, 0).reshape(width, -1).any(axis=1)
    constants = np.asarray(
        link.activation(jnp.asarray(producer.bias * scale + shift))
    )
    removable = dead | unused
    if link.depthwise:
      removable &= unused | (constants == 0)
      scale_d, shift_d = _norm(
          params, batch_stats, link.depthwise_norm, epsilon
      )
      depthwise = layer(link.depthwise, depthwise=True)
      depthwise.scale, depthwise.shift = scale_d, shift_d
      folded.add(link.depthwise_norm)
      constants = np.asarray(
          link.activation(jnp.asarray(depthwise.bias * scale_d + shift_d))
      )
    constants = np.where(unused, 0.0, constants)
    keep = ~removable
    if not keep.any():  # A layer of zero channels; keep one.
      keep[0] = True
    producer.out_keep = keep
    if link.depthwise:
      layers[link.depthwise].out_keep = keep
    consumer.in_keep, consumer.constants = keep, constants
    channels[link.producer] = (int(keep.sum()), width)
  return {p: _finish(x) for p, x in layers.items()}, folded, channels


def _finish(layer: _Layer) -> LayerPlan:
  """The narrowed, folded arrays of ``layer``."""
  kernel, bias, correction = layer.kernel, layer.bias, None
  if layer.in_keep is not None:
    removed = ~layer.in_keep
    # What the removed inputs' constants add: sum_r c_r kernel[..., r, :].
    contribution = np.tensordot(
        np.moveaxis(kernel[..., removed, :], -2, -1),
        layer.constants[removed],
        axes=([-1], [0]),
    )  # [..., out]
    if _is_spatial(kernel):
      correction = contribution[:, :, None, :]
    else:
      bias = bias + contribution.reshape(-1, kernel.shape[-1]).sum(axis=0)
    kernel = kernel[..., layer.in_keep, :]
  if layer.scale is not None:
    kernel = kernel * layer.scale
    bias = bias * layer.scale + layer.shift
    if correction is not None:
      correction = correction * layer.scale
  groups = 1
  if layer.out_keep is not None:
    kernel, bias = kernel[..., layer.out_keep], bias[layer.out_keep]
    if correction is not None:
      correction = correction[..., layer.out_keep]
    if layer.depthwise:
      groups = int(layer.out_keep.sum())
  elif layer.depthwise:
    groups = kernel.shape[-1]
  dtype = layer.kernel.dtype
  return LayerPlan(
      kernel.astype(dtype),
      bias.astype(dtype),
      None if correction is None else correction.astype(dtype),
      groups,
  )


def apply(
    module: nn.Module, x: jax.Array, arrays: dict[str, jax.Array], groups: int
) -> jax.Array:
  """``module`` computed with the narrowed ``arrays`` of its plan."""
  kernel = arrays['kernel']
  if isinstance(module, nn.Dense):
    return x @ kernel + arrays['bias']
  narrowed = module.clone(
      parent=None,
      features=kernel.shape[-1],
      feature_group_count=groups,
      use_bias=True,
  )
  y = narrowed.apply({'params': {'kernel': kernel, 'bias': arrays['bias']}}, x)
  if 'correction' in arrays:
    ones = jnp.ones((1,) + x.shape[1:-1] + (1,), x.dtype)
    spread = module.clone(
        parent=None,
        features=kernel.shape[-1],
        feature_group_count=1,
        use_bias=False,
    )
    y = y + spread.apply({'params': {'kernel': arrays['correction']}}, ones)
  return y
