"""The compiled steps of a real config, as the training loop runs them."""

import jax
import jax.numpy as jnp
import numpy as np

from rigl_jax.data import device_feed
from rigl_jax.training import build
from rigl_jax.training import compiled as compiled_lib
from rigl_jax.training import steps
from rigl_jax.training import tasks
from tests import fixtures


def test_rigl_update_step_of_a_real_model_grows_the_largest_gradients(
    mnist_dir,
):
  """Through the compiled LeNet update step, not a constructed example."""
  setup = build.build(
      fixtures.tiny_mnist_config(mnist_dir, sparsity=0.98, batch_size=16)
  )
  shardings = compiled_lib.Shardings.of(compiled_lib.create_mesh())
  feed = device_feed.Streamed(
      None, setup.data.batch_shapes(16), shardings.batch
  )
  compiled = compiled_lib.compile_steps(setup, shardings, feed)
  state = compiled.init_state(jax.random.PRNGKey(0))
  batch = jax.device_put(
      setup.data.random_batch(16, np.random.default_rng(0)),
      shardings.batch,
  )
  inputs = setup.preprocess(batch, None, True)['inputs']

  def loss(params):
    logits, _ = steps.apply_model(setup.model, params, None, inputs, train=True)
    return jnp.mean(tasks.cross_entropy(logits, batch['labels'], 0.0))

  grads = jax.grad(loss)(state.params)
  old_masks = jax.device_get(state.masks)
  new_state, _ = compiled.train[True](
      jax.tree.map(lambda x: x.copy(), state),
      compiled.empty_metrics(steps.TrainMetrics),
      batch,
  )
  for layer in ('Dense_0', 'Dense_1', 'Dense_2'):
    old = np.asarray(old_masks[layer]['kernel'])
    new = np.asarray(new_state.masks[layer]['kernel'])
    score = np.abs(np.asarray(grads[layer]['kernel']))
    grown, passed_over = new & ~old, ~new & ~old
    assert grown.sum() > 0
    assert score[grown].min() >= score[passed_over].max() * (1 - 1e-4)
