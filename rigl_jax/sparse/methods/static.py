"""Static: a random sparse topology fixed for the whole run."""

import dataclasses

from rigl_jax.sparse.methods import base


@dataclasses.dataclass(frozen=True)
class Static(base.SparseMethod):
  """Random masks with the distribution's per-layer sparsities, never changed."""

  name = 'static'
  display_name = 'Static'


METHOD = Static
