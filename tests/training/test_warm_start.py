"""Warm starts and lottery tickets: runs that start from other runs."""

import functools
import glob
import os
import shutil

import jax
import numpy as np
import pytest

from rigl_jax import errors
from rigl_jax.sparse import tree_paths
from rigl_jax.training import build
from rigl_jax.training import checkpoints
from rigl_jax.training import config as run_config
from rigl_jax.training import compiled as compiled_lib
from rigl_jax.training import loop
from rigl_jax.training import warm_start
from tests import fixtures


def initial_state(config):
  """The state a run of ``config`` starts from, warm start applied."""
  setup = build.build(config)
  init = jax.jit(
      functools.partial(
          compiled_lib._init_state,  # pylint: disable=protected-access
          model=setup.model,
          spec=setup.spec,
          tx=setup.tx,
          method=setup.method,
          sparsities=setup.sparsities,
      )
  )
  return (
      warm_start.apply(
          setup.warm_start,
          init(jax.random.PRNGKey(setup.seed)),
          init,
          lambda tree: tree,
      ),
      init,
  )


def assert_trees_equal(a, b):
  a, b = dict(tree_paths.named_leaves(a)), dict(tree_paths.named_leaves(b))
  assert a.keys() == b.keys()
  for path in a:
    np.testing.assert_array_equal(a[path], b[path], err_msg=path)


@pytest.fixture(scope='module')
def finished_runs(tmp_path_factory, mnist_dir):
  """A static run and a RigL run of the tiny MNIST config."""
  root = tmp_path_factory.mktemp('runs')
  workdirs = {}
  for method in ('static', 'rigl'):
    workdirs[method] = str(root / method)
    loop.train_and_evaluate(
        fixtures.tiny_mnist_config(mnist_dir, method=method),
        workdirs[method],
    )
  return workdirs


def test_a_warm_start_begins_at_the_other_runs_params_and_masks(
    finished_runs, mnist_dir
):
  config = fixtures.tiny_mnist_config(
      mnist_dir,
      method='rigl',
      **{
          'warm_start.workdir': finished_runs['static'],
          'warm_start.optimizer_state': True,
      },
  )
  state, _ = initial_state(config)
  saved = warm_start.latest_state(finished_runs['static'])
  assert int(state.step) == 0
  assert_trees_equal(state.params, saved['params'])
  assert_trees_equal(state.masks, saved['masks'])
  assert_trees_equal(state.opt_state, saved['opt_state'])
  results = loop.train_and_evaluate(
      config, os.path.join(finished_runs['static'], '..', 'restart')
  )
  assert results['topology']['method'] == 'rigl'


def test_a_lottery_ticket_trains_the_masks_from_the_requested_init(
    finished_runs, mnist_dir
):
  masks = warm_start.latest_state(finished_runs['rigl'])['masks']
  for seed in (None, 7):
    config = fixtures.tiny_mnist_config(
        mnist_dir,
        method='static',
        **{
            'warm_start.masks_from': finished_runs['rigl'],
            'warm_start.init_seed': seed,
        },
    )
    state, init = initial_state(config)
    assert_trees_equal(state.masks, masks)
    fresh = init(jax.random.PRNGKey(0 if seed is None else seed))
    expected = jax.tree.map(
        lambda p, m: p if m is None else np.where(m, p, 0.0),
        fresh.params,
        masks,
        is_leaf=lambda x: x is None,
    )
    assert_trees_equal(state.params, expected)


@pytest.mark.parametrize(
    'overrides,key',
    [
        ({'warm_start.workdir': '/no/such/run'}, 'warm_start.workdir'),
        ({'warm_start.init_seed': 3}, 'warm_start.init_seed'),
        ({'warm_start.optimizer_state': True}, 'warm_start.optimizer_state'),
    ],
)
def test_bad_warm_starts_name_the_key(mnist_dir, overrides, key):
  with pytest.raises(run_config.ConfigError, match=f'config.{key}'):
    build.build(fixtures.tiny_mnist_config(mnist_dir, **overrides))


def test_a_warm_start_from_another_model_is_refused(finished_runs, mnist_dir):
  config = fixtures.tiny_mnist_config(
      mnist_dir,
      **{'warm_start.masks_from': finished_runs['rigl'], 'model.width': 0.5},
  )
  with pytest.raises(
      run_config.ConfigError,
      match='config.warm_start.masks_from: .*model.width',
  ):
    build.build(config)
  both = fixtures.tiny_mnist_config(
      mnist_dir,
      **{
          'warm_start.masks_from': finished_runs['rigl'],
          'warm_start.workdir': finished_runs['static'],
      },
  )
  with pytest.raises(run_config.ConfigError, match='not both'):
    build.build(both)


def test_the_checksum_of_a_source_checkpoint_reads_back_as_saved(
    finished_runs,
):
  for workdir in finished_runs.values():
    directory = os.path.join(workdir, 'checkpoints')
    saved = checkpoints.Checkpointer(directory, max_to_keep=1).read_metadata(12)
    assert (
        checkpoints.saved_checksum(os.path.join(directory, '12', 'state'))
        == saved['checksum']
    )


def largest_array_file(state):
  files = glob.glob(os.path.join(state, '**', 'd', '*'), recursive=True)
  return max(files, key=os.path.getsize)


def zero_100_bytes(path, offset):
  with open(path, 'r+b') as f:
    f.seek(offset)
    f.write(bytes(100))


def damage_where_it_still_reads(state):
  """Zeroes 100 bytes of an array file where the arrays still read, changed."""
  before = checkpoints.read_as_saved(state)
  path = largest_array_file(state)
  with open(path, 'rb') as f:
    original = f.read()
  for offset in range(0, len(original) - 100, len(original) // 16):
    zero_100_bytes(path, offset)
    try:
      after = checkpoints.read_as_saved(state)
    except Exception:  # pylint: disable=broad-except
      after = None
    if after is not None and checkpoints.checksum(after) != (
        checkpoints.checksum(before)
    ):
      return
    with open(path, 'wb') as f:
      f.write(original)
  raise AssertionError(f'no 100 zero bytes in {path} read back')


def damage_unreadably(state):
  zero_100_bytes(largest_array_file(state), 0)


# A failed read leaves orbax callbacks for an event loop it has closed.
@pytest.mark.filterwarnings('ignore::pytest.PytestUnraisableExceptionWarning')
@pytest.mark.parametrize(
    'damage,cause',
    [
        (damage_where_it_still_reads, 'is damaged: its arrays do not match'),
        (damage_unreadably, 'cannot be read'),
    ],
    ids=['changed', 'unreadable'],
)
@pytest.mark.parametrize('key', ['workdir', 'masks_from'])
def test_a_damaged_source_checkpoint_stops_the_run_naming_it(
    finished_runs, mnist_dir, tmp_path, damage, cause, key
):
  source = str(tmp_path / 'static')
  shutil.copytree(finished_runs['static'], source)
  checkpoint = os.path.join(source, 'checkpoints', '12')
  damage(os.path.join(checkpoint, 'state'))
  config = fixtures.tiny_mnist_config(
      mnist_dir, method='rigl', **{f'warm_start.{key}': source}
  )
  with pytest.raises(errors.DataFileError) as info:
    initial_state(config)
  assert str(info.value).startswith(
      f'warm_start.{key}: the checkpoint {checkpoint} {cause}'
  )


@pytest.mark.slow
@pytest.mark.filterwarnings('ignore::pytest.PytestUnraisableExceptionWarning')
def test_a_damaged_source_checkpoint_is_one_line(
    finished_runs, mnist_dir, tmp_path
):
  source = str(tmp_path / 'static')
  shutil.copytree(finished_runs['static'], source)
  checkpoint = os.path.join(source, 'checkpoints', '12')
  damage_where_it_still_reads(os.path.join(checkpoint, 'state'))
  process = fixtures.run_main(
      str(tmp_path / 'restart'),
      {
          **fixtures.tiny_mnist_overrides(mnist_dir),
          'method': 'rigl',
          'warm_start.workdir': source,
      },
  )
  assert process.returncode == 1, process.stderr[-3000:]
  assert 'Traceback' not in process.stderr
  assert (
      process.stderr.strip()
      .splitlines()[-1]
      .startswith(
          'rigl_jax: DataFileError: warm_start.workdir: the checkpoint '
          f'{checkpoint} is damaged: '
      )
  )
