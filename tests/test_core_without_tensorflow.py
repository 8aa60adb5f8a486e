"""The sparse core must import and run with TensorFlow absent."""

import subprocess
import sys

CORE_MODULES = [
    'rigl_jax', 'rigl_jax.distributions', 'rigl_jax.masks',
    'rigl_jax.schedules', 'rigl_jax.topology', 'rigl_jax.topology_stats',
    'rigl_jax.transforms', 'rigl_jax.train_state', 'rigl_jax.methods',
]

SCRIPT = f"""
import sys
sys.modules['tensorflow'] = None  # Any import of TensorFlow now fails.
import importlib
for name in {CORE_MODULES!r}:
  importlib.import_module(name)
import jax, jax.numpy as jnp
import rigl_jax
params = {{'w': jnp.ones((4, 4))}}
masks = rigl_jax.random_masks(
    jax.random.PRNGKey(0), params, rigl_jax.get_sparsities(params, 0.5, 'erk'))
assert int(masks['w'].sum()) == 8
assert not any(m.startswith('tensorflow') for m in sys.modules
               if sys.modules[m] is not None)
print('ok')
"""


def test_sparse_core_imports_without_tensorflow():
  result = subprocess.run([sys.executable, '-c', SCRIPT], capture_output=True,
                          text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip().endswith('ok')
