r"""The RigL paper's analysis experiments on one config (Section 4.4).

Three claims, on a model small enough to train here (LeNet-300-100 on MNIST
at 98% sparsity by default):

1. Figure 6-left: between the solution of magnitude pruning (t = 0) and
   that of static sparse training (t = 1) the training loss along the
   straight line has a barrier; Bézier curves fitted inside the union of
   the two masks still cross one; a quadratic curve fitted in the dense
   space finds a nearly monotonic path.
2. Figure 6-right: restarted from the static solution, RigL escapes it
   (training loss falls, accuracy rises); static training does not.
3. RigL's masks are not lottery tickets: trained statically from the same
   initial values, or from fresh ones, they do worse than RigL.

  python scripts/sparse_landscape.py --config=experiments/landscape_mnist.py \
      --config.dataset.local_dir=../shared/data/mnist --eval_batches=60 \
      --root=/tmp/landscape_mnist --output_dir=docs/results/landscape_mnist

experiments/landscape_cifar10.py holds the CIFAR-10 version (a WRN-10).

Runs train under --root: pruning, static, the two restarts from static,
rigl_s{i} and the tickets of each RigL run. A finished run is reused if its
config matches, and refused otherwise. The output folder gets
paths.md/png, restarts.md/png, lottery.md and numbers.json; each table ends
with the command and the provenance of every run. For models with
BatchNorm, curves are fitted with batch statistics and every evaluated point
gets its statistics recomputed over training batches (Garipov et al.);
dropout must be off (e.g. ``--config.model.options.dropout_rate=0.0``).
"""

import copy
import json
import os
import statistics
import time
from typing import Any

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np
import optax

from rigl_jax import analysis
from rigl_jax import command_line
from rigl_jax import reports
from rigl_jax import table_provenance
from rigl_jax.training import build
from rigl_jax.training import config as config_lib
from rigl_jax.training import loop
from rigl_jax.training import steps
from rigl_jax.training import tasks
from rigl_jax.training import warm_start

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Experiment config file.', lock_config=False
)
_ROOT = flags.DEFINE_string('root', None, 'Directory of the runs.')
_OUTPUT = flags.DEFINE_string('output_dir', None, 'Tables and figures.')
_SEEDS = flags.DEFINE_integer('seeds', 3, 'Seeds of the lottery-ticket runs.')
_FIT_STEPS = flags.DEFINE_integer('fit_steps', 3000, 'Steps of a curve fit.')
_EVAL_BATCHES = flags.DEFINE_integer(
    'eval_batches', 20, 'Training batches that a point of a path is scored on.'
)
_TABLES = ('paths.md', 'restarts.md', 'lottery.md')
# (results.json path, results) of every run the analyses read, for the
# tables' provenance.
_RUNS: dict[str, dict[str, Any]] = {}


def train(name: str, **overrides: Any) -> dict[str, Any]:
  """The results of run ``name``, trained now unless finished.

  A finished run of another config is refused (naming the changed keys),
  never reused.
  """
  config = config_lib.set_values(copy.deepcopy(_CONFIG.value), overrides)
  workdir = os.path.join(_ROOT.value, name)
  results = loop.train_and_evaluate(config, workdir)
  _RUNS[os.path.join(workdir, 'results.json')] = results
  return results


def add_provenance(output: str) -> None:
  """Ends each table with the command and the provenance of every run."""
  section = table_provenance.section(
      sorted(_RUNS.items()), table_provenance.script_command()
  )
  for name in _TABLES:
    with open(os.path.join(output, name), 'a', encoding='utf-8') as f:
      f.write('\n' + section)


def solution(name: str) -> tuple[Any, Any, Any]:
  """(params, masks, batch_stats or None) of a finished run."""
  state = warm_start.latest_state(os.path.join(_ROOT.value, name))
  masks = jax.tree.map(
      lambda m: None if m is None else jnp.asarray(m, bool),
      state['masks'],
      is_leaf=lambda x: x is None,
  )
  batch_stats = state.get('batch_stats')
  if batch_stats is not None:
    batch_stats = jax.tree.map(jnp.asarray, batch_stats)
  return jax.tree.map(jnp.asarray, state['params']), masks, batch_stats


def write_markdown(
    path: str, title: str, table: list[str], footer: str = ''
) -> None:
  """Writes a titled markdown table, and a paragraph after it if given."""
  text = f'# {title}\n\n' + '\n'.join(table) + '\n'
  if footer:
    text += f'\n{footer}\n'
  with open(path, 'w', encoding='utf-8') as f:
    f.write(text)


def loss_and_accuracy(setup: build.Setup, batch_stats: Any):
  """Training-set loss and accuracy of params, on fixed training batches.

  Returns the loss of one batch (for fitting: with a BatchNorm model, in
  training mode), ``eval_fn(params, batch_stats)``, the batches to fit on
  and, for a BatchNorm model, ``recompute(params) -> batch_stats``.
  """
  pipeline = setup.data.create_pipeline()
  prepare = jax.jit(lambda b: setup.preprocess(b, jax.random.key(0), False))
  batches = [
      prepare(pipeline.train_batch(i)) for i in range(_EVAL_BATCHES.value)
  ]
  has_batch_norm = batch_stats is not None

  def batch_loss(params, batch):
    logits, _ = steps.apply_model(
        setup.model, params, batch_stats, batch['inputs'], train=has_batch_norm
    )
    return tasks.cross_entropy(logits, batch['labels']).mean()

  @jax.jit
  def metrics(params, model_state, batch):
    logits, _ = steps.apply_model(
        setup.model, params, model_state, batch['inputs'], train=False
    )
    return {
        'loss': tasks.cross_entropy(logits, batch['labels']).mean(),
        'accuracy': jnp.mean(jnp.argmax(logits, -1) == batch['labels']),
    }

  def eval_fn(params, model_state):
    rows = [metrics(params, model_state, b) for b in batches]
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}

  def fit_batch(step):
    return prepare(pipeline.train_batch(step))

  recompute = None
  if has_batch_norm:
    recompute = analysis.make_batch_stats_fn(
        setup.model, [b['inputs'] for b in batches], batch_stats
    )
  return batch_loss, eval_fn, fit_batch, recompute


def figure_left(setup, output: str) -> dict[str, Any]:
  """Loss along the line and fitted curves, pruning (t=0) to static (t=1)."""
  start, start_masks, batch_stats = solution('pruning')
  end, end_masks, _ = solution('static')
  batch_loss, eval_fn, fit_batch, recompute = loss_and_accuracy(
      setup, batch_stats
  )
  union = analysis.union_subspace(start_masks, end_masks)
  paths = {
      'Linear': analysis.evaluate_path(
          eval_fn, start, end, recompute_batch_stats=recompute
      )
  }
  for label, order, subspace in (
      ('Quadratic Bézier (sparse)', 2, union),
      ('Cubic Bézier (sparse)', 3, union),
      ('Quadratic Bézier (dense)', 2, None),
  ):
    logging.info('Fitting the %s curve: %d steps', label, _FIT_STEPS.value)
    started = time.time()
    fit = analysis.fit_curve(
        batch_loss,
        start,
        end,
        fit_batch,
        num_steps=_FIT_STEPS.value,
        rng=jax.random.key(order),
        order=order,
        optimizer=optax.adam(1e-3),
        subspace=subspace,
    )
    logging.info(
        'Fitted the %s curve in %.0f s; mean loss of its last 100 steps %.4f',
        label,
        time.time() - started,
        float(np.mean(fit.losses[-100:])),
    )
    paths[label] = analysis.evaluate_path(
        eval_fn,
        start,
        end,
        fit.free,
        subspace=subspace,
        recompute_batch_stats=recompute,
    )
  ts = paths['Linear']['t']
  lines = [
      '| t | ' + ' | '.join(paths) + ' |',
      '|---:|' + '---:|' * len(paths),
  ]
  for i, t in enumerate(ts):
    lines.append(
        f'| {t:.2f} | '
        + ' | '.join(f'{p["loss"][i]:.4f}' for p in paths.values())
        + ' |'
    )
  numbers = {}
  for label, path in paths.items():
    ends = max(path['loss'][0], path['loss'][-1])
    numbers[label] = {
        'max_loss': float(path['loss'].max()),
        'barrier': float(path['loss'].max() - ends),
        'loss': path['loss'].tolist(),
        'accuracy': path['accuracy'].tolist(),
    }
  write_markdown(
      os.path.join(output, 'paths.md'),
      'Training loss along paths from pruning (t = 0) to static (t = 1)',
      lines,
      'Barrier (max loss minus the higher endpoint): '
      + ', '.join(f'{k} {v["barrier"]:.4f}' for k, v in numbers.items())
      + '.',
  )
  plt = reports.pyplot()
  if plt is not None:
    figure, axes = plt.subplots(figsize=(6, 4))
    for label, path in paths.items():
      axes.plot(ts, path['loss'], marker='.', label=label)
    axes.set_xlabel('t (0: pruning solution, 1: static solution)')
    axes.set_ylabel('training loss')
    axes.set_yscale('log')
    axes.legend()
    figure.tight_layout()
    figure.savefig(os.path.join(output, 'paths.png'), dpi=120)
    plt.close(figure)
  return numbers


def figure_right(static: dict[str, Any], output: str) -> dict[str, Any]:
  """Training loss and test accuracy of the two restarts."""
  runs = {
      'RigL': train(
          'restart_rigl',
          method='rigl',
          **{'warm_start.workdir': os.path.join(_ROOT.value, 'static')},
      ),
      'Static': train(
          'restart_static',
          method='static',
          **{'warm_start.workdir': os.path.join(_ROOT.value, 'static')},
      ),
  }
  numbers = {
      'start': {
          'train_loss': static['history']['train'][-1]['train/loss'],
          'test_accuracy': static['eval']['accuracy'],
      }
  }
  lines = [
      '| restart | final training loss | final test accuracy (%) |',
      '|---|---:|---:|',
      f'| (static solution) | {numbers["start"]["train_loss"]:.4f} | '
      f'{100 * numbers["start"]["test_accuracy"]:.2f} |',
  ]
  for label, run in runs.items():
    numbers[label] = {
        'train_loss': run['history']['train'][-1]['train/loss'],
        'test_accuracy': run['eval']['accuracy'],
        'train': run['history']['train'],
        'eval': run['history']['eval'],
    }
    lines.append(
        f'| {label} | {numbers[label]["train_loss"]:.4f} | '
        f'{100 * numbers[label]["test_accuracy"]:.2f} |'
    )
  write_markdown(
      os.path.join(output, 'restarts.md'),
      'Restarting from the static solution',
      lines,
  )
  plt = reports.pyplot()
  if plt is not None:
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for label in runs:
      train_rows, eval_rows = numbers[label]['train'], numbers[label]['eval']
      left.plot(
          [r['step'] for r in train_rows],
          [r['train/loss'] for r in train_rows],
          label=label,
      )
      right.plot(
          [r['step'] for r in eval_rows],
          [100 * r['accuracy'] for r in eval_rows],
          marker='o',
          label=label,
      )
    left.set(xlabel='step after the restart', ylabel='training loss')
    left.set_yscale('log')
    right.set(xlabel='step after the restart', ylabel='test accuracy (%)')
    for axes in (left, right):
      axes.legend()
    figure.tight_layout()
    figure.savefig(os.path.join(output, 'restarts.png'), dpi=120)
    plt.close(figure)
  return {
      k: {m: v[m] for m in ('train_loss', 'test_accuracy')}
      for k, v in numbers.items()
  }


def lottery_table(output: str) -> dict[str, Any]:
  """RigL against static training of its final masks, per seed."""
  rows = {'RigL': [], 'Ticket, same init': [], 'Ticket, fresh init': []}
  for seed in range(_SEEDS.value):
    rigl = f'rigl_s{seed}'
    rows['RigL'].append(train(rigl, method='rigl', seed=seed))
    masks_from = {'warm_start.masks_from': os.path.join(_ROOT.value, rigl)}
    rows['Ticket, same init'].append(
        train(f'ticket_same_s{seed}', method='static', seed=seed, **masks_from)
    )
    rows['Ticket, fresh init'].append(
        train(
            f'ticket_fresh_s{seed}',
            method='static',
            seed=seed,
            **masks_from,
            **{'warm_start.init_seed': 1000 + seed},
        )
    )
  numbers = {}
  lines = [
      '| training | test accuracy (%), per seed | mean ± std |',
      '|---|---|---:|',
  ]
  for label, runs in rows.items():
    accuracies = [100 * r['eval']['accuracy'] for r in runs]
    numbers[label] = accuracies
    spread = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    lines.append(
        f'| {label} | {" / ".join(f"{a:.2f}" for a in accuracies)} | '
        f'{statistics.fmean(accuracies):.2f} ± {spread:.2f} |'
    )
  write_markdown(
      os.path.join(output, 'lottery.md'),
      "RigL's final masks trained statically",
      lines,
  )
  return numbers


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  os.makedirs(_OUTPUT.value, exist_ok=True)
  train('pruning', method='pruning')
  static = train('static', method='static')
  setup = build.build(
      config_lib.set_values(copy.deepcopy(_CONFIG.value), {'method': 'static'})
  )
  numbers = {
      'paths': figure_left(setup, _OUTPUT.value),
      'restarts': figure_right(static, _OUTPUT.value),
      'lottery': lottery_table(_OUTPUT.value),
  }
  add_provenance(_OUTPUT.value)
  with open(
      os.path.join(_OUTPUT.value, 'numbers.json'), 'w', encoding='utf-8'
  ) as f:
    json.dump(numbers, f, indent=1)
  print(json.dumps(numbers['lottery']))


if __name__ == '__main__':
  flags.mark_flags_as_required(['config', 'root', 'output_dir'])
  command_line.run(main, 'sparse_landscape')
