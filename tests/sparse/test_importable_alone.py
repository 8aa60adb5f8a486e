"""rigl_jax.sparse imports and runs with nothing but jax, optax, flax, numpy.

Every module under rigl_jax/sparse is imported in a subprocess where
TensorFlow, TFDS, clu, Grain, ml_collections and rigl_jax's own data,
training and models packages cannot be imported.
"""

from tests import fixtures

SCRIPT = """
import importlib, pkgutil, sys
import rigl_jax.sparse
modules = [m.name for m in pkgutil.walk_packages(rigl_jax.sparse.__path__,
                                                 'rigl_jax.sparse.')]
for name in modules:
  importlib.import_module(name)
import jax, jax.numpy as jnp
from rigl_jax import sparse
params = {'w': jnp.ones((4, 4))}
masks = sparse.random_masks(
    jax.random.PRNGKey(0), params, sparse.get_sparsities(params, 0.5, 'erk'))
assert int(masks['w'].sum()) == 8
loaded = sorted(m for m in sys.modules if sys.modules[m] is not None and
                m.split('.')[0] in ('tensorflow', 'clu', 'grain',
                                    'ml_collections'))
assert not loaded, loaded
print(len(modules), 'modules')
"""


def test_every_sparse_module_imports_without_the_runner():
  result = fixtures.run_without(fixtures.RUNNER_AND_TENSORFLOW, SCRIPT)
  assert result.returncode == 0, result.stderr[-3000:]
  # distributions, masks, schedules, topology, ..., methods and each method.
  assert int(result.stdout.split()[0]) >= 15
