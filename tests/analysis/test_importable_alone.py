"""rigl_jax.analysis runs without the runner, the models or TensorFlow."""

from tests import fixtures

SCRIPT = """
import jax.numpy as jnp
from rigl_jax import analysis
from rigl_jax.analysis import batch_stats, curve_fitting, evaluate, paths
start, end = {'w': jnp.zeros(2)}, {'w': jnp.ones(2)}
result = analysis.evaluate_path(
    lambda p, s: {'loss': p['w'].sum()}, start, end, ts=[0.0, 1.0])
assert list(result['loss']) == [0.0, 2.0], result
print('ok')
"""


def test_analysis_imports_without_the_runner():
  result = fixtures.run_without(fixtures.RUNNER_AND_TENSORFLOW, SCRIPT)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.split() == ['ok']
