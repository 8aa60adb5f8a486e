"""The compiled steps of a real config, as the training loop runs them."""

import jax
import jax.numpy as jnp
import numpy as np

from rigl_jax import data
from rigl_jax.data import device_feed
from rigl_jax.training import build
from rigl_jax.training import loop
from rigl_jax.training import steps
from tests import fixtures


def test_rigl_update_step_of_a_real_model_grows_the_largest_gradients(
    mnist_dir,
):
  """Through the compiled LeNet update step, not a constructed example."""
  setup = build.build(
      fixtures.tiny_mnist_config(mnist_dir, sparsity=0.98, batch_size=16)
  )
  shardings = loop.Shardings.of(loop.create_mesh())
  feed = device_feed.Streamed(
      None, data.batch_shapes(setup.run.dataset, 16), shardings.batch
  )
  compiled = loop.compile_steps(setup, shardings, feed)
  state = compiled.init_state(jax.random.PRNGKey(0))
  batch = jax.device_put(
      data.random_batch(
          setup.run.dataset,
          16,
          setup.spec.num_classes,
          np.random.default_rng(0),
      ),
      shardings.batch,
  )
  inputs = setup.preprocess(batch, None, True)['inputs']

  def loss(params):
    logits, _ = steps.apply_model(setup.model, params, None, inputs, train=True)
    return jnp.mean(steps.cross_entropy(logits, batch['labels'], 0.0))

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
