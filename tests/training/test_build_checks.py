"""Checks build() makes before any data is loaded or anything compiled."""

import jax
import pytest

from rigl_jax.training import build
from rigl_jax.training import config as run_config


@pytest.mark.parametrize(
    'dataset,model',
    [('tiny_shakespeare', 'lenet300_100'), ('mnist', 'gru_lm')],
)
def test_a_model_for_another_task_is_refused_naming_the_key(dataset, model):
  config = run_config.base_config()
  config.dataset.name = dataset
  config.model.name = model
  with pytest.raises(run_config.ConfigError, match='config.model.name'):
    build.build(config)


def test_an_l2_exemption_that_matches_nothing_is_refused():
  config = run_config.base_config()
  config.optimizer.l2 = 1e-4
  config.optimizer.l2_exclude = ('^conv',)
  with pytest.raises(
      run_config.ConfigError, match='config.optimizer.l2_exclude'
  ):
    build.build(config)


def test_a_bad_reference_width_is_refused():
  config = run_config.base_config()
  config.model.reference_width = -1.0
  with pytest.raises(
      run_config.ConfigError, match='config.model.reference_width'
  ):
    build.build(config)


def test_reference_width_changes_only_the_reported_ratios():
  # As the reference trains a wider model: ERK of its own layers; only the
  # FLOPs ratios' denominator is the narrower model.
  config = run_config.base_config()
  config.model.width = 2.0
  own = build.build(config)
  config.model.reference_width = 1.0
  big = build.build(config)
  assert jax.tree.leaves(big.sparsities) == jax.tree.leaves(own.sparsities)
  own_ratio = own.costs.report()['inference_flops_ratio']
  big_ratio = big.costs.report()['inference_flops_ratio']
  # LeNet's products grow about 4x with twice the width (2x at the ends).
  assert 2.0 < big_ratio / own_ratio < 4.0
