"""``rigl_jax.export.load`` on trained tiny MNIST runs: every form, from an
export and from the workdir, classifies the test set exactly as the
masked model does."""

import gzip
import os

import jax
import numpy as np
import pytest

from rigl_jax import errors
from rigl_jax import export
from tests import fixtures


def _test_set(mnist_dir: str) -> tuple[np.ndarray, np.ndarray]:
  def read(name: str, offset: int) -> np.ndarray:
    with gzip.open(os.path.join(mnist_dir, name), 'rb') as f:
      return np.frombuffer(f.read(), np.uint8, offset=offset)

  images = read('t10k-images-idx3-ubyte.gz', 16).reshape(-1, 28, 28, 1)
  return images, read('t10k-labels-idx1-ubyte.gz', 8)


@pytest.fixture(scope='module', params=['fan_in', 'n_m'])
def exported(request, mnist_dir, tmp_path_factory) -> tuple[str, str, str]:
  """(structure, workdir, export dir) of a 12-step run under a structure."""
  from rigl_jax.training import loop  # pylint: disable=g-import-not-at-top

  structure = request.param
  overrides = {'mask_structure.kind': structure, 'method': 'srigl'}
  if structure == 'n_m':
    overrides = {
        'mask_structure.kind': 'n_m',
        'sparsity': 0.5,
        'distribution': 'uniform',
    }
  workdir = str(tmp_path_factory.mktemp(f'run_{structure}'))
  loop.train_and_evaluate(
      fixtures.tiny_mnist_config(mnist_dir, **overrides), workdir
  )
  out = str(tmp_path_factory.mktemp('export') / 'out')
  export.export_masks(workdir, out)
  return structure, workdir, out


def test_every_form_classifies_the_test_set_as_the_masked_model(
    exported, mnist_dir
):
  structure, workdir, out = exported
  images, labels = _test_set(mnist_dir)
  masked_fn, masked = export.load(out, 'masked')
  expected = np.asarray(jax.jit(masked_fn)(masked, images))
  accuracy = np.mean(expected.argmax(-1) == labels)
  assert accuracy > 0.1  # Better than chance after 12 steps.
  forms = ['shrunk', 'condensed', 'bcsr'] + (
      ['nm'] if structure == 'n_m' else []
  )
  for form in forms:
    for source in (out, workdir):
      apply_fn, variables = export.load(source, form)
      logits = np.asarray(jax.jit(apply_fn)(variables, images))
      np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=1e-4)
      np.testing.assert_array_equal(logits.argmax(-1), expected.argmax(-1))


def test_load_errors_name_the_path(exported, tmp_path):
  structure, _, out = exported
  with pytest.raises(errors.WorkdirError, match=str(tmp_path / 'absent')):
    export.load(str(tmp_path / 'absent'))
  with pytest.raises(errors.WorkdirError, match='form must be one of'):
    export.load(out, 'dense')
  if structure == 'fan_in':
    with pytest.raises(
        errors.WorkdirError, match=f"{out}: form 'nm' needs a run trained with"
    ):
      export.load(out, 'nm')
