"""Tests of the registered models: sizes, widths, names and a sparse step."""

import functools
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rigl_jax
from rigl_jax.sparse import masks as masks_lib
from rigl_jax import models
from rigl_jax.sparse import checks
from rigl_jax.sparse import schedules
from rigl_jax.training import steps
from rigl_jax.sparse import tree_paths
from rigl_jax.sparse.methods import rigl

# Global pooling makes the ImageNet models' sizes independent of the input
# resolution, so a small image keeps tracing cheap.
_IMAGE = ((32, 32, 3), jnp.float32)
_INPUTS = {
    'lenet300_100': ((28, 28, 1), jnp.float32),
    'resnet50': _IMAGE,
    'mobilenet_v1': _IMAGE,
    'mobilenet_v2': _IMAGE,
    'wrn22_2': _IMAGE,
    'gru_lm': ((8,), jnp.int32),
}
_NUM_CLASSES = {
    'lenet300_100': 10,
    'resnet50': 1000,
    'mobilenet_v1': 1000,
    'mobilenet_v2': 1000,
    'wrn22_2': 10,
    'gru_lm': 256,
}
_CONV_NETS = ('resnet50', 'mobilenet_v1', 'mobilenet_v2', 'wrn22_2')


def _abstract_variables(name: str, width: float = 1.0):
  model = models.create_model(name, num_classes=_NUM_CLASSES[name], width=width)
  shape, dtype = _INPUTS[name]
  inputs = jnp.zeros((1,) + shape, dtype)
  return jax.eval_shape(
      lambda: model.init(jax.random.PRNGKey(0), inputs, train=False)
  )


def _param_shapes(name: str, width: float = 1.0) -> dict[str, tuple[int, ...]]:
  params = _abstract_variables(name, width)['params']
  return {path: leaf.shape for path, leaf in tree_paths.named_leaves(params)}


def _num_params(name: str, width: float = 1.0) -> int:
  return masks_lib.num_params(_abstract_variables(name, width)['params'])


def test_every_model_is_registered_under_its_own_name():
  assert list(models.MODELS) == sorted(_INPUTS)
  assert all(name == m.name for name, m in models.MODELS.items())
  assert {
      n for n, m in models.MODELS.items() if m.task == 'language_model'
  } == {'gru_lm'}


# What the first layer reads: RGB channels, MNIST's 784 pixels, or one of
# 256 bytes (an embedding row each).
_FIRST_LAYER_FAN_IN = {
    'lenet300_100': 784,
    'gru_lm': 256,
    **{name: 3 for name in _CONV_NETS},
}


@pytest.mark.parametrize('name', sorted(_INPUTS))
def test_first_layer_is_the_kernel_the_input_meets(name):
  shapes = _param_shapes(name)
  first_layer = models.get(name).first_layer
  assert shapes[first_layer][-2] == _FIRST_LAYER_FAN_IN[name]


def test_an_unknown_module_path_is_one_line_naming_it():
  with pytest.raises(checks.InvalidArgument, match='model.name') as info:
    models.create_model('no_such_package.toy', num_classes=2, width=1.0)
  assert "cannot import 'no_such_package.toy'" in str(info.value)
  assert '\n' not in str(info.value)


_TOY_MODEL = """
import flax.linen as nn
from rigl_jax.models import base


class Toy(nn.Module):
  num_classes: int
  width: float
  bias: bool = True

  @nn.compact
  def __call__(self, x, train=False):
    return nn.Dense(self.num_classes, use_bias=self.bias)(x.reshape(len(x), -1))


MODEL = {declaration}
"""
_TOY_DECLARATION = (
    "base.Model('toy', 'classification', 'Dense_0/kernel', Toy, "
    "default_options={'bias': False})"
)


def _write_toy_package(directory, monkeypatch, **modules: str) -> str:
  """A package of toy model modules on sys.path; its (unique) name."""
  package = directory / re.sub(r'\W', '_', f'toy_models_{directory.name}')
  package.mkdir()
  (package / '__init__.py').write_text('')
  for name, declaration in modules.items():
    (package / f'{name}.py').write_text(
        _TOY_MODEL.format(declaration=declaration)
    )
  monkeypatch.syspath_prepend(str(directory))
  return package.name


def test_a_module_path_names_its_model_with_its_default_options(
    tmp_path, monkeypatch
):
  package = _write_toy_package(tmp_path, monkeypatch, toy=_TOY_DECLARATION)
  model = models.create_model(f'{package}.toy', num_classes=3, width=1.0)
  assert (model.num_classes, model.bias) == (3, False)
  model = models.create_model(
      f'{package}.toy', num_classes=3, width=1.0, bias=True
  )
  assert model.bias
  assert models.get(f'{package}.toy').first_layer == 'Dense_0/kernel'


def test_a_malformed_declaration_is_a_type_error_naming_its_module(
    tmp_path, monkeypatch
):
  package = _write_toy_package(
      tmp_path,
      monkeypatch,
      bad=_TOY_DECLARATION.replace("'classification'", "'regression'"),
  )
  with pytest.raises(TypeError, match=f'{package}.bad: toy: task must be'):
    models.get(f'{package}.bad')


def test_two_modules_declaring_one_name_is_a_type_error(tmp_path, monkeypatch):
  package = _write_toy_package(
      tmp_path,
      monkeypatch,
      lenet_again=_TOY_DECLARATION.replace("'toy'", "'lenet300_100'"),
  )
  monkeypatch.setattr(
      models, '__path__', [*models.__path__, str(tmp_path / package)]
  )
  try:
    with pytest.raises(
        TypeError,
        match=r"lenet_again: declares the model 'lenet300_100', already "
        r'declared by rigl_jax\.models\.lenet',
    ):
      models._discover()  # pylint: disable=protected-access
  finally:
    sys.modules.pop('rigl_jax.models.lenet_again', None)


@pytest.mark.parametrize(
    'name, expected',
    [
        ('lenet300_100', 266_610),
        # torchvision's resnet50 and Keras's ResNet50 count.
        ('resnet50', 25_557_032),
        # Keras MobileNet / MobileNetV2 trainable counts (BatchNorm running
        # statistics are not parameters).
        ('mobilenet_v1', 4_231_976),
        ('mobilenet_v2', 3_504_872),
        # Stem 3*3*3*16 = 432. Group g (widths 32, 64, 128; input 16, 32, 64):
        # block 0 = BN(in) + 3x3 in->out + BN(out) + 3x3 out->out + 1x1 in->out,
        # blocks 1, 2 = 2 * (BN(out) + 3x3 out->out):
        #   group 1: 14,432 + 2 * 18,560 = 51,552
        #   group 2: 57,536 + 2 * 73,984 = 205,504
        #   group 3: 229,760 + 2 * 295,424 = 820,608
        # Final BN(128) 256, head 128*10 + 10 = 1,290. Total 1,079,642 (~1.07M).
        ('wrn22_2', 1_079_642),
        # Embedding 256*128 = 32,768. GRU (input 128, state 512): input kernels
        # ir, iz, in 3 * (128*512 + 512) = 198,144; recurrent kernels hr, hz, hn
        # 3 * 512*512 = 786,432 plus hn's bias 512. Readout 512*256 + 256 =
        # 131,328 and 256*128 + 128 = 32,896. Logits reuse the embedding.
        # Total 32,768 + 985,088 + 131,328 + 32,896 = 1,182,080.
        ('gru_lm', 1_182_080),
    ],
)
def test_parameter_count_at_width_one(name, expected):
  assert _num_params(name) == expected


@pytest.mark.parametrize('name', sorted(_INPUTS))
def test_parameter_count_grows_with_width(name):
  counts = [_num_params(name, width) for width in (0.5, 1.0, 1.5)]
  assert counts[0] < counts[1] < counts[2]


def test_mobilenet_v1_builds_at_the_papers_big_width():
  shapes = _param_shapes('mobilenet_v1', 1.98)
  assert shapes['stem/kernel'] == (3, 3, 3, 63)  # round(32 * 1.98)
  assert shapes['head/kernel'] == (2028, 1000)  # round(1024 * 1.98)
  assert _num_params('mobilenet_v1', 1.98) > 3 * _num_params('mobilenet_v1')


def test_mobilenet_v2_rounds_to_eight_and_only_widens_the_last_conv():
  narrow = _param_shapes('mobilenet_v2', 0.35)
  assert narrow['stem/kernel'][-1] == 16  # 32 * 0.35 = 11.2 -> 16
  assert narrow['last_conv/kernel'][-1] == 1280
  wide = _param_shapes('mobilenet_v2', 1.4)
  assert wide['last_conv/kernel'][-1] == 1792
  assert all(
      shape[-1] % 8 == 0
      for path, shape in wide.items()
      if path.endswith('kernel') and path != 'head/kernel'
  )


def test_mobilenet_v2_can_narrow_the_last_conv():
  model = models.create_model(
      'mobilenet_v2', num_classes=1000, width=0.35, fixed_last_conv=False
  )
  params = jax.eval_shape(
      lambda: model.init(
          jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)), train=False
      )
  )['params']
  assert params['last_conv']['kernel'].shape[-1] == 448  # 1280 * 0.35


def test_resnet50_downsamples_in_the_3x3_conv():
  shapes = _param_shapes('resnet50')
  assert shapes['stem/kernel'] == (7, 7, 3, 64)
  assert shapes['stage2_block0/conv1/kernel'] == (1, 1, 256, 128)
  assert shapes['stage2_block0/conv2/kernel'] == (3, 3, 128, 128)
  assert shapes['stage2_block0/shortcut_conv/kernel'] == (1, 1, 256, 512)
  assert shapes['head/kernel'] == (2048, 1000)
  assert 'stage4_block2/conv3/kernel' in shapes
  assert 'stage4_block3/conv3/kernel' not in shapes


@pytest.mark.parametrize('name', _CONV_NETS)
def test_conv_nets_name_their_stem_and_head(name):
  shapes = _param_shapes(name)
  assert [path for path in shapes if re.search('^stem/', path)] == [
      'stem/kernel'
  ]
  assert shapes['stem/kernel'][2] == 3  # The stem sees the RGB image.
  assert {path for path in shapes if re.search('head', path)} == {
      'head/kernel',
      'head/bias',
  }


@pytest.mark.parametrize(
    'name, num_depthwise', [('mobilenet_v1', 13), ('mobilenet_v2', 17)]
)
def test_mobilenet_depthwise_kernels_are_named(name, num_depthwise):
  depthwise = {
      path: shape
      for path, shape in _param_shapes(name).items()
      if re.search('depthwise', path) and path.endswith('kernel')
  }
  assert len(depthwise) == num_depthwise
  assert all(shape[:3] == (3, 3, 1) for shape in depthwise.values())


def test_gru_kernels_are_sparsifiable():
  params = _abstract_variables('gru_lm')['params']
  sparsities = dict(
      tree_paths.named_leaves(rigl_jax.get_sparsities(params, 0.9, 'erk'))
  )
  # Dense leaves (None) are not pytree leaves, so only sparsified ones show.
  assert {path for path in sparsities if path.startswith('gru/')} == {
      f'gru/{gate}/kernel' for gate in ('ir', 'iz', 'in', 'hr', 'hz', 'hn')
  }
  assert sparsities['embedding/embedding'] is not None


def _batch(name: str, rng: np.random.Generator) -> dict[str, jax.Array]:
  inputs_shape, dtype = _INPUTS[name]
  batch_size = 2
  if dtype == jnp.int32:
    inputs = rng.integers(0, 256, (batch_size,) + inputs_shape)
    labels = rng.integers(0, 256, inputs.shape)
  else:
    inputs = rng.normal(size=(batch_size,) + inputs_shape)
    labels = rng.integers(0, 10, batch_size)
  return {
      'inputs': jnp.asarray(inputs, dtype),
      'labels': jnp.asarray(labels, jnp.int32),
      'weights': jnp.ones(labels.shape, jnp.float32),
  }


def _assert_inactive_weights_are_zero(state) -> None:
  masks = dict(tree_paths.named_leaves(state.masks))
  assert masks
  for path, param in tree_paths.named_leaves(state.params):
    if masks.get(path) is not None:
      assert not np.any(np.asarray(param)[~np.asarray(masks[path])]), path


# This test checks behaviour, not speed: skipping XLA's backend optimizations
# roughly halves the CPU compile times that dominate it.
_FAST_COMPILE = {'xla_backend_optimization_level': 0}

# On CPU, the stable argsorts with which masks are drawn and updated cost
# about 20 s per pass over ResNet-50's 25M weights; at width 0.25 (the same
# layers, a sixteenth of the weights) they take about a second.
_STEP_WIDTHS = {'resnet50': 0.25}


def _compile(fn, *args):
  return jax.jit(fn).lower(*args).compile(_FAST_COMPILE)


@pytest.mark.parametrize(
    'name',
    [
        pytest.param(n, marks=pytest.mark.slow) if n != 'gru_lm' else n
        for n in sorted(set(_INPUTS) - {'lenet300_100'})
    ],
)
def test_rigl_train_steps_keep_the_model_sparse(name):
  """An optimizer step, then a RigL mask update, through the sparse core."""
  # Ten classes keep the ImageNet heads small; the size tests use 1000.
  num_classes = 256 if name == 'gru_lm' else 10
  model = models.create_model(
      name, num_classes=num_classes, width=_STEP_WIDTHS.get(name, 1.0)
  )
  batch = _batch(name, np.random.default_rng(0))
  init = functools.partial(model.init, train=False)
  rng = jax.random.PRNGKey(0)
  sparsities = rigl_jax.get_sparsities(
      jax.eval_shape(init, rng, batch['inputs'])['params'], 0.9, 'erk'
  )
  method = rigl.RigL(
      update_schedule=schedules.UpdateSchedule(
          begin_step=1, end_step=10, interval=5
      ),
      drop_fraction=schedules.DropFraction('cosine', 0.3, end_step=10),
  )

  def create_state(rng, inputs):
    init_rng, state_rng = jax.random.split(rng)
    variables = init(init_rng, inputs)
    return rigl_jax.TrainState.create(
        params=variables['params'],
        tx=optax.sgd(0.01, momentum=0.9),
        method=method,
        sparsities=sparsities,
        rng=state_rng,
        batch_stats=variables.get('batch_stats'),
    )

  # One compiled program for init and masks: fewer compiles than eager ops.
  state = _compile(create_state, rng, batch['inputs'])(rng, batch['inputs'])
  active = jax.tree.map(lambda m: int(m.sum()), state.masks)
  metrics = steps.TrainMetrics.empty()
  train_step = _compile(
      steps.make_train_step(model, 0.0), state, metrics, batch
  )

  for _ in range(2):  # Step 0 updates the weights, step 1 the masks.
    state, metrics = train_step(state, steps.TrainMetrics.empty(), batch)
    assert np.isfinite(metrics.compute()['loss'])
    _assert_inactive_weights_are_zero(state)
  assert int(state.topology_stats.num_updates) == 1
  assert float(state.topology_stats.last_churn) > 0
  assert jax.tree.map(lambda m: int(m.sum()), state.masks) == active
  assert (state.batch_stats is None) == (name == 'gru_lm')
