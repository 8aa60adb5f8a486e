"""Mask structures: which entries of a kernel share an active count.

A kernel's entries fall into groups that each keep the same number of
active weights; every selection (initial masks, drop and grow, pruning,
SNIP) runs within each group, so the structure holds exactly after every
change.

- ``unstructured``: one group, the whole kernel (no constraint).
- ``n_m``: every M consecutive weights along the input axis (the kernel's
  second-to-last axis: a Dense kernel's rows, a convolution's input
  channels) hold exactly N active ones; 2:4 is what NVIDIA's sparse tensor
  cores run.
- ``fan_in``: every output unit (the last axis) has the same number of
  active inputs, as in SRigL (Lasby et al., ICLR 2024).

Kernels are laid out as Flax's: ``[..., inputs, outputs]``.
"""

import dataclasses
import math
from collections.abc import Callable
from typing import Any, Optional

import jax
import jax.numpy as jnp

from rigl_jax.sparse import topology

KINDS = ('unstructured', 'n_m', 'fan_in')


def num_active_for(sparsity: float, size: int) -> int:
  """Active entries of ``size`` at ``sparsity`` (rounded to nearest)."""
  return int(round((1.0 - sparsity) * size))


@dataclasses.dataclass(frozen=True)
class MaskStructure:
  """How a kernel's active entries are spread.

  Attributes:
    kind: one of ``KINDS``.
    n: active entries per group of ``m`` (``n_m`` only).
    m: the group size along the input axis (``n_m`` only).
  """

  kind: str = 'unstructured'
  n: int = 2
  m: int = 4

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f'kind must be one of {KINDS}, got {self.kind!r}')
    if self.kind == 'n_m' and not (
        isinstance(self.n, int)
        and isinstance(self.m, int)
        and 0 < self.n <= self.m
    ):
      raise ValueError(
          f'n and m must be integers with 0 < n <= m, got {self.n}:{self.m}'
      )

  @property
  def is_structured(self) -> bool:
    return self.kind != 'unstructured'

  def describe(self) -> str:
    return f'{self.n}:{self.m}' if self.kind == 'n_m' else self.kind

  @property
  def sparsity(self) -> Optional[float]:
    """The only sparsity a structured layer can have, if there is one."""
    return 1.0 - self.n / self.m if self.kind == 'n_m' else None

  # -- Groups ----------------------------------------------------------------

  def group_size(self, shape: tuple[int, ...]) -> int:
    if self.kind == 'n_m':
      return self.m
    if self.kind == 'fan_in':
      return math.prod(shape[:-1])
    return math.prod(shape)

  def num_groups(self, shape: tuple[int, ...]) -> int:
    return math.prod(shape) // self.group_size(shape)

  def problem(self, shape: tuple[int, ...]) -> Optional[str]:
    """Why a kernel of ``shape`` cannot hold the structure, or None."""
    if not self.is_structured:
      return None
    if len(shape) < 2:
      return f'shape {list(shape)} has no input and output axes'
    if self.kind == 'n_m' and shape[-2] % self.m:
      return (
          f'its input axis ({shape[-2]}, shape {list(shape)}) does not '
          f'divide into groups of M={self.m}'
      )
    return None

  def active_per_group(self, sparsity: float, shape: tuple[int, ...]) -> int:
    """Active entries of each group of a kernel at ``sparsity``."""
    if self.kind == 'n_m':
      return self.n
    return num_active_for(sparsity, self.group_size(shape))

  def num_active(self, sparsity: float, shape: tuple[int, ...]) -> int:
    """Active entries of a whole kernel of ``shape`` at ``sparsity``."""
    return self.active_per_group(sparsity, shape) * self.num_groups(shape)

  def achieved(self, sparsity: float, shape: tuple[int, ...]) -> float:
    """The sparsity a kernel of ``shape`` reaches when asked ``sparsity``."""
    return 1.0 - self.num_active(sparsity, shape) / math.prod(shape)

  def to_groups(self, x: jax.Array) -> jax.Array:
    """[groups, group size]: output units first, each unit's inputs in
    order, so groups of ``m`` run along the input axis."""
    return jnp.moveaxis(x, -1, 0).reshape(-1, self.group_size(x.shape))

  def from_groups(self, groups: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """The inverse of ``to_groups`` for a kernel of ``shape``."""
    units_first = groups.reshape((shape[-1],) + tuple(shape[:-1]))
    return jnp.moveaxis(units_first, 0, -1)

  # -- Selection -------------------------------------------------------------

  def apply(
      self,
      select: Callable[..., jax.Array],
      *kernels: jax.Array,
      tie_seed: Optional[jax.Array] = None,
  ) -> jax.Array:
    """``select(*kernels, tie_seed)`` run on each group; a bool kernel.

    ``select`` sees arrays of one group (the whole kernels when
    unstructured) and returns the group's new mask; groups get distinct tie
    seeds.
    """
    if not self.is_structured:
      return select(*kernels, tie_seed)
    shape = kernels[0].shape
    groups = [self.to_groups(k) for k in kernels]
    seeds = None
    if tie_seed is not None:
      seeds = topology.spread_seed(tie_seed, groups[0].shape[0])
    per_group = jax.vmap(
        lambda *args: select(*args[:-1], args[-1]),
        in_axes=(0,) * len(groups) + (None if seeds is None else 0,),
    )(*groups, seeds)
    return self.from_groups(per_group, shape)

  def drop_and_grow(
      self,
      mask: jax.Array,
      weights: jax.Array,
      grow_scores: jax.Array,
      num_swap: Any,
      tie_seed: Optional[jax.Array] = None,
  ) -> jax.Array:
    """``topology.drop_and_grow`` that keeps every group's count.

    The ``num_swap`` smallest-|w| active entries of the whole kernel are
    dropped; each group then grows, by ``grow_scores``, as many entries as
    it lost. (Swapping a share of every group instead would swap nothing in
    a 2:4 group: 30% of 2 rounds to 0.)
    """
    if not self.is_structured:
      return topology.drop_and_grow(
          mask, weights, grow_scores, num_swap, tie_seed
      )
    num_active = jnp.sum(mask, dtype=jnp.int32)
    kept = topology.top_k_mask(
        jnp.where(mask, jnp.abs(weights), -jnp.inf),
        num_active - jnp.minimum(num_swap, num_active),
        tie_seed,
    )

    def regrow(group_mask, group_kept, scores, seed):
      lost = jnp.sum(group_mask, dtype=jnp.int32) - jnp.sum(
          group_kept, dtype=jnp.int32
      )
      grown = topology.top_k_mask(
          jnp.where(group_kept, -jnp.inf, scores), lost, seed
      )
      return group_kept | grown

    return self.apply(
        regrow,
        mask,
        kept,
        grow_scores,
        tie_seed=None if tie_seed is None else topology.other_seed(tie_seed),
    )

  def random_mask(
      self, scores: jax.Array, sparsity: float, tie_seed: Any = None
  ) -> jax.Array:
    """The entries with the largest ``scores``, group by group."""
    k = self.active_per_group(sparsity, scores.shape)
    return self.apply(
        lambda s, seed: topology.top_k_mask(s, k, seed),
        scores,
        tie_seed=tie_seed,
    )

  def holds(self, mask: Any, sparsity: float) -> bool:
    """Whether ``mask`` (host array) has the structure at ``sparsity``."""
    groups = self.to_groups(jnp.asarray(mask))
    counts = jnp.sum(groups, axis=1)
    return bool(jnp.all(counts == self.active_per_group(sparsity, mask.shape)))


UNSTRUCTURED = MaskStructure()
