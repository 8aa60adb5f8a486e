"""Packed forms of one masked Dense or 1x1-convolution kernel and their
products; each gives what ``x @ kernel`` gives, to float tolerance.

- condensed: each output unit's active inputs as (indices, values), padded
  to the largest fan-in with zeros: a gather and a row-wise product. With
  constant fan-in (SRigL) nothing is padded.
- N:M: in every group of M consecutive inputs, the N active ones of each
  output unit as (offset in the group, value); the product is a reference
  implementation (a gather), not a tensor-core kernel.
- BCSR: the transposed kernel as ``jax.experimental.sparse.BCSR``.

A 1x1 convolution is a Dense layer over the pixels it samples: its input
is strided first (``dense_rows``).
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.experimental import sparse
import numpy as np


def is_dense_like(module: nn.Module, kernel_shape: tuple[int, ...]) -> bool:
  """Whether ``module`` computes ``x @ kernel`` on (strided) pixels."""
  if isinstance(module, nn.Dense):
    return True
  if not isinstance(module, nn.Conv) or len(kernel_shape) != 4:
    return False
  padding = module.padding
  no_padding = padding in ('SAME', 'VALID') or (
      not isinstance(padding, str) and not np.any(np.asarray(padding))
  )
  return (
      tuple(kernel_shape[:2]) == (1, 1)
      and module.feature_group_count == 1
      and _pair(module.kernel_dilation) == (1, 1)
      and _pair(module.input_dilation) == (1, 1)
      and no_padding
  )


def _pair(value: Any) -> tuple[int, int]:
  if value is None:
    return (1, 1)
  if isinstance(value, int):
    return (value, value)
  return tuple(value)


def dense_rows(module: nn.Module, x: jax.Array) -> jax.Array:
  """``x`` as the rows a dense-like ``module`` multiplies by its kernel."""
  if isinstance(module, nn.Conv):
    sh, sw = _pair(module.strides)
    return x[:, ::sh, ::sw, :]
  return x


def matrix(kernel: np.ndarray) -> np.ndarray:
  """A dense-like kernel as an (inputs, outputs) matrix."""
  return kernel.reshape(kernel.shape[-2], kernel.shape[-1])


def pack_condensed(kernel: np.ndarray) -> dict[str, np.ndarray]:
  """(indices, values), each (outputs, largest fan-in), of a kernel."""
  w = matrix(np.asarray(kernel))
  fan_in = max(int(np.max(np.count_nonzero(w, axis=0))), 1)
  indices = np.zeros((w.shape[1], fan_in), np.int32)
  values = np.zeros((w.shape[1], fan_in), w.dtype)
  for unit in range(w.shape[1]):
    rows = np.flatnonzero(w[:, unit])
    indices[unit, : rows.size] = rows
    values[unit, : rows.size] = w[rows, unit]
  return {'indices': indices, 'values': values}


def condensed_product(x: jax.Array, packed: dict[str, jax.Array]) -> jax.Array:
  """``x @ kernel`` from ``pack_condensed``: gather, then a row-wise sum."""
  indices = packed['indices']
  # One flat gather: XLA:CPU runs it a little faster than a 2-D one.
  gathered = x.at[..., indices.reshape(-1)].get(mode='promise_in_bounds')
  gathered = gathered.reshape(x.shape[:-1] + indices.shape)  # [..., out, k]
  return jnp.einsum('...ok,ok->...o', gathered, packed['values'])


def nm_violation(kernel: np.ndarray, n: int, m: int) -> str | None:
  """Why ``kernel`` cannot be packed N:M, or None."""
  w = matrix(np.asarray(kernel))
  if w.shape[0] % m:
    return f'{w.shape[0]} inputs are not a multiple of M={m}'
  counts = np.count_nonzero(w.reshape(-1, m, w.shape[1]), axis=1)
  if counts.max() > n:
    return f'a group of {m} inputs holds {counts.max()} nonzeros, more than {n}'
  return None


def pack_nm(kernel: np.ndarray, n: int, m: int) -> dict[str, np.ndarray]:
  """(offsets, values), each (groups, N, outputs), of an N:M kernel.

  A group with fewer than N nonzeros is padded with zero values.
  """
  w = matrix(np.asarray(kernel))
  groups = w.reshape(-1, m, w.shape[1])  # [groups, M, out]
  # The N largest |w| of each group and unit; the rest are zeros.
  order = np.argsort(-np.abs(groups), axis=1, kind='stable')[:, :n, :]
  offsets = np.sort(order, axis=1).astype(np.int8)
  values = np.take_along_axis(groups, offsets.astype(np.int64), axis=1)
  return {'offsets': offsets, 'values': values}


def nm_product(x: jax.Array, packed: dict[str, jax.Array], m: int) -> jax.Array:
  """``x @ kernel`` from ``pack_nm`` (reference implementation)."""
  offsets = packed['offsets'].astype(jnp.int32)
  starts = (jnp.arange(offsets.shape[0]) * m)[:, None, None]
  flat = (starts + offsets).reshape(-1)
  gathered = x.at[..., flat].get(mode='promise_in_bounds')
  gathered = gathered.reshape(x.shape[:-1] + offsets.shape)  # [..., G, N, out]
  return jnp.einsum('...gno,gno->...o', gathered, packed['values'])


def pack_bcsr(kernel: np.ndarray) -> sparse.BCSR:
  """The transposed kernel, (outputs, inputs), in BCSR (built in NumPy:
  ``BCSR.fromdense`` compiles once per shape)."""
  transposed = matrix(np.asarray(kernel)).T
  rows, columns = np.nonzero(transposed)
  if rows.size == 0:  # BCSR needs one stored entry; a zero one.
    rows, columns = np.zeros(1, np.int64), np.zeros(1, np.int64)
  indptr = np.searchsorted(rows, np.arange(transposed.shape[0] + 1))
  return sparse.BCSR(
      (
          transposed[rows, columns],
          columns.astype(np.int32),
          indptr.astype(np.int32),
      ),
      shape=transposed.shape,
  )


def bcsr_product(x: jax.Array, packed: sparse.BCSR) -> jax.Array:
  """``x @ kernel`` from ``pack_bcsr``."""
  rows = x.reshape(-1, x.shape[-1])
  return (packed @ rows.T).T.reshape(x.shape[:-1] + (packed.shape[0],))
