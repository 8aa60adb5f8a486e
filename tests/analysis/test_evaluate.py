"""Loss, accuracy and BatchNorm statistics along a path."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rigl_jax.analysis import batch_stats as batch_stats_lib
from rigl_jax.analysis import evaluate
from rigl_jax.analysis import paths
from tests.analysis import problems


def test_t_grid_runs_exactly_from_zero_to_one():
  ts = evaluate.t_grid()
  assert len(ts) == 21 and ts[0] == 0.0 and ts[-1] == 1.0
  np.testing.assert_allclose(np.diff(ts), 0.05)


def test_losses_at_the_ends_are_the_solutions_losses():
  model, inputs, targets, (a, _), _ = problems.teacher_problem()
  b = jax.tree.map(lambda p: p + 0.3, a)

  @jax.jit
  def eval_fn(params, model_state):
    del model_state
    predictions = model.apply({'params': params}, inputs)
    return {
        'loss': jnp.mean((predictions - targets) ** 2),
        'accuracy': jnp.mean(jnp.sign(predictions) == jnp.sign(targets)),
    }

  free = paths.initial_free_points(a, b, 3)
  free = tuple(jax.tree.map(lambda p: p + 1.0, f) for f in free)
  result = evaluate.evaluate_path(eval_fn, a, b, free, ts=[0.0, 0.5, 1.0])
  np.testing.assert_array_equal(result['t'], [0.0, 0.5, 1.0])
  at_a, at_b = eval_fn(a, None), eval_fn(b, None)
  assert result['loss'][0] == float(at_a['loss'])
  assert result['loss'][-1] == float(at_b['loss'])
  assert result['accuracy'][0] == float(at_a['accuracy'])
  assert result['accuracy'][-1] == float(at_b['accuracy'])
  assert result['loss'][1] > result['loss'][0]  # The curve left the line.


def bn_solution(seed, inputs):
  """BatchNormMLP params and running statistics after a few train passes."""
  model = problems.BatchNormMLP()
  variables = model.init(jax.random.PRNGKey(seed), inputs[0])
  for x in inputs:
    _, state = model.apply(
        variables, x + seed, train=True, mutable=['batch_stats']
    )
    variables = {'params': variables['params'], **state}
  return variables['params'], variables['batch_stats']


def fresh_batch_stats(params, inputs):
  """Mean over batches of each BatchNorm's batch mean and variance."""

  def batch_norm(h, bn):
    mean, var = h.mean(0), h.var(0)
    normed = (h - mean) / jnp.sqrt(var + 1e-5)
    return normed * bn['scale'] + bn['bias'], {'mean': mean, 'var': var}

  per_batch = []
  for x in inputs:
    h, bn1 = batch_norm(
        x @ params['Dense_0']['kernel'] + params['Dense_0']['bias'],
        params['bn1'],
    )
    h = jnp.tanh(h) @ params['Dense_1']['kernel'] + params['Dense_1']['bias']
    _, bn2 = batch_norm(h, params['bn2'])
    per_batch.append({'bn1': bn1, 'bn2': bn2})
  return jax.tree.map(lambda *s: jnp.mean(jnp.stack(s), 0), *per_batch)


def test_batch_norm_statistics_are_recomputed_at_every_point():
  rng = np.random.default_rng(0)
  inputs = [jnp.asarray(rng.standard_normal((16, 5))) for _ in range(4)]
  start, start_stats = bn_solution(0, inputs)
  end, end_stats = bn_solution(1, inputs)
  model = problems.BatchNormMLP()
  recompute = batch_stats_lib.make_batch_stats_fn(model, inputs, start_stats)

  middle = paths.linear_point(start, end, 0.5)
  stats = recompute(middle)
  expected = fresh_batch_stats(middle, inputs)
  assert jax.tree.structure(stats) == jax.tree.structure(start_stats)
  for got, want, ends in zip(
      jax.tree.leaves(stats),
      jax.tree.leaves(expected),
      zip(jax.tree.leaves(start_stats), jax.tree.leaves(end_stats)),
  ):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for endpoint in ends:
      assert np.abs(np.asarray(got) - np.asarray(endpoint)).max() > 1e-2

  seen = []

  def eval_fn(params, model_state):
    seen.append(model_state)
    outputs = model.apply(
        {'params': params, 'batch_stats': model_state}, inputs[0]
    )
    return {'loss': jnp.mean(outputs**2), 'accuracy': 0.0}

  result = evaluate.evaluate_path(
      eval_fn,
      start,
      end,
      ts=[0.0, 0.5, 1.0],
      model_state=start_stats,
      recompute_batch_stats=recompute,
  )
  assert result['loss'].shape == (3,)
  for state, params in zip(seen, (start, middle, end)):
    for got, want in zip(
        jax.tree.leaves(state),
        jax.tree.leaves(fresh_batch_stats(params, inputs)),
    ):
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_statistics_owned_by_no_batch_norm_are_refused():
  class Counter(nn.Module):

    @nn.compact
    def __call__(self, x, train: bool = False):
      count = self.variable('batch_stats', 'count', jnp.zeros, ())
      count.value += 1
      return x

  recompute = batch_stats_lib.make_batch_stats_fn(
      Counter(), [jnp.ones(3)], {'count': jnp.zeros(())}
  )
  with pytest.raises(ValueError, match='no nn.BatchNorm'):
    recompute({})
