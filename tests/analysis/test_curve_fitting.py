"""Fitting Bézier curves of low loss between two solutions."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from rigl_jax.analysis import curve_fitting
from rigl_jax.analysis import evaluate
from rigl_jax.analysis import paths
from tests.analysis import problems


def ring_eval(params, model_state):
  del model_state
  return {'loss': problems.ring_loss(params)}


def noisy_scales(seed):
  """Batches of the ring problem: a random positive scale of the loss."""
  rng = np.random.default_rng(seed)
  while True:
    yield jnp.float32(1 + 0.2 * rng.standard_normal())


def test_fitted_curve_bends_around_the_barrier_of_the_line():
  start, end = problems.RING_START, problems.RING_END
  fit = curve_fitting.fit_curve(
      lambda params, scale: scale * problems.ring_loss(params),
      start,
      end,
      noisy_scales(0),
      num_steps=300,
      rng=jax.random.PRNGKey(0),
      optimizer=optax.adam(0.05),
  )
  assert fit.losses.shape == (300,)
  line = evaluate.evaluate_path(ring_eval, start, end)
  curve = evaluate.evaluate_path(ring_eval, start, end, fit.free)
  assert line['loss'].max() == pytest.approx(1.0)
  assert curve['loss'].max() < 0.05
  # It goes over the top of the ring, whose highest point is y = 0.618.
  assert 1.0 < float(fit.free[0]['w'][1]) < 1.5
  # The endpoints did not move.
  assert curve['loss'][0] == line['loss'][0] == 0.0
  assert curve['loss'][-1] == line['loss'][-1] == 0.0


def test_batches_may_be_a_function_of_the_step():
  steps = []

  def batch_of(step):
    steps.append(step)
    return jnp.float32(1.0)

  fit = curve_fitting.fit_curve(
      lambda params, scale: scale * problems.ring_loss(params),
      problems.RING_START,
      problems.RING_END,
      batch_of,
      num_steps=5,
      rng=jax.random.PRNGKey(0),
      order=3,
  )
  assert steps == [0, 1, 2, 3, 4]
  assert len(fit.free) == 2


def test_the_line_has_nothing_to_fit():
  with pytest.raises(ValueError, match='order 1'):
    curve_fitting.fit_curve(
        lambda params, batch: problems.ring_loss(params),
        problems.RING_START,
        problems.RING_END,
        itertools.repeat(None),
        num_steps=1,
        rng=jax.random.PRNGKey(0),
        order=1,
    )


def test_curve_in_the_union_subspace_stays_exactly_in_it():
  model, inputs, targets, (a, masks_a), (b, masks_b) = (
      problems.teacher_problem()
  )
  subspace = paths.union_subspace(masks_a, masks_b)
  outside = [~m for m in jax.tree.leaves(subspace)]
  assert all(o.any() for o in outside)  # A proper subspace.

  def mse(params, batch):
    x, y = batch
    return jnp.mean((model.apply({'params': params}, x) - y) ** 2)

  rng = np.random.default_rng(1)

  def batches(step):
    del step
    index = rng.choice(len(inputs), 64, replace=False)
    return inputs[index], targets[index]

  # Noise on every gradient entry: only the masking after each step can
  # keep the entries outside the subspace at zero.
  optimizer = optax.chain(optax.add_noise(0.1, 0.0, 0), optax.adam(0.02))
  fit = curve_fitting.fit_curve(
      mse,
      a,
      b,
      batches,
      num_steps=300,
      rng=jax.random.PRNGKey(0),
      optimizer=optimizer,
      subspace=subspace,
  )
  free = fit.free[0]
  for layer in ('hidden', 'out'):
    kernel = np.asarray(free[layer]['kernel'])
    union = np.asarray(masks_a[layer]['kernel'] | masks_b[layer]['kernel'])
    assert (kernel[~union] == 0).all()
    assert (kernel[union] != 0).all()
    assert (np.asarray(free[layer]['bias']) != 0).all()  # Dense leaves.

  def eval_fn(params, model_state):
    del model_state
    return {'loss': mse(params, (inputs, targets))}

  line = evaluate.evaluate_path(eval_fn, a, b, subspace=subspace)
  curve = evaluate.evaluate_path(eval_fn, a, b, fit.free, subspace=subspace)
  assert line['loss'][0] == curve['loss'][0] == 0.0
  assert line['loss'].max() > 0.1  # The permuted pair has a barrier.
  assert curve['loss'].max() < 0.5 * line['loss'].max()
