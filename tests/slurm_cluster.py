"""A one-node Slurm cluster on localhost, for tests of Slurm sweeps.

munged, slurmctld and slurmd run as the current user from a directory of
their own (config, key, sockets, state, logs, pid files) and listen on
127.0.0.1 only, on free ports. ``stop()`` ends each daemon by its pid file.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time

import portpicker

PROGRAMS = (
    'munged',
    'slurmctld',
    'slurmd',
    'sbatch',
    'srun',
    'squeue',
    'sinfo',
    'scontrol',
    'scancel',
)


def missing_programs() -> list[str]:
  """The Slurm and MUNGE programs that are not on PATH."""
  return [name for name in PROGRAMS if shutil.which(name) is None]


def _slurm_conf(directory: str, cpus: int) -> str:
  ctld_port, slurmd_port = portpicker.pick_unused_port(), None
  while slurmd_port in (None, ctld_port):
    slurmd_port = portpicker.pick_unused_port()
  # No cgroups (containers often lack them): processes are tracked through
  # /proc, tasks are not bound, nothing is accounted.
  return f"""\
ClusterName=rigltest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={directory}/munge/munge.socket
StateSaveLocation={directory}/state
SlurmdSpoolDir={directory}/spool
SlurmctldPidFile={directory}/slurmctld.pid
SlurmdPidFile={directory}/slurmd.pid
SlurmctldLogFile={directory}/slurmctld.log
SlurmdLogFile={directory}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


class LocalSlurm:
  """munged + slurmctld + slurmd serving one node, ``localhost``."""

  def __init__(self, cpus: int = 2):
    # Short: the MUNGE socket path must fit a sockaddr_un (108 bytes).
    self.directory = tempfile.mkdtemp(prefix='slurm-')
    self.cpus = cpus
    self.conf = os.path.join(self.directory, 'slurm.conf')
    self.env = {**os.environ, 'SLURM_CONF': self.conf}
    self._pid_files = []

  def _run(self, *args: str) -> None:
    subprocess.run(
        args, env=self.env, check=True, capture_output=True, timeout=60
    )

  def start(self, timeout: float = 60) -> None:
    """Starts the daemons; returns once the node takes jobs."""
    d = self.directory
    for sub in ('munge', 'state', 'spool'):
      os.makedirs(os.path.join(d, sub), mode=0o700)
    key = os.path.join(d, 'munge', 'munge.key')
    with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o400), 'wb') as f:
      f.write(os.urandom(1024))
    with open(self.conf, 'w', encoding='utf-8') as f:
      f.write(_slurm_conf(d, self.cpus))
    munge_pid = os.path.join(d, 'munge', 'munged.pid')
    self._pid_files.append(munge_pid)
    self._run(
        'munged',
        '--force',  # Runs as root.
        f'--key-file={key}',
        f'--socket={d}/munge/munge.socket',
        f'--pid-file={munge_pid}',
        f'--log-file={d}/munge/munged.log',
        f'--seed-file={d}/munge/munged.seed',
    )
    self._pid_files.append(os.path.join(d, 'slurmctld.pid'))
    self._run('slurmctld', '-c')  # -c: no state from an earlier start.
    self._pid_files.append(os.path.join(d, 'slurmd.pid'))
    self._run('slurmd', '-N', 'localhost')
    deadline = time.time() + timeout
    while time.time() < deadline:
      state = subprocess.run(
          ['sinfo', '--noheader', '--format=%t'],
          env=self.env,
          capture_output=True,
          text=True,
          check=False,
      ).stdout.strip()
      if state == 'idle':
        return
      time.sleep(0.5)
    raise RuntimeError(f'Slurm node not idle after {timeout} s: {self.logs()}')

  def _cancel_jobs(self, timeout: float) -> None:
    """Ends the jobs, so that no job step outlives the daemons."""
    subprocess.run(
        ['scancel', f'--user={os.getuid()}'],
        env=self.env,
        capture_output=True,
        check=False,
        timeout=60,
    )
    deadline = time.time() + timeout
    while time.time() < deadline:
      jobs = subprocess.run(
          ['squeue', '--noheader'],
          env=self.env,
          capture_output=True,
          text=True,
          check=False,
          timeout=60,
      )
      if jobs.returncode or not jobs.stdout.strip():
        return
      time.sleep(0.5)

  def logs(self) -> str:
    """The daemons' log tails, for failure messages."""
    parts = []
    for name in ('slurmctld.log', 'slurmd.log', 'munge/munged.log'):
      path = os.path.join(self.directory, name)
      if os.path.exists(path):
        with open(path, encoding='utf-8', errors='replace') as f:
          parts.append(f'--- {name}\n' + ''.join(f.readlines()[-15:]))
    return '\n'.join(parts)

  def stop(self, timeout: float = 20) -> None:
    """Cancels every job, then SIGTERM to each daemon by its pid file."""
    if os.path.exists(os.path.join(self.directory, 'slurmctld.pid')):
      self._cancel_jobs(timeout)
    pids = []
    for pid_file in reversed(self._pid_files):
      try:
        with open(pid_file, encoding='utf-8') as f:
          pid = int(f.read().split()[0])
        os.kill(pid, signal.SIGTERM)
        pids.append(pid)
      except (OSError, ValueError, IndexError):
        pass
    deadline = time.time() + timeout
    for pid in pids:
      while time.time() < deadline and _alive(pid):
        time.sleep(0.1)
      if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(self.directory, ignore_errors=True)


def _alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  # A zombie child counts as gone; the daemons are not our children.
  try:
    with open(f'/proc/{pid}/stat', encoding='utf-8') as f:
      return f.read().split(') ')[-1][0] != 'Z'
  except OSError:
    return False
