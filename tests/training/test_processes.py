"""The agreement checks between processes, with the peers' answers faked."""

import jax
import numpy as np
import pytest

from rigl_jax import errors
from rigl_jax.training import processes


@pytest.fixture
def two_processes(monkeypatch):
  """Process 0 of two; returns a setter for every process's digest."""
  monkeypatch.setattr(jax, 'process_count', lambda: 2)
  monkeypatch.setattr(jax, 'process_index', lambda: 0)

  def set_digests(*texts):
    digests = np.stack(
        [
            np.frombuffer(
                processes.hashlib.sha256(t.encode()).digest(), np.uint8
            )
            for t in texts
        ]
    )
    monkeypatch.setattr(processes, '_digests', lambda text: digests)

  return set_digests


def test_replicas_that_agree_pass(two_processes):
  two_processes('a', 'a')
  processes.check_replicas_agree('masks', {'w': np.ones(3)}, step=6)


def test_replicas_that_differ_stop_the_run(two_processes):
  two_processes('a', 'b')
  with pytest.raises(processes.DistributedError, match=r'processes \[1\]'):
    processes.check_replicas_agree('masks', {'w': np.ones(3)}, step=6)


def test_process_0_names_the_processes_started_differently(
    two_processes, monkeypatch
):
  two_processes('{"x": 1}', '{"x": 2}')
  monkeypatch.setattr(processes, '_broadcast_text', lambda text: text)
  with pytest.raises(errors.ConfigError, match=r'processes \[1\] were'):
    processes.check_same_command({'x': 1})


@pytest.mark.parametrize(
    'flags, message',
    [
        (('127.0.0.1:1', 2, None), 'go together'),
        (('127.0.0.1:1', 0, 0), 'must be >= 1'),
        (('127.0.0.1:1', 2, -1), 'out of range'),
    ],
)
def test_bad_process_flags_fail_before_connecting(flags, message):
  with pytest.raises(errors.ConfigError, match=message):
    processes.initialize(*flags, timeout_s=1)
