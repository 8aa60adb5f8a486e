"""Mixed precision: bfloat16 compute, float32 state, the same topology."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import harness
from rigl_jax.training import config as run_config
from rigl_jax.training import loop
from rigl_jax.training import steps
from rigl_jax.training import tasks
from tests import fixtures

MNIST = os.path.join(fixtures.REPO_ROOT, '..', 'shared', 'data', 'mnist')


def compiled_steps(mnist_dir, **overrides):
  """The run's setup, compiled steps and a random batch of tiny MNIST."""
  bench = harness.build(
      os.path.join(fixtures.REPO_ROOT, 'configs', 'mnist_lenet300.py'),
      overrides.pop('method'),
      {**fixtures.tiny_mnist_overrides(mnist_dir), **overrides},
  )
  return bench.setup, bench.compiled, bench.batch


def float_dtypes(tree):
  return {
      x.dtype
      for x in jax.tree.leaves(tree)
      if jnp.issubdtype(x.dtype, jnp.floating)
  }


def test_half_precision_computes_in_bfloat16_and_keeps_float32_state(
    mnist_dir,
):
  setup, compiled, batch = compiled_steps(
      mnist_dir, method='rigl', half_precision=True
  )
  assert setup.compute_dtype == jnp.bfloat16
  state = compiled.init_state(jax.random.PRNGKey(0))
  inputs = setup.preprocess(batch, None, True)['inputs']
  logits_dtypes = set()

  def loss(params):
    logits, _ = steps.apply_model(
        setup.model, params, None, inputs, True, compute_dtype=jnp.bfloat16
    )
    logits_dtypes.add(logits.dtype)
    return jnp.mean(tasks.cross_entropy(logits, batch['labels']))

  # The layers see bfloat16: the jaxpr's dot products take bfloat16 operands.
  jaxpr = jax.make_jaxpr(jax.grad(loss))(state.params)
  dots = [e for e in jaxpr.eqns if e.primitive.name == 'dot_general']
  assert dots and all(
      v.aval.dtype == jnp.bfloat16 for e in dots for v in e.invars
  )
  assert logits_dtypes == {jnp.dtype(jnp.float32)}
  assert float_dtypes(jax.grad(loss)(state.params)) == {jnp.dtype(jnp.float32)}
  metrics = compiled.empty_metrics(steps.TrainMetrics)
  for update in (False, True, False):
    state, metrics = compiled.train[update](state, metrics, batch)
  assert float_dtypes(state.params) == {jnp.dtype(jnp.float32)}
  assert float_dtypes(state.opt_state) == {jnp.dtype(jnp.float32)}
  assert float_dtypes(state.batch_stats) <= {jnp.dtype(jnp.float32)}
  assert {m.dtype for m in jax.tree.leaves(state.masks)} == {
      jnp.dtype(jnp.bool_)
  }


@pytest.mark.parametrize('method', ['static', 'pruning'])
def test_masks_match_float32_at_the_same_step(mnist_dir, method):
  """Masks come from float32 params, whatever the compute dtype.

  From the same state, a pruning step (and static's plain step) gives
  bit-identical masks in bfloat16 and in float32.
  """
  results = {}
  for half in (False, True):
    setup, compiled, batch = compiled_steps(
        mnist_dir,
        method=method,
        sparsity=0.8,
        batch_size=16,
        half_precision=half,
    )
    state = compiled.init_state(jax.random.PRNGKey(0))
    # A step where the schedule prunes to the final sparsity.
    step = setup.method.schedule.end_step if method == 'pruning' else 0
    state = state.replace(step=jnp.asarray(step, state.step.dtype))
    update = method == 'pruning'
    new_state, _ = compiled.train[update](
        state, compiled.empty_metrics(steps.TrainMetrics), batch
    )
    results[half] = jax.device_get(new_state.masks)
  for full, half in zip(
      jax.tree.leaves(results[False]), jax.tree.leaves(results[True])
  ):
    np.testing.assert_array_equal(full, half)
  if method == 'pruning':
    assert any(m.mean() < 1 for m in jax.tree.leaves(results[True]))


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(MNIST), reason='needs ../shared/data')
def test_bfloat16_mnist_reaches_the_float32_accuracy(tmp_path):
  """RigL on real MNIST (a tenth of the main job): within 0.5 points."""
  config = run_config.load(
      os.path.join(fixtures.REPO_ROOT, 'configs', 'mnist_lenet300.py')
  )
  accuracies = {}
  for half in (False, True):
    run = run_config.set_values(
        config,
        {
            'dataset.local_dir': MNIST,
            'training_multiplier': 0.1,
            'half_precision': half,
        },
    )
    results = loop.train_and_evaluate(run, str(tmp_path / str(half)))
    accuracies[half] = results['eval']['accuracy']
  assert accuracies[False] > 0.95
  assert abs(accuracies[True] - accuracies[False]) <= 0.005, accuracies
