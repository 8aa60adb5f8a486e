"""Structured masks (N:M, constant fan-in) through the training loop."""

import json
import os
import subprocess

import numpy as np
import pytest

from rigl_jax import errors
from rigl_jax.training import build
from rigl_jax.training import loop
from rigl_jax.training import warm_start
from tests import fixtures
from tests.training import test_identity

N_M = {'mask_structure.kind': 'n_m', 'sparsity': 0.5, 'distribution': 'uniform'}
FAN_IN = {'mask_structure.kind': 'fan_in'}


def unit_counts(mask):
  """Active inputs of each output unit: [units]."""
  mask = np.asarray(mask)
  return mask.reshape(-1, mask.shape[-1]).sum(axis=0)


def two_four_counts(mask):
  """Active entries of each group of 4 consecutive inputs."""
  mask = np.asarray(mask)
  return mask.reshape(mask.shape[0] // 4, 4, mask.shape[1]).sum(axis=1)


def saved_masks(workdir):
  masks = warm_start.latest_state(workdir)['masks']
  return {
      name: layer['kernel']
      for name, layer in masks.items()
      if layer['kernel'] is not None
  }


@pytest.mark.slow
@pytest.mark.parametrize(
    'method', ['static', 'snip', 'set', 'rigl', 'snfs', 'pruning', 'srigl']
)
@pytest.mark.parametrize('structure', ['n_m', 'fan_in'])
def test_every_method_trains_every_structure(
    tmp_path, mnist_dir, method, structure
):
  if method == 'srigl' and structure == 'n_m':
    pytest.skip('SRigL is constant fan-in (refused below)')
  overrides = N_M if structure == 'n_m' else FAN_IN
  config = fixtures.tiny_mnist_config(mnist_dir, method=method, **overrides)
  results = loop.train_and_evaluate(config, str(tmp_path))
  assert np.isfinite(results['eval']['loss'])
  for name, mask in saved_masks(str(tmp_path)).items():
    if structure == 'n_m':
      assert (two_four_counts(mask) == 2).all(), name
    else:
      counts = set(unit_counts(mask)) - ({0} if method == 'srigl' else set())
      assert len(counts) == 1, (name, counts)


@pytest.mark.parametrize('structure', ['n_m', 'fan_in'])
def test_structure_holds_across_a_resume(
    tmp_path, mnist_dir, monkeypatch, structure
):
  overrides = N_M if structure == 'n_m' else FAN_IN
  config = lambda: fixtures.tiny_mnist_config(
      mnist_dir, method='rigl', eval_every_steps=4, **overrides
  )
  test_identity.interrupt_at_first_eval(monkeypatch)
  with pytest.raises(errors.Preempted):
    loop.train_and_evaluate(config(), str(tmp_path / 'resumed'))
  resumed = loop.train_and_evaluate(config(), str(tmp_path / 'resumed'))
  whole = loop.train_and_evaluate(config(), str(tmp_path / 'whole'))
  assert resumed['eval'] == whole['eval']
  for name, mask in saved_masks(str(tmp_path / 'resumed')).items():
    np.testing.assert_array_equal(
        mask, saved_masks(str(tmp_path / 'whole'))[name]
    )
    counts = two_four_counts(mask) if structure == 'n_m' else unit_counts(mask)
    assert len(set(counts.reshape(-1))) == 1, name


@pytest.mark.parametrize(
    'overrides,message',
    [
        (
            {'mask_structure.kind': 'n_m'},
            'config.sparsity: under mask_structure 2:4 every sparse layer has '
            'sparsity 1 - N/M = 0.5',
        ),
        (
            {
                'mask_structure.kind': 'n_m',
                'mask_structure.n': 1,
                'mask_structure.m': 3,
                'sparsity': 2 / 3,
                'distribution': 'uniform',
                'layer_sparsity': (),
            },
            'config.mask_structure.kind: Dense_2/kernel cannot hold '
            'mask_structure 1:3: its input axis (100, shape [100, 10]) does '
            'not divide into groups of M=3; keep it dense with a rule in '
            "config.layer_sparsity, e.g. ('Dense_2/kernel$', 'dense')",
        ),
        (
            {'method': 'srigl', **N_M},
            'config.mask_structure.kind: srigl trains constant fan-in masks',
        ),
        (
            {'method': 'snip', 'snip.global_ranking': True, **FAN_IN},
            'config.mask_structure.kind: snip.global_ranking ranks every layer',
        ),
        (
            {'mask_structure.kind': 'blocks'},
            "config.mask_structure.kind: must be one of ['unstructured'",
        ),
    ],
)
def test_structures_a_run_cannot_keep_are_one_line(
    mnist_dir, overrides, message
):
  config = fixtures.tiny_mnist_config(mnist_dir, **overrides)
  with pytest.raises(errors.ConfigError) as info:
    build.build(config)
  assert str(info.value).startswith(message), str(info.value)
  assert '\n' not in str(info.value)


def test_srigl_trains_from_the_command_line(tmp_path, mnist_dir):
  process = subprocess.run(
      fixtures.main_command(
          str(tmp_path),
          {**fixtures.tiny_mnist_overrides(mnist_dir), 'method': 'srigl'},
      ),
      cwd=fixtures.REPO_ROOT,
      capture_output=True,
      text=True,
      check=False,
  )
  assert process.returncode == 0, process.stderr[-2000:]
  with open(os.path.join(tmp_path, 'results.json')) as f:
    results = json.load(f)
  assert results['topology']['method'] == 'srigl'
  assert results['resolved_config']['mask_structure']['kind'] == 'unstructured'
  for mask in saved_masks(str(tmp_path)).values():
    assert len(set(unit_counts(mask)) - {0}) == 1
