"""Multiply-accumulates of a traced JAX function, attributed to parameters.

``macs_by_param`` traces a function with ``jax.make_jaxpr`` and counts the
multiply-accumulates (MACs) of every ``dot_general`` and
``conv_general_dilated`` it performs, recursing into sub-jaxprs (jit,
custom_jvp/custom_vjp, remat, cond, scan bodies times their length).

Each product is attributed to the parameter leaf it consumes, so that the
caller can scale it by that leaf's density. A value is *parameter-derived*
when it is computed from parameters and constants alone (reshapes, casts,
transposes, broadcasts, scaling...), and *data-dependent* as soon as the
function's data inputs flow into it. A product with exactly one operand
derived from parameters belongs to that parameter (the largest, if the
operand mixes several); any other product (of two activations, or of two
parameter-derived operands) is *unattributed* and counts dense. Gathers
(embedding lookups) are not products and cost nothing.
"""

import collections
import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Optional

import jax
from jax.extend import core as jax_core

from rigl_jax.sparse import tree_paths

# The state of a jaxpr variable: the parameter paths a parameter-derived value
# comes from (an empty set for constants), or None for a data-dependent value.
_Provenance = Optional[frozenset[str]]
_DATA: _Provenance = None
_CONSTANT: _Provenance = frozenset()

PRODUCT_PRIMITIVES = ('dot_general', 'conv_general_dilated')


@dataclasses.dataclass(frozen=True)
class MacCounts:
  """Multiply-accumulates of one call of a function.

  Attributes:
    by_param: MACs of the products that consume each parameter leaf, keyed by
      its '/'-joined path; leaves that feed no product are absent.
    unattributed: MACs of products that consume no single parameter.
  """

  by_param: Mapping[str, int]
  unattributed: int


def product_macs(eqn: jax_core.JaxprEqn) -> int:
  """MACs of one ``dot_general`` or ``conv_general_dilated`` equation.

  Every output element sums over the contracted entries: the contracting
  dimensions of a ``dot_general``; a kernel's taps times its input features
  per group for a convolution (so a depthwise convolution counts one input
  feature per output).
  """
  out_size = math.prod(eqn.outvars[0].aval.shape)
  lhs, rhs = eqn.invars[0].aval, eqn.invars[1].aval
  name = eqn.primitive.name
  if name == 'dot_general':
    (lhs_contracting, _), _ = eqn.params['dimension_numbers']
    return out_size * math.prod(lhs.shape[d] for d in lhs_contracting)
  if name == 'conv_general_dilated':
    out_features = rhs.shape[eqn.params['dimension_numbers'].rhs_spec[0]]
    return out_size * (math.prod(rhs.shape) // out_features)
  raise ValueError(f'{name} is not one of {PRODUCT_PRIMITIVES}')


def _open(jaxpr: Any) -> jax_core.Jaxpr:
  return jaxpr.jaxpr if isinstance(jaxpr, jax_core.ClosedJaxpr) else jaxpr


def _join(states: Sequence[_Provenance]) -> _Provenance:
  """A value computed from ``states`` without sub-jaxprs to look into."""
  if any(s is _DATA for s in states):
    return _DATA
  return frozenset().union(*states)


class _Counter:
  """Accumulates MACs while walking jaxprs."""

  def __init__(self, param_sizes: Mapping[str, int]):
    self._param_sizes = param_sizes
    self.by_param: collections.Counter[str] = collections.Counter()
    self.unattributed = 0

  def _owner(self, operands: Sequence[_Provenance]) -> Optional[str]:
    owned = [s for s in operands if s]
    if len(owned) != 1:
      return None
    # A kernel mixed with a smaller parameter (say a weight-norm scale) is
    # still that kernel's product.
    return max(sorted(owned[0]), key=lambda path: self._param_sizes[path])

  def _count(
      self, eqn: jax_core.JaxprEqn, states: Sequence[_Provenance], repeats: int
  ) -> None:
    macs = product_macs(eqn) * repeats
    owner = self._owner(states[:2])
    if owner is None:
      self.unattributed += macs
    else:
      self.by_param[owner] += macs

  @property
  def total(self) -> int:
    return sum(self.by_param.values()) + self.unattributed

  def _child(self) -> '_Counter':
    return _Counter(self._param_sizes)

  def _merge(self, other: '_Counter') -> None:
    self.by_param.update(other.by_param)
    self.unattributed += other.unattributed

  def walk(
      self,
      jaxpr: jax_core.Jaxpr,
      in_states: Sequence[_Provenance],
      repeats: int,
  ) -> list[_Provenance]:
    """Counts the products of ``jaxpr``; returns its outputs' states."""
    env: dict[jax_core.Var, _Provenance] = {
        v: _CONSTANT for v in jaxpr.constvars
    }
    env.update(zip(jaxpr.invars, in_states))

    def read(v):
      return _CONSTANT if isinstance(v, jax_core.Literal) else env[v]

    for eqn in jaxpr.eqns:
      states = [read(v) for v in eqn.invars]
      outs = self._equation(eqn, states, repeats)
      env.update(zip(eqn.outvars, outs))
    return [read(v) for v in jaxpr.outvars]

  def _equation(
      self, eqn: jax_core.JaxprEqn, states: list[_Provenance], repeats: int
  ) -> list[_Provenance]:
    """Counts one equation; returns the states of its outputs."""
    name = eqn.primitive.name
    joined = [_join(states)] * len(eqn.outvars)
    if name in PRODUCT_PRIMITIVES:
      self._count(eqn, states, repeats)
      return joined
    if name == 'scan':
      num_consts, num_carry = eqn.params['num_consts'], eqn.params['num_carry']
      # Carries change every iteration: treat them as data. Scanned-over
      # inputs (xs) keep their provenance: nn.scan stacks layer parameters.
      body_states = (
          states[:num_consts]
          + [_DATA] * num_carry
          + states[num_consts + num_carry :]
      )
      self.walk(
          _open(eqn.params['jaxpr']),
          body_states,
          repeats * eqn.params['length'],
      )
      return joined
    if name == 'cond':
      # One branch runs: count the most expensive one.
      best = None
      for branch in eqn.params['branches']:
        child = self._child()
        child.walk(_open(branch), states[1:], repeats)
        if best is None or child.total > best.total:
          best = child
      if best is not None:
        self._merge(best)
      return joined
    if name == 'while':
      child = self._child()
      cond_consts = eqn.params['cond_nconsts']
      body_consts = eqn.params['body_nconsts']
      body_states = states[cond_consts : cond_consts + body_consts] + [
          _DATA
      ] * (len(states) - cond_consts - body_consts)
      child.walk(_open(eqn.params['body_jaxpr']), body_states, repeats)
      if child.by_param or child.unattributed:
        raise ValueError(
            'cannot count FLOPs of a while loop with matrix '
            'products: its trip count is unknown (use lax.scan '
            'or a fori_loop with static bounds)'
        )
      return joined
    subjaxprs = list(jax_core.jaxprs_in_params(eqn.params))
    if not subjaxprs:
      return joined
    if len(subjaxprs) == 1 and len(subjaxprs[0].invars) == len(states):
      # Calls (jit, custom_jvp_call, custom_vjp_call, checkpoint, ...) pass
      # their operands straight to the callee.
      return self.walk(subjaxprs[0], states, repeats)
    raise NotImplementedError(
        f'cannot count FLOPs through primitive {name!r}: its sub-jaxprs do '
        'not map onto its operands'
    )


def count_macs(
    closed_jaxpr: jax_core.ClosedJaxpr,
    in_provenance: Sequence[Optional[frozenset[str]]],
    param_sizes: Mapping[str, int],
) -> MacCounts:
  """Counts the products of a traced function.

  Args:
    closed_jaxpr: the function, e.g. from ``jax.make_jaxpr``.
    in_provenance: per input variable, the set of parameter paths it is (one
      path for a parameter leaf, an empty set for a data-independent
      non-parameter such as BatchNorm statistics), or None for data.
    param_sizes: the number of entries of every parameter path, to pick the
      largest when a product consumes several.

  Returns:
    The MACs by parameter path and the unattributed MACs.
  """
  if len(in_provenance) != len(closed_jaxpr.jaxpr.invars):
    raise ValueError(
        f'in_provenance has {len(in_provenance)} entries for '
        f'{len(closed_jaxpr.jaxpr.invars)} jaxpr inputs'
    )
  counter = _Counter(param_sizes)
  counter.walk(closed_jaxpr.jaxpr, list(in_provenance), 1)
  return MacCounts(
      by_param=dict(counter.by_param), unattributed=counter.unattributed
  )


def macs_by_param(
    fn: Callable[..., Any], params: Any, state: Any, *inputs: Any
) -> MacCounts:
  """MACs of ``fn(params, state, *inputs)``, attributed to ``params``' leaves.

  Args:
    fn: the function to count, e.g. a model's apply.
    params: a pytree of arrays or ``jax.ShapeDtypeStruct``; products are
      attributed to its leaves, named by their '/'-joined paths.
    state: a pytree of data-independent non-parameters (e.g. BatchNorm
      statistics), or None.
    *inputs: the data (arrays or ``jax.ShapeDtypeStruct``), e.g. a batch of
      one example.

  Returns:
    The MACs of one call, by parameter path and unattributed.
  """
  closed_jaxpr = jax.make_jaxpr(fn)(params, state, *inputs)
  named = tree_paths.named_leaves(params)
  provenance = (
      [frozenset([path]) for path, _ in named]
      + [_CONSTANT] * len(jax.tree.leaves(state))
      + [_DATA] * len(jax.tree.leaves(inputs))
  )
  sizes = {path: math.prod(leaf.shape) for path, leaf in named}
  return count_macs(closed_jaxpr, provenance, sizes)
