"""Config argument parsing, multiplier resolution and the optimizer."""

import jax.numpy as jnp
import pytest

from rigl_jax.sparse import methods
from rigl_jax.training import config as run_config
from rigl_jax.training import optimizers


def test_apply_arg_parses_literals_strings_and_dotted_keys():
  config = run_config.apply_arg(
      run_config.base_config(),
      'method=set, sparsity=0.95,mask_update.interval=50,'
      "layer_sparsity=(('^a', 'dense'), ('b', 0.5))",
  )
  assert config.method == 'set'
  assert config.sparsity == 0.95
  assert config.mask_update.interval == 50
  assert config.layer_sparsity == (('^a', 'dense'), ('b', 0.5))


@pytest.mark.parametrize(
    'arg', ['nosuchkey=1', 'mask_update.nope=2', 'nope.interval=3', 'method']
)
def test_apply_arg_rejects_unknown_keys(arg):
  with pytest.raises(run_config.ConfigError, match='unknown key|key=value'):
    run_config.apply_arg(run_config.base_config(), arg)


def test_resolve_scales_every_step_anchor_by_the_multiplier():
  config = run_config.base_config()
  config.num_train_steps = 1000
  config.mask_update.end_step = 750
  config.pruning.begin_step, config.pruning.end_step = 100, 600
  config.lr_schedule.warmup_steps = 50
  config.lr_schedule.boundaries = (300, 700)
  config.training_multiplier = 5.0
  resolved = run_config.resolve(config)
  assert resolved.num_train_steps == 5000
  assert resolved.mask_update.end_step == 3750
  assert resolved.mask_update.interval == config.mask_update.interval
  assert (resolved.pruning.begin_step, resolved.pruning.end_step) == (500, 3000)
  assert resolved.lr_schedule.warmup_steps == 250
  assert resolved.lr_schedule.boundaries == (1500, 3500)
  assert config.num_train_steps == 1000  # The input is not modified.


def test_every_method_brings_its_config_block():
  config = run_config.base_config()
  for method in methods.METHODS.values():
    for block, defaults in method.config_defaults().items():
      assert set(config[block]) == set(defaults), (method.name, block)
  assert config.mask_update.skip_optimizer_step is None
  # A placeholder: typed overrides are accepted, others are not.
  config.mask_update.skip_optimizer_step = True
  with pytest.raises(TypeError):
    config.mask_update.skip_optimizer_step = 'yes'


def test_smoke_squeezes_every_method_into_two_steps():
  config = run_config.base_config()
  run_config.shrink_for_smoke_test(config)
  assert config.num_train_steps == 2
  for name in methods.METHODS:
    config.method = name
    method = methods.from_config(config)
    if method.changes_topology:
      assert [s for s in range(2) if method.is_update_step(s)], name


def test_invalid_arguments_become_config_errors_naming_the_key():
  with pytest.raises(
      run_config.ConfigError,
      match=r'^config\.mask_update\.interval: must be a ',
  ):
    with run_config.as_config_errors():
      methods.from_config(
          run_config.set_values(
              run_config.base_config(), {'mask_update.interval': 0}
          )
      )


def test_warmup_then_piecewise_learning_rate():
  config = run_config.base_config()
  config.optimizer.learning_rate = 1.6
  config.lr_schedule.name = 'piecewise'
  config.lr_schedule.warmup_steps = 10
  config.lr_schedule.boundaries = (30, 70)
  schedule = optimizers.learning_rate_schedule(config)
  for step, expected in [
      (0, 0.0),
      (5, 0.8),
      (10, 1.6),
      (29, 1.6),
      (30, 0.16),
      (69, 0.16),
      (70, 0.016),
  ]:
    assert float(schedule(jnp.asarray(step))) == pytest.approx(
        expected, rel=1e-5
    )


def test_l2_applies_to_kernels_only():
  config = run_config.base_config()
  config.optimizer.name = 'sgd'
  config.optimizer.learning_rate = 1.0
  config.optimizer.l2 = 0.5
  tx = optimizers.create_optimizer(config)
  params = {'kernel': jnp.ones((2, 2)), 'bias': jnp.ones(2)}
  zeros = {'kernel': jnp.zeros((2, 2)), 'bias': jnp.zeros(2)}
  updates, _ = tx.update(zeros, tx.init(params), params, step=0)
  assert float(updates['kernel'][0, 0]) == -0.5
  assert float(updates['bias'][0]) == 0.0


def test_set_values_sets_dotted_keys_and_rejects_unknown_ones():
  config = run_config.set_values(
      run_config.base_config(), {'mask_update.interval': 7, 'seed': 3}
  )
  assert (config.mask_update.interval, config.seed) == (7, 3)
  with pytest.raises(run_config.ConfigError, match="unknown key 'mask_upd"):
    run_config.set_values(config, {'mask_update.nope': 1})


def test_load_reads_a_config_file_with_its_argument(tmp_path):
  path = tmp_path / 'tiny.py'
  path.write_text(
      'from rigl_jax.training import config as run_config\n'
      'def get_config(arg=""):\n'
      '  return run_config.apply_arg(run_config.base_config(), arg)\n'
  )
  assert run_config.load(f'{path}:seed=5').seed == 5
  with pytest.raises(run_config.ConfigError, match='not found'):
    run_config.load(str(tmp_path / 'absent.py'))
