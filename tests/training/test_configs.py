"""Every experiment config builds, and its smoke variant trains with each method."""

import os

import numpy as np
import pytest

from rigl_jax.sparse import methods
from rigl_jax.training import config as run_config
from rigl_jax.training import loop
from tests import fixtures

CONFIG_DIR = os.path.join(fixtures.REPO_ROOT, 'configs')
CONFIGS = sorted(
    name[:-3]
    for name in os.listdir(CONFIG_DIR)
    if name.endswith('.py') and not name.startswith('_')
)
SHAKESPEARE = os.path.join(fixtures.SHARED_DATA, 'tinyshakespeare')


def load_config(name, arg=''):
  return run_config.load(os.path.join(CONFIG_DIR, f'{name}.py:{arg}'))


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds_and_documents_its_command(name):
  config = load_config(name)
  run_config.resolve(config)
  with open(os.path.join(CONFIG_DIR, f'{name}.py')) as f:
    docstring = f.read().split('"""')[1]
  assert f'--config=configs/{name}.py' in docstring
  assert 'xpected result' in docstring
  smoke = load_config(name, 'smoke,method=set')
  assert smoke.method == 'set' and smoke.num_train_steps == 2


def test_uniform_keeps_the_first_layer_dense_and_erk_does_not():
  from rigl_jax.data import specs as dataset_specs  # pylint: disable=g-import-not-at-top
  from rigl_jax.training import build  # pylint: disable=g-import-not-at-top

  for name, arg in (
      ('imagenet_resnet50', 'distribution=uniform'),
      ('imagenet_resnet50', 'distribution=erk'),
      ('imagenet_mobilenet_v1', 'distribution=erk'),
  ):
    config = load_config(name, arg)
    spec = dataset_specs.get_spec(config.dataset)
    params = build.abstract_variables(
        build.create_model(config, spec, config.model.width), spec
    )['params']
    sparsities = build.get_sparsities(config, params)
    stem = sparsities['stem']['kernel']
    if name == 'imagenet_resnet50' and config.distribution == 'erk':
      assert stem is not None and stem > 0
    else:
      assert stem is None
    if 'mobilenet' in name:
      assert all(
          v['depthwise']['kernel'] is None
          for k, v in sparsities.items()
          if 'depthwise' in v
      )


def test_wrn_follows_the_reference_recipe_where_the_paper_is_silent():
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from rigl_jax.training import build  # pylint: disable=g-import-not-at-top

  config = load_config('cifar10_wrn22_2')
  assert config.optimizer.nesterov and config.pruning.begin_step == 20_000
  setup = build.build(load_config('cifar10_wrn22_2', 'smoke'))
  assert setup.sparsities['stem']['kernel'] is None  # Dense under ERK.
  assert setup.model.dropout_rate == 0.3
  x = jnp.ones((2, 32, 32, 3))
  variables = setup.model.init(jax.random.key(0), x)

  def logits(key):
    out, _ = setup.model.apply(
        variables,
        x,
        train=True,
        rngs={'dropout': jax.random.key(key)},
        mutable=['batch_stats'],
    )
    return out

  assert not jnp.allclose(logits(1), logits(2))
  np.testing.assert_array_equal(
      setup.model.apply(variables, x), setup.model.apply(variables, x)
  )


def test_mobilenet_l2_is_the_papers_and_spares_depthwise_kernels():
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  from rigl_jax.training import build  # pylint: disable=g-import-not-at-top
  from rigl_jax.training import optimizers  # pylint: disable=g-import-not-at-top

  config = load_config('imagenet_mobilenet_v1', 'smoke')
  assert config.optimizer.l2 == 1e-4
  setup = build.build(config)
  params = jax.tree.map(
      lambda p: jnp.ones(p.shape, p.dtype), setup.abstract_params
  )
  config.optimizer.learning_rate = 1.0
  config.optimizer.momentum = 0.0
  config.lr_schedule.warmup_steps = 0
  tx = optimizers.create_optimizer(config)
  zeros = jax.tree.map(jnp.zeros_like, params)
  updates, _ = tx.update(zeros, tx.init(params), params, step=0)
  assert float(jnp.abs(updates['block1']['depthwise']['kernel']).max()) == 0
  assert float(updates['block1']['pointwise']['kernel'].max()) < 0
  bad = load_config('imagenet_mobilenet_v1', 'smoke')
  bad.optimizer.l2_exclude = ('depthwize',)
  with pytest.raises(run_config.ConfigError, match='optimizer.l2_exclude'):
    build.build(bad)


def data_for(name, tmp_path, mnist_dir, monkeypatch):
  """Overrides that feed the config's smoke run with small local data."""
  if name == 'mnist_lenet300':
    return {'dataset.local_dir': mnist_dir}
  if name == 'shakespeare_gru':
    return {'dataset.local_dir': SHAKESPEARE}
  directory = tmp_path / 'data'
  directory.mkdir()
  if name == 'wikitext103_gru':
    fixtures.write_wikitext(str(directory))
  elif name == 'cifar10_wrn22_2':
    fixtures.write_zip(
        directory / 'cifar10-jpg.zip', fixtures.cifar10_entries()
    )
  else:  # ImageNet: random JPEGs where TFDS's data source would be.
    from rigl_jax.data import tfds_source  # pylint: disable=g-import-not-at-top

    monkeypatch.setattr(
        tfds_source,
        'data_source',
        lambda name, split, *args, **kwargs: fixtures.imagenet_records(16),
    )
    return {}
  return {'dataset.local_dir': str(directory)}


# Convolutional configs take 20-70 s a run on 2 cores. Every method runs on
# every other config, RigL on every config, and each method on one of the
# convolutional ones in turn (the models' own tests train RigL on each).
_CONVOLUTIONAL = (
    'cifar10_wrn22_2',
    'imagenet_mobilenet_v1',
    'imagenet_mobilenet_v2',
    'imagenet_resnet50',
)


def _smoke_pairs() -> list[tuple[str, str]]:
  pairs = []
  for i, method in enumerate(sorted(methods.METHODS)):
    for name in CONFIGS:
      if (
          name not in _CONVOLUTIONAL
          or method == 'rigl'
          or name == _CONVOLUTIONAL[i % len(_CONVOLUTIONAL)]
      ):
        pairs.append((name, method))
  return pairs


# RigL on the main job's config is the fast check; the rest is slow.
@pytest.mark.parametrize(
    'name,method',
    [
        pytest.param(
            name,
            method,
            marks=()
            if (name, method) == ('mnist_lenet300', 'rigl')
            else pytest.mark.slow,
        )
        for name, method in _smoke_pairs()
    ],
)
def test_smoke_variant_trains_two_steps(
    tmp_path, mnist_dir, monkeypatch, name, method
):
  if name == 'shakespeare_gru' and not os.path.isdir(SHAKESPEARE):
    pytest.skip('../shared/data/tinyshakespeare is absent')
  overrides = data_for(name, tmp_path, mnist_dir, monkeypatch)
  config = run_config.set_values(
      load_config(name, 'smoke'), {**overrides, 'method': method}
  )
  results = loop.train_and_evaluate(config, str(tmp_path / 'run'))
  assert results['num_train_steps'] == 2
  assert results['topology']['method'] == method
  assert np.isfinite(results['eval']['loss'])
  if method in ('dense', 'small_dense'):
    assert results['sparsity']['overall'] == 0.0
  else:
    assert results['sparsity']['overall'] > 0.5
